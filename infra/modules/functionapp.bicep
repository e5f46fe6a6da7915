// The Function App: Flex Consumption (Linux), runtime "custom" (dimirror's binary as the custom
// handler, see host.json), a user-assigned identity, and identity-based connections for host
// storage, Service Bus and Tables. The app settings below are exactly the settings dimirror reads
// plus the ones the Functions host and the Azure SDK read; infra_test.go fails on any drift.

param name string
param planName string
param location string
param tags object

@description('Resource ID of the user-assigned identity.')
param identityId string

@description('Client ID of the user-assigned identity (what AZURE_CLIENT_ID and the *__clientId settings need).')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param appInsightsName string

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Source endpoint, read from the existing resource.')
param sourceEndpoint string
param sourceApiVersion string

@description('One DIMIRROR_TARGETS entry per target (source + targets form; empty in the rules form).')
param targetEntries string[]

@description('Rules form: one DIMIRROR_RESOURCES entry per resource; empty in the source + targets form.')
param resourceEntries string[] = []

@description('Rules form: DIMIRROR_RULES.')
param rules string = ''
param apiVersion string

@description('Key Vault holding resource keys; empty when every resource uses Entra ID.')
param keyVaultName string
param sourceKeySecretName string
param targetKeysSecretName string
param resourceKeysSecretName string = ''

@description('Service Bus host name, e.g. <namespace>.servicebus.windows.net.')
param serviceBusNamespace string
param queueName string

@description('Table service endpoint, e.g. https://<account>.table.core.windows.net/.')
param tableServiceUri string
param tableName string

param maxAttempts int
param retryBase string
param retryMax string
param callTimeout string
param authMargin string
param claimLease string
param followFor string
param giveUpAfter string
param logLevel string
param replaceExisting bool
param pruneDeleted bool
param include string
param exclude string
param watchSchedule string
param sweepSchedule string
param pollSchedule string
param listRate string
param managementRate string
param operationRate string
param budgetShare string
param rpo string
param expiryWarning string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (there is no system one).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      // Deployments go through the deployment container with Entra ID; nothing uses FTP(S).
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      // No always-ready instances: the app scales to zero between executions.
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// Deployments authenticate with Entra ID (az functionapp deployment); no publishing passwords,
// neither for the SCM (Kudu) endpoint nor for FTP.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

var keyVaultRef = 'VaultName=${keyVaultName};SecretName='

// app-settings:begin
// One setting per line (infra_test.go reads the keys). Names are case-sensitive on Linux.
var appSettings = {
  // Functions host: its own storage through the identity (blob, on Flex).
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Functions host: telemetry with Entra ID (the Application Insights resource refuses keys).
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // azidentity: DefaultAzureCredential picks the user-assigned identity by this client ID.
  AZURE_CLIENT_ID: identityClientId
  // Document Intelligence: endpoints read from the existing resources; keys only as Key Vault
  // references, empty (Entra ID) otherwise.
  DIMIRROR_SOURCE_ENDPOINT: sourceEndpoint
  DIMIRROR_SOURCE_KEY: empty(sourceKeySecretName) ? '' : '@Microsoft.KeyVault(${keyVaultRef}${sourceKeySecretName})'
  DIMIRROR_SOURCE_API_VERSION: sourceApiVersion
  DIMIRROR_TARGETS: join(targetEntries, ',')
  DIMIRROR_TARGET_KEYS: empty(targetKeysSecretName) ? '' : '@Microsoft.KeyVault(${keyVaultRef}${targetKeysSecretName})'
  DIMIRROR_API_VERSION: apiVersion
  // The rules form (several sources, two-way rules), exclusive with the source + targets form:
  // main.bicep fills one form and leaves the other's settings empty; docs/DEPLOY.md.
  DIMIRROR_RESOURCES: join(resourceEntries, ',')
  DIMIRROR_RESOURCE_KEYS: empty(resourceKeysSecretName) ? '' : '@Microsoft.KeyVault(${keyVaultRef}${resourceKeysSecretName})'
  DIMIRROR_RULES: rules
  // Service Bus: read by dimirror's sender and by the host's trigger (connection ServiceBusConnection).
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  DIMIRROR_QUEUE: queueName
  // Tables: read by dimirror only (no table bindings), with DefaultAzureCredential.
  TableConnection__tableServiceUri: tableServiceUri
  DIMIRROR_TABLE: tableName
  // Standalone-mode settings, unused under the host; empty means the built-in default.
  DIMIRROR_LISTEN: ''
  DIMIRROR_API_KEY: ''
  DIMIRROR_MAX_ATTEMPTS: string(maxAttempts)
  DIMIRROR_RETRY_BASE: retryBase
  DIMIRROR_RETRY_MAX: retryMax
  DIMIRROR_CALL_TIMEOUT: callTimeout
  DIMIRROR_AUTH_MARGIN: authMargin
  DIMIRROR_CLAIM_LEASE: claimLease
  DIMIRROR_FOLLOW_FOR: followFor
  DIMIRROR_GIVE_UP_AFTER: giveUpAfter
  DIMIRROR_LOG_LEVEL: logLevel
  DIMIRROR_REPLACE: replaceExisting ? 'true' : 'false'
  DIMIRROR_PRUNE: pruneDeleted ? 'true' : 'false'
  DIMIRROR_INCLUDE: include
  DIMIRROR_EXCLUDE: exclude
  DIMIRROR_WATCH_SCHEDULE: watchSchedule
  DIMIRROR_SWEEP_SCHEDULE: sweepSchedule
  DIMIRROR_POLL_SCHEDULE: pollSchedule
  DIMIRROR_LIST_RATE: listRate
  DIMIRROR_MANAGEMENT_RATE: managementRate
  DIMIRROR_OPERATION_RATE: operationRate
  DIMIRROR_BUDGET_SHARE: budgetShare
  DIMIRROR_RPO: rpo
  DIMIRROR_EXPIRY_WARNING: expiryWarning
}
// app-settings:end

// The whole set: settings added by hand are removed by the next deployment.
resource settings 'Microsoft.Web/sites/config@2023-12-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
output webhookUrl string = 'https://${site.properties.defaultHostName}/api/replications'
output statusUrl string = 'https://${site.properties.defaultHostName}/api/replications/{kind}/{id}'
