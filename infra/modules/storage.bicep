// The storage account: the Functions host's storage (AzureWebJobsStorage), the deployment
// container Flex Consumption runs the package from, and the replicas table. Shared-key access is
// off: everything reaches it with Microsoft Entra ID.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Blob container holding the deployed package.')
param deploymentContainerName string

@description('Table holding one row per replica.')
param tableName string

@description('Principal (object) ID of the app identity.')
param principalId string

// Built-in roles, granted on this account only.
var roles = {
  // The Functions host's identity-based AzureWebJobsStorage on Flex is blob only: host locks and
  // timer schedule state, function keys (azure-webjobs-secrets), and reading the package from the
  // deployment container. Owner rather than Contributor because the host manages the containers
  // it needs itself.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // dimirror's replica rows (and creating the table if it is missing), plus the host's diagnostic
  // events table on Flex.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // No Storage Queue Data Contributor: no function uses a storage queue or blob trigger.
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // The endpoint stays reachable (a Flex app without a virtual network reaches storage over
    // its public endpoint) but accepts only Entra ID tokens.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource tableService 'tableServices' = {
    name: 'default'

    resource replicas 'tables' = {
      name: tableName
    }
  }
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(roles): {
    name: guid(account.id, principalId, role.value)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output tableName string = account::tableService::replicas.name
