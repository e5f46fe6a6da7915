// Service Bus: the copy queue. Each copy message carries one single-use copy authorization and its
// MessageId is <kind>:<sourceId>:<target>:<attempt>, one per authorization, so duplicate detection
// drops a retried send of the same attempt while a new attempt (new authorization) always passes.
// Check messages (scheduled looks at a started copy, no authorization) share the queue, with
// MessageId <kind>:<sourceId>:<target>:<attempt>:check<n>.

@description('Namespace name: 6-50 letters, digits and "-", globally unique.')
@minLength(6)
@maxLength(50)
param name string

param location string
param tags object

@description('Queue carrying the copy requests.')
param queueName string

@description('Time to live of a copy message (ISO 8601); expired messages are dead-lettered.')
param messageTimeToLive string

@description('Principal (object) ID of the app identity.')
param principalId string

// Built-in roles, granted on the queue only (least privilege: not the namespace, and not Data
// Owner, which could also manage entities).
var roles = {
  // The authorizer and the poller send copy messages (dimirror's own azservicebus sender).
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  // The Functions host's Service Bus trigger receives, completes and abandons them.
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // Entra ID only: no SAS keys, so no connection string exists to leak.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    // Standard has no private endpoints; the endpoint accepts only Entra ID tokens.
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    // The Functions host renews the lock (maxAutoLockRenewalDuration in host.json); a short lock
    // lets a crashed instance's message come back quickly.
    lockDuration: 'PT1M'
    // A message failing this often is dead-lettered (MaxDeliveryCountExceeded); the poller then
    // re-drives the replica once its authorization expires.
    maxDeliveryCount: 10
    // Fixed at creation: changing it means re-creating the queue.
    requiresDuplicateDetection: true
    // Covers a send retried after a lost acknowledgement; a renewed authorization has a new
    // attempt number, hence a new MessageId, and is never mistaken for a duplicate.
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in items(roles): {
    name: guid(queue.id, principalId, role.value)
    scope: queue
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

output id string = namespace.id
output name string = namespace.name
// The host name only (e.g. sb-dimirror-xyz.servicebus.windows.net), as the settings want it; read
// from the endpoint (https://<host>:443/) so that other clouds' suffixes come out right.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '/')[2], ':')[0]
output queueName string = queue.name
