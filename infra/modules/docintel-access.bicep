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

// Cognitive Services User: call the resource's data plane (get/authorize/copy models) with an
// Entra ID token, without the right to read its keys or change the resource.
var cognitiveServicesUser = 'a97b65f3-24c7-4388-baec-2e87135dc908'

resource account 'Microsoft.CognitiveServices/accounts@2023-05-01' existing = {
  name: accountName
}

resource access 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, cognitiveServicesUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesUser)
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
@description('This target as one DIMIRROR_TARGETS entry: name=endpoint;resource-id=...;region=...[;api-version=...][;degrade=true].')
output targetEntry string = empty(targetName) ? '' : '${targetName}=${endpoint};resource-id=${account.id};region=${region}${versionOption}${degradeOption}'
