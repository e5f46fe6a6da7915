// Data-plane access to one existing Document Intelligence resource, deployed into that
// resource's own resource group (main.bicep sets the scope from its ID, so the resource may live
// in another group or subscription). Also reads the resource's endpoint and region, so the app
// settings are built from the real resource rather than typed in.

@description('Name of the existing Document Intelligence (Cognitive Services) account in this resource group.')
param accountName string

@description('Principal (object) ID of the app identity.')
param principalId string

@description('For a target: its name in DIMIRROR_TARGETS; empty for the source.')
param targetName string = ''

@description('For a target: its api-version; empty means the default.')
param apiVersion string = ''

@description('For a target: send x-ms-forms-copy-degrade on copies into it.')
param degrade bool = false

@description('Rules form: the resource is a rule\'s source and another\'s target alike (two-way rules), so the identity gets both sides\' data actions.')
param bothSides bool = false

@description('custom: a role per side with only the data actions dimirror calls (defined here, assignable in this resource group only); builtin: Cognitive Services User, which also holds every other data action of the resource (analyze, build, compose, ...) and reading its keys.')
@allowed([
  'custom'
  'builtin'
])
param roleMode string = 'custom'

@description('For a target with roleMode custom: also grant deleting models and classifiers there (needed by DIMIRROR_REPLACE and DIMIRROR_PRUNE, and to free a target id reserved by an authorization no copy used).')
param allowDelete bool = true

// Cognitive Services User (built-in): the fallback. Its data actions are every data action of the
// resource (Microsoft.CognitiveServices/*) and its actions include listKeys, so with it the
// identity could also analyze, build and compose models here and read the resource's keys.
var cognitiveServicesUser = 'a97b65f3-24c7-4388-baec-2e87135dc908'

// The data actions of the custom roles, each one a call dimirror makes. Names from "Azure
// permissions for AI + machine learning", Microsoft.CognitiveServices, DataActions
// (https://learn.microsoft.com/azure/role-based-access-control/permissions/ai-machine-learning).
// The service documents some reads and deletes under two names (documentmodels/... and
// management/...); both are listed, since which one a route checks is not documented. The
// classifier copy actions are not on that page (yet); they are named like the models' ones, as
// the provider names its classifier actions documentclassifiers:... (documentclassifiers:build/write
// appears in the built-in roles' data actions). If a deployment refuses one of them
// (InvalidDataActionOrNotDataAction), deploy with roleMode 'builtin'.
var prefix = 'Microsoft.CognitiveServices/accounts/FormRecognizer/'

// Reads both sides need: the resource's quota (/info), models and classifiers (get and list).
var readActions = [
  '${prefix}info/read'
  '${prefix}management/get/info/read'
  '${prefix}documentmodels/read'
  '${prefix}management/get/model/read'
  '${prefix}management/get/classifier/read'
  '${prefix}custom/models/read'
]

// Source: copyTo, and reading the copy operations it starts (polls, checks, and the watcher's
// and the adoption's operation lists). v2.1's copy and copy result are the custom/models ones.
var sourceActions = [
  '${prefix}documentmodels:copyto/action'
  '${prefix}documentclassifiers:copyto/action'
  '${prefix}operations/read'
  '${prefix}operation/get/operation/read'
  '${prefix}operation/list/operations/read'
  '${prefix}custom/models/copy/action'
  '${prefix}custom/models/copyresults/read'
]

// Target: authorizeCopy.
var targetActions = [
  '${prefix}documentmodels:authorizecopy/action'
  '${prefix}documentclassifiers:authorizecopy/action'
  '${prefix}custom/models/copyauthorization/action'
]

// Target, unless allowDelete is false: deleting a model or classifier (REPLACE, PRUNE, and
// freeing an id an unused authorization reserved).
var deleteActions = [
  '${prefix}documentmodels/delete'
  '${prefix}management/model/delete'
  '${prefix}management/classifier/delete'
  '${prefix}custom/models/delete'
]

var isSource = empty(targetName) && !bothSides
var sourceRoleDescription = 'dimirror: read models, classifiers and operations of this Document Intelligence resource and copy them out (copyTo). No keys, no analyze, no build.'
var targetRoleDescription = 'dimirror: authorize copies into this Document Intelligence resource and read what arrived${allowDelete ? ', and delete models and classifiers' : ''}. No keys, no analyze, no build.'
var bothRoleDescription = 'dimirror: copy models and classifiers out of this Document Intelligence resource (copyTo, operations) and authorize copies into it${allowDelete ? ', and delete models and classifiers' : ''}. No keys, no analyze, no build.'
var side = bothSides ? (allowDelete ? 'source-target' : 'source-target-nodelete') : (isSource ? 'source' : (allowDelete ? 'target' : 'target-nodelete'))
var dataActions = bothSides ? concat(readActions, sourceActions, targetActions, allowDelete ? deleteActions : []) : (isSource ? concat(readActions, sourceActions) : concat(readActions, targetActions, allowDelete ? deleteActions : []))

resource account 'Microsoft.CognitiveServices/accounts@2023-05-01' existing = {
  name: accountName
}

// One definition per resource and side: a role definition's name is unique in the tenant, and two
// deployments (two environments) mirroring the same resource define the same role identically.
var customRoleId = guid(account.id, 'dimirror', side)

resource customRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (roleMode == 'custom') {
  name: customRoleId
  properties: {
    roleName: 'dimirror ${side} (${accountName}, ${uniqueString(account.id)})'
    description: bothSides ? bothRoleDescription : (isSource ? sourceRoleDescription : targetRoleDescription)
    type: 'customRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: dataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

var roleId = roleMode == 'custom' ? customRoleId : cognitiveServicesUser

resource access 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roleId)
  scope: account
  dependsOn: [
    customRole
  ]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Entra ID needs the custom-subdomain endpoint (https://<name>.cognitiveservices.azure.com/).
var endpoint = account.properties.endpoint
// The v2.1 copy request carries the target's resource ID and lowercase ARM region.
var region = toLower(replace(account.location, ' ', ''))
var versionOption = empty(apiVersion) ? '' : ';api-version=${apiVersion}'
var degradeOption = degrade ? ';degrade=true' : ''

output endpoint string = endpoint
output region string = region
output id string = account.id
@description('This target as one DIMIRROR_TARGETS (or, rules form, DIMIRROR_RESOURCES) entry: name=endpoint;resource-id=...;region=...[;api-version=...][;degrade=true].')
output targetEntry string = empty(targetName) ? '' : '${targetName}=${endpoint};resource-id=${account.id};region=${region}${versionOption}${degradeOption}'
