// Package funcproto decodes the requests the Azure Functions host sends to a custom handler
// and encodes the handler's replies.
//
// # Requests
//
// The host POSTs {"Data":{...},"Metadata":{...}} to /{FunctionName}. Data holds the trigger and
// every input binding, keyed by binding name (case-sensitive, as written in function.json);
// Metadata holds the trigger's binding data plus "sys". DecodeRequest reads and size-limits the
// envelope; HTTP, ServiceBus and Timer then decode one binding each.
//
// The host encodes most scalar values twice: a .NET string, int or long is serialised with
// JsonConvert.SerializeObject and the resulting JSON text is placed as a JSON string. A MessageId
// 088f... therefore arrives as "\"088f...\"" and a DeliveryCount of 1 as "1". UnwrapString undoes
// one such level and accepts values that were encoded only once (the docs' samples are), so both
// shapes decode to the same Go value. Dictionaries and POCOs (HTTP requests, timer info,
// application properties) arrive as plain JSON objects. DateTime values arrive without a zone
// ("2025-01-15T10:15:30", read as UTC); DateTimeOffset values carry their offset.
//
// # Service Bus
//
// The message body is a .NET string, so it is double-encoded in both extension generations:
// the 2020 capture (extension 4.x) and the 5.x shape derived from the host source both carry a
// JSON body {"a":1} as Data.<name> = "\"{\\\"a\\\":1}\"". ServiceBusMessage.Body is the result of
// unwrapping the outer JSON string and then the host's SerializeObject layer, i.e. exactly the
// bytes that were sent ({"a":1}). A body sent as a single-encoded string (docs samples) is taken
// as is; a body that arrives as a JSON object or array is kept as that JSON text. A binary body
// delivered as byte[] would arrive base64 encoded once and is indistinguishable from text, so it
// is returned as the base64 text; dimirror only sends JSON bodies.
//
// The metadata differs between the generations and ServiceBus reads either: 4.x has Label,
// UserProperties and double-quoted ExpiresAtUtc/EnqueuedTimeUtc ("\"2020-10-22T21:49:35.809Z\"");
// 5.x has Subject, ApplicationProperties, zone-less ExpiresAtUtc/EnqueuedTimeUtc and offset-
// carrying ExpiresAt/EnqueuedTime (preferred when present). The host also copies the top-level
// fields of a JSON body into Metadata; those keys are ignored here.
//
// # Responses
//
// The handler answers {"Outputs":{...},"Logs":[...],"ReturnValue":...} with a 2xx status. A
// non-2xx status, or a 2xx with invalid JSON, fails the invocation and discards Outputs and
// Logs: the caller of an HTTP trigger gets a 500, a Service Bus message is abandoned and
// redelivered.
package funcproto
