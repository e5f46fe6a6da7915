// Alerts on replication freshness, the recovery point objective and the copy queue. dimirror logs one JSON line per event
// (log/slog) to the custom handler's output, which the Functions host forwards to Application
// Insights: each line is the Message of a row in the workspace's AppTraces table. The queries
// match the event's "msg" field; docs/DEPLOY.md lists them and the events they rely on.

@description('Prefix of the alert rule names.')
param namePrefix string

param location string
param tags object

@description('Log Analytics workspace the Application Insights resource writes to.')
param workspaceId string

@description('Service Bus namespace holding the copy queue.')
param serviceBusNamespaceId string

@description('The copy queue.')
param queueName string

@description('E-mail address notified; empty means rules without notifications.')
param alertEmail string

@description('Alert when the oldest pending replica is older than this many minutes.')
param oldestPendingAlertMinutes int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'dimirror'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroupIds = empty(alertEmail) ? [] : [actionGroup.id]

// Every "replica failed" event (also "replica failed: attempts exhausted"), one alert per target.
var replicaFailedQuery = '''
AppTraces
| where Message contains '"msg":"replica failed'
| extend target = extract('"target":"([^"]*)"', 1, Message)
| project TimeGenerated, target
'''

// The freshness event every sweep logs per target (hourly by default; see docs/ARCHITECTURE.md,
// "Reconciliation"); its oldestPendingSeconds attribute is the age of the oldest replica not yet
// succeeded or failed. The two-hour window always holds the last sweep's figures.
var oldestPendingQuery = '''
AppTraces
| where Message contains '"msg":"freshness"'
| extend oldestPendingMinutes = todouble(extract('"oldestPendingSeconds":([0-9.]+)', 1, Message)) / 60.0
| where isnotnull(oldestPendingMinutes)
| project TimeGenerated, oldestPendingMinutes
'''

// The rpo-missed event: logged once per replica made later than its source was ready plus
// DIMIRROR_RPO, or still not made past that point (attributes kind, sourceId, target, targetId,
// rpoSeconds, lagSeconds or pendingSeconds, sourceReady; docs/ARCHITECTURE.md). One alert per
// target, like failed replicas.
var rpoMissedQuery = '''
AppTraces
| where Message contains '"msg":"rpo-missed"'
| extend target = extract('"target":"([^"]*)"', 1, Message)
| project TimeGenerated, target
'''

resource replicaFailed 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-replica-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dimirror: replica failed'
    description: 'A replica reached the failed state (permanent error or attempts exhausted). The status API and the row\'s ErrorCode/ErrorMessage say why.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: replicaFailedQuery
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'target'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Stateful: one notification per episode, resolved when no failure was seen for a window.
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource oldestPending 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-oldest-pending'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dimirror: replication falling behind'
    description: 'The oldest pending replica is older than ${oldestPendingAlertMinutes} minutes: copies are not completing (target quota, authorization or service problems, or the app is not running).'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT2H'
    criteria: {
      allOf: [
        {
          query: oldestPendingQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'oldestPendingMinutes'
          operator: 'GreaterThan'
          threshold: oldestPendingAlertMinutes
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource rpoMissed 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-rpo-missed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dimirror: recovery point objective missed'
    description: 'A replica was made later than its source model was ready plus DIMIRROR_RPO, or is still not made past that point: this target lags behind the objective. The summary API lists the replicas at risk.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: rpoMissedQuery
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'target'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Resolved once a window passes without a new miss on that target.
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

// Messages in the queue's dead-letter sub-queue (a gauge): copy messages that failed every
// delivery or expired. The replicas recover on their own; the messages stay until inspected.
resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-lettered'
  location: 'global'
  tags: tags
  properties: {
    description: 'Copy messages are dead-lettered in ${queueName}. Inspect the dead-letter queue (reason DeadLetterReason) and purge it once understood.'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                queueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    autoMitigate: true
    actions: [
      for id in actionGroupIds: {
        actionGroupId: id
      }
    ]
  }
}

output ruleIds array = [
  replicaFailed.id
  oldestPending.id
  rpoMissed.id
  deadLettered.id
]
