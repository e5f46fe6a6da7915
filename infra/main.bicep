// dimirror in one resource group: a Flex Consumption Function App (custom handler) with a
// user-assigned identity, its storage account (shared keys off), a Service Bus namespace with the
// copy queue, Application Insights on a Log Analytics workspace with alert rules, and data-plane
// roles on the existing Document Intelligence resources (which may live in other resource groups
// and subscriptions). Deploy with `azd up` or `az deployment group create`; see docs/DEPLOY.md.
targetScope = 'resourceGroup'

metadata description = 'dimirror: mirrors Document Intelligence custom models and classifiers across regions.'

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

@description('Name of this deployment (the azd environment name). Seeds the names of the resources, with a hash of the subscription and resource group.')
@minLength(1)
@maxLength(40)
param environmentName string

@description('Region of the created resources. Flex Consumption is not offered in every region: az functionapp list-flexconsumption-locations.')
param location string = resourceGroup().location

@description('Source + targets form: ARM resource ID of the source Document Intelligence resource: /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>. Empty in the rules form (resources and rules).')
param sourceResourceId string = ''

@description('Targets the models are copied to.')
type target = {
  @description('Target name, as in DIMIRROR_TARGETS and the replica rows: 1-32 lowercase letters, digits and "-".')
  @minLength(1)
  @maxLength(32)
  name: string

  @description('ARM resource ID of the target Document Intelligence resource (any resource group or subscription of the tenant).')
  @minLength(1)
  resourceId: string

  @description('api-version for this target; empty means apiVersion.')
  apiVersion: string?

  @description('Send x-ms-forms-copy-degrade on copies into this target (source with a customer-managed key, target without).')
  degrade: bool?
}

@description('Source + targets form: the target Document Intelligence resources, e.g. [{"name":"westus2","resourceId":"/subscriptions/.../accounts/di-westus2"}]. Empty in the rules form.')
param targets target[] = []

@description('A Document Intelligence resource of the rules form: every resource a rule names, once.')
type diResource = {
  @description('Resource name, as in DIMIRROR_RESOURCES, DIMIRROR_RULES and the replica rows: 1-32 lowercase letters, digits and "-".')
  @minLength(1)
  @maxLength(32)
  name: string

  @description('ARM resource ID of the Document Intelligence resource (any resource group or subscription of the tenant).')
  @minLength(1)
  resourceId: string

  @description('api-version for this resource; empty means apiVersion.')
  apiVersion: string?

  @description('Send x-ms-forms-copy-degrade on copies into this resource (a source with a customer-managed key, this resource without).')
  degrade: bool?
}

@description('Rules form (several sources, two-way rules): every resource once, e.g. [{"name":"eastus","resourceId":"..."},{"name":"westus2","resourceId":"..."}] (DIMIRROR_RESOURCES). Exclusive with sourceResourceId and targets.')
param resources diResource[] = []

@description('Rules form: comma-separated from>to pairs over the names in resources, e.g. "eastus>westus2,westus2>eastus" (DIMIRROR_RULES; per-rule filters as documented in README).')
param rules string = ''

@description('Rules form: resource keys as name=key,name=key, stored in the Key Vault (DIMIRROR_RESOURCE_KEYS). Leave empty to use Microsoft Entra ID (recommended).')
@secure()
param resourceKeys string = ''

@description('Source resource key, stored in a Key Vault this template then creates. Leave empty to use Microsoft Entra ID (recommended).')
@secure()
param sourceKey string = ''

@description('Target keys as name=key,name=key, stored in the Key Vault. Leave empty to use Microsoft Entra ID (recommended).')
@secure()
param targetKeys string = ''

@description('Default Document Intelligence api-version (DIMIRROR_API_VERSION).')
@allowed([
  '2024-11-30'
  '2023-07-31'
  '2022-08-31'
  '2.1'
])
param apiVersion string = '2024-11-30'

@description('api-version of the source; empty means apiVersion (DIMIRROR_SOURCE_API_VERSION).')
@allowed([
  ''
  '2024-11-30'
  '2023-07-31'
  '2022-08-31'
  '2.1'
])
param sourceApiVersion string = ''

@description('Service Bus queue carrying copy requests (DIMIRROR_QUEUE).')
param queueName string = 'copy-requests'

@description('Table holding one row per replica (DIMIRROR_TABLE).')
param tableName string = 'replicas'

@description('How long an unconsumed copy message lives before it is dead-lettered. A day covers the 24 h authorizations of v2.1; for later api-versions the poller renews expired authorizations anyway.')
param messageTimeToLive string = 'P1D'

@description('Six-field NCRONTAB schedule of the watcher (DIMIRROR_WATCH_SCHEDULE).')
param watchSchedule string = '*/30 * * * * *'

@description('Six-field NCRONTAB schedule of the sweeper (DIMIRROR_SWEEP_SCHEDULE).')
param sweepSchedule string = '0 0 * * * *'

@description('Six-field NCRONTAB schedule of the poller (DIMIRROR_POLL_SCHEDULE). Every run is a billed execution: see the cost notes in docs/DEPLOY.md.')
param pollSchedule string = '*/5 * * * * *'

@description('List and read calls per second per Document Intelligence resource, per instance (DIMIRROR_LIST_RATE); S0 allows 10.')
param listRate string = '9'

@description('Management calls (authorizeCopy, copyTo, delete) per second per resource, per instance, and the copies reconciliation starts per second (DIMIRROR_MANAGEMENT_RATE); S0 allows 5.')
param managementRate string = '4.8'

@description('Reads of copy operations (polls and checks) per second per resource, per instance (DIMIRROR_OPERATION_RATE); S0 allows 50.')
param operationRate string = '45'

@description('Share of the rates above that dimirror may use on each Document Intelligence resource, the rest left to your own calls; the rates also drop on 429s and recover gradually (DIMIRROR_BUDGET_SHARE, more than 0, at most 1).')
param budgetShare string = '0.8'

@description('Recovery point objective (DIMIRROR_RPO): each replica should be verified in its target within this of its source model being ready; a replica that misses it logs one rpo-missed event. A Go duration, at least 1m.')
param rpo string = '15m'

@description('A model or target copy expiring sooner is reported by the sweep and fails the drill (DIMIRROR_EXPIRY_WARNING). A Go duration; 720h is 30 days.')
param expiryWarning string = '720h'

@description('Tries of one copy before it is given up (DIMIRROR_MAX_ATTEMPTS).')
@minValue(1)
@maxValue(100)
param maxAttempts int = 6

@description('First back-off between tries (DIMIRROR_RETRY_BASE), a Go duration.')
param retryBase string = '30s'

@description('Longest back-off between tries (DIMIRROR_RETRY_MAX), a Go duration.')
param retryMax string = '30m'

@description('Deadline of each call to a Document Intelligence resource (DIMIRROR_CALL_TIMEOUT).')
param callTimeout string = '30s'

@description('Renew a copy authorization closer than this to expiry (DIMIRROR_AUTH_MARGIN).')
param authMargin string = '5m'

@description('How long a step holds a replica against other instances, and how long a crash mid-step delays it (DIMIRROR_CLAIM_LEASE); at least callTimeout.')
param claimLease string = '1m'

@description('How long the copy starter follows a copy it started with scheduled check messages, so a finished copy is seen within a fraction of its duration (DIMIRROR_FOLLOW_FOR); 0s leaves it to the poll timer.')
param followFor string = '1m'

@description('How long a replica keeps retrying transient failures (an unreachable, deleted or endlessly throttled resource), and how long a copy operation may run, before the replica fails naming what did not answer (DIMIRROR_GIVE_UP_AFTER); the hourly sweep re-drives such failures.')
param giveUpAfter string = '4h'

@description('Log level (DIMIRROR_LOG_LEVEL).')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@description('Overwrite target models that already exist (DIMIRROR_REPLACE).')
param replaceExisting bool = false

@description('Delete target models that no longer exist on the source (DIMIRROR_PRUNE).')
param pruneDeleted bool = false

@description('Comma-separated globs of model and classifier IDs to mirror; empty means all (DIMIRROR_INCLUDE).')
param include string = ''

@description('Comma-separated globs of model and classifier IDs never to mirror (DIMIRROR_EXCLUDE).')
param exclude string = ''

@description('Memory of each Flex Consumption instance, in MB; the execution price scales with it.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 512

// One instance already spends a Document Intelligence resource's whole management budget (S0: 5
// calls/s), so more instances add availability, not throughput; docs/DEPLOY.md ("Instances").
@description('Upper bound of Flex Consumption instances, per scale group (the HTTP functions, the copy starter, each timer).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 2

@description('Days Log Analytics keeps the logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('E-mail address the alerts go to; empty creates the alert rules without notifications.')
param alertEmail string = ''

@description('Alert when the oldest pending replica is older than this many minutes.')
@minValue(5)
param oldestPendingAlertMinutes int = 60

@description('Roles on the Document Intelligence resources: custom (only the data actions dimirror calls, one role per resource and side) or builtin (Cognitive Services User: every data action, and the keys).')
@allowed([
  'custom'
  'builtin'
])
param roleMode string = 'custom'

@description('With roleMode custom: let dimirror delete models and classifiers in the targets. Without it an id reserved by an authorization no copy used cannot be freed (the replica fails and needs an operator); replaceExisting or pruneDeleted grant it anyway.')
param grantTargetDelete bool = true

@description('Tags for every resource created.')
param tags object = {}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var allTags = union(tags, { 'azd-env-name': environmentName, application: 'dimirror' })
var names = {
  identity: 'id-dimirror-${token}'
  plan: 'plan-dimirror-${token}'
  app: 'func-dimirror-${token}'
  storage: 'stdim${token}'
  serviceBus: 'sb-dimirror-${token}'
  workspace: 'log-dimirror-${token}'
  appInsights: 'appi-dimirror-${token}'
  keyVault: 'kv-dim-${token}'
  deploymentContainer: 'app-package'
}

// Keys are accepted only into Key Vault: given a key, the vault is created and the app setting
// holds a Key Vault reference, never the key.
var useKeyVault = !empty(sourceKey) || !empty(targetKeys) || !empty(resourceKeys)
var sourceKeySecretName = empty(sourceKey) ? '' : 'dimirror-source-key'
var targetKeysSecretName = empty(targetKeys) ? '' : 'dimirror-target-keys'
var resourceKeysSecretName = empty(resourceKeys) ? '' : 'dimirror-resource-keys'

// The rules form deploys the resources and rules; the source + targets form the source and the
// targets. Both forms' settings are written (one of them empty); dimirror checks them at start
// and refuses a mix, or a form left incomplete, naming the setting to fix.
var rulesForm = !empty(resources)

// ARM IDs split as ['', 'subscriptions', <sub>, 'resourceGroups', <group>, 'providers', ...]. In
// the rules form there is no source: a placeholder keeps the (skipped) source module's scope
// expression valid.
var sourceParts = split(rulesForm ? '/subscriptions/none/resourceGroups/none/providers/none/none/none' : sourceResourceId, '/')

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

module identity 'modules/identity.bicep' = {
  name: 'dimirror-identity'
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'dimirror-monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'dimirror-storage'
  params: {
    name: names.storage
    location: location
    tags: allTags
    deploymentContainerName: names.deploymentContainer
    tableName: tableName
    principalId: identity.outputs.principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'dimirror-servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: allTags
    queueName: queueName
    messageTimeToLive: messageTimeToLive
    principalId: identity.outputs.principalId
  }
}

// Data-plane roles on the source and every target, each in its own resource group: by default a
// custom role per side with only the calls dimirror makes (see modules/docintel-access.bicep).
module sourceAccess 'modules/docintel-access.bicep' = if (!rulesForm) {
  name: 'dimirror-${token}-source'
  scope: resourceGroup(sourceParts[2], sourceParts[4])
  params: {
    accountName: last(sourceParts)
    principalId: identity.outputs.principalId
    roleMode: roleMode
  }
}

module targetAccess 'modules/docintel-access.bicep' = [
  for t in targets: {
    name: 'dimirror-${token}-target-${t.name}'
    scope: resourceGroup(split(t.resourceId, '/')[2], split(t.resourceId, '/')[4])
    params: {
      accountName: last(split(t.resourceId, '/'))
      principalId: identity.outputs.principalId
      targetName: t.name
      apiVersion: t.?apiVersion ?? ''
      degrade: t.?degrade ?? false
      roleMode: roleMode
      allowDelete: grantTargetDelete || replaceExisting || pruneDeleted
    }
  }
]

// Rules form: every resource may be a rule's source and another's target, so each gets both
// sides' data actions.
module resourceAccess 'modules/docintel-access.bicep' = [
  for r in resources: {
    name: 'dimirror-${token}-resource-${r.name}'
    scope: resourceGroup(split(r.resourceId, '/')[2], split(r.resourceId, '/')[4])
    params: {
      accountName: last(split(r.resourceId, '/'))
      principalId: identity.outputs.principalId
      targetName: r.name
      apiVersion: r.?apiVersion ?? ''
      degrade: r.?degrade ?? false
      bothSides: true
      roleMode: roleMode
      allowDelete: grantTargetDelete || replaceExisting || pruneDeleted
    }
  }
]

module keyVault 'modules/keyvault.bicep' = if (useKeyVault) {
  name: 'dimirror-keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    principalId: identity.outputs.principalId
    sourceKeySecretName: sourceKeySecretName
    sourceKey: sourceKey
    targetKeysSecretName: targetKeysSecretName
    targetKeys: targetKeys
    resourceKeysSecretName: resourceKeysSecretName
    resourceKeys: resourceKeys
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'dimirror-functionapp'
  dependsOn: [
    keyVault
  ]
  params: {
    name: names.app
    planName: names.plan
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: names.deploymentContainer
    appInsightsName: monitoring.outputs.appInsightsName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    sourceEndpoint: rulesForm ? '' : (sourceAccess.?outputs.endpoint ?? '')
    sourceApiVersion: sourceApiVersion
    targetEntries: [for i in range(0, length(targets)): targetAccess[i].outputs.targetEntry]
    resourceEntries: [for i in range(0, length(resources)): resourceAccess[i].outputs.targetEntry]
    rules: rules
    apiVersion: apiVersion
    keyVaultName: useKeyVault ? names.keyVault : ''
    sourceKeySecretName: sourceKeySecretName
    targetKeysSecretName: targetKeysSecretName
    resourceKeysSecretName: resourceKeysSecretName
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    queueName: serviceBus.outputs.queueName
    tableServiceUri: storage.outputs.tableEndpoint
    tableName: storage.outputs.tableName
    maxAttempts: maxAttempts
    retryBase: retryBase
    retryMax: retryMax
    callTimeout: callTimeout
    authMargin: authMargin
    claimLease: claimLease
    followFor: followFor
    giveUpAfter: giveUpAfter
    logLevel: logLevel
    replaceExisting: replaceExisting
    pruneDeleted: pruneDeleted
    include: include
    exclude: exclude
    watchSchedule: watchSchedule
    sweepSchedule: sweepSchedule
    pollSchedule: pollSchedule
    listRate: listRate
    managementRate: managementRate
    operationRate: operationRate
    budgetShare: budgetShare
    rpo: rpo
    expiryWarning: expiryWarning
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'dimirror-alerts'
  params: {
    namePrefix: 'dimirror-${token}'
    location: location
    tags: allTags
    workspaceId: monitoring.outputs.workspaceId
    serviceBusNamespaceId: serviceBus.outputs.id
    queueName: serviceBus.outputs.queueName
    alertEmail: alertEmail
    oldestPendingAlertMinutes: oldestPendingAlertMinutes
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment; `make deploy` reads the first two)
// ---------------------------------------------------------------------------------------------

output FUNCTION_APP_NAME string = app.outputs.name
output AZURE_RESOURCE_GROUP string = resourceGroup().name
@description('POST replication requests here (the function key goes in x-functions-key; get it with az functionapp keys list).')
output WEBHOOK_URL string = app.outputs.webhookUrl
output STATUS_URL string = app.outputs.statusUrl
output IDENTITY_CLIENT_ID string = identity.outputs.clientId
output IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output KEY_VAULT_NAME string = useKeyVault ? names.keyVault : ''
