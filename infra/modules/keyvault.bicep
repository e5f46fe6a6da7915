// Optional Key Vault for Document Intelligence resource keys, for resources that cannot use
// Microsoft Entra ID. The app settings hold Key Vault references, resolved by the platform with the
// app identity (keyVaultReferenceIdentity); the keys never appear in app settings or outputs.

@description('Vault name: 3-24 letters, digits and "-", globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Principal (object) ID of the app identity.')
param principalId string

@description('Secret holding the source key; empty creates none.')
param sourceKeySecretName string

@description('The source key.')
@secure()
param sourceKey string

@description('Secret holding the target keys (name=key,name=key); empty creates none.')
param targetKeysSecretName string

@description('The target keys.')
@secure()
param targetKeys string

@description('Rules form: secret holding the resource keys (name=key,name=key); empty creates none.')
param resourceKeysSecretName string = ''

@description('Rules form: the resource keys.')
@secure()
param resourceKeys string = ''

// Key Vault Secrets User: read secret values, nothing else (built-in role; Azure RBAC docs).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC instead of access policies, like every other grant here.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // A deleted vault (or secret) cannot be purged before its retention ends, by anyone: the keys
    // are recoverable for 90 days. Purge protection cannot be turned off again once on.
    enablePurgeProtection: true
    // The app reaches the vault without a virtual network; only Entra ID callers with a role get in.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource sourceKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(sourceKeySecretName)) {
  parent: vault
  name: empty(sourceKeySecretName) ? 'unused-source' : sourceKeySecretName
  properties: {
    value: sourceKey
    contentType: 'Document Intelligence resource key (DIMIRROR_SOURCE_KEY)'
  }
}

resource targetKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(targetKeysSecretName)) {
  parent: vault
  name: empty(targetKeysSecretName) ? 'unused-targets' : targetKeysSecretName
  properties: {
    value: targetKeys
    contentType: 'Document Intelligence target keys, name=key,... (DIMIRROR_TARGET_KEYS)'
  }
}

resource resourceKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(resourceKeysSecretName)) {
  parent: vault
  name: empty(resourceKeysSecretName) ? 'unused-resources' : resourceKeysSecretName
  properties: {
    value: resourceKeys
    contentType: 'Document Intelligence resource keys, name=key,... (DIMIRROR_RESOURCE_KEYS)'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
