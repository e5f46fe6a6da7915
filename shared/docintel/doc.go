// Package docintel is a client for the Copy API of Azure AI Document Intelligence (formerly Form
// Recognizer): it authorizes a copy on a target resource, starts it on the source resource and
// polls the operation, and it reads, lists and deletes custom models and classifiers.
//
// # Design
//
// A Client talks to one resource with one api-version (2024-11-30, 2023-07-31, 2022-08-31 or the
// legacy 2.1). A copy always needs two clients: the target's issues the Authorization, the
// source's receives CopyTo and is polled with GetOperation. Authorization.Body is the opaque JSON
// that carries the copy's access token from one to the other; nothing else holds it, and every
// way of printing an Authorization (fmt verbs, slog) redacts it. An answer without a usable
// expiry (missing or unparsable) gets the documented lifetime, AuthorizationLifetime, counted
// from before the request was sent (ExpiryAssumed is set and the first one per client is a
// warning), never the zero time, which would read as long expired.
//
// Requests go through an azcore pipeline: its retry policy retries 408, 429 and 5xx with
// exponential back-off and honours Retry-After, except that CopyTo is sent again only after a
// 429 (a copy whose answer was lost or was a 5xx may have started, and its authorization is
// single-use: the caller looks for the operation before trying again); its key or bearer-token
// policy authenticates (bearer scope https://cognitiveservices.azure.com/.default); its telemetry policy puts
// "dimirror" in User-Agent. Plain http is accepted only for loopback endpoints (local emulators).
// Every call gets Options.CallTimeout as deadline, retries included, or its context's deadline
// when that comes first. The default transport (NewHTTPClient) bounds each try on its own too
// (dial, TLS handshake, response headers). It does not follow redirects, which would hand the key
// to another host, and the client refuses Operation-Locations (as soon as CopyTo receives one),
// operation URLs and nextLinks that leave the endpoint, its host or its path, for the same reason.
//
// Every non-2xx answer is an *Error, parsed from any of the shapes the service uses (v3/v4 error
// with innererror or innerError chains, v2.1's numeric codes, the gateway's and APIM's bodies,
// or plain text), with apim-request-id and Retry-After. Predicates such as IsModelExists,
// IsModelNotReady, IsAuthorizationInvalid and IsTransient classify it; a failed operation's
// Operation.Error answers the same predicates. The key, bearer tokens and copy access tokens the
// client knows are scrubbed from every error and log line, and authorizeCopy answers are never
// echoed into errors.
//
// # v2.1
//
// v2.1 differs on the wire but not in this API; the client translates:
//
//   - AuthorizeCopy posts an empty body to /custom/models/copyAuthorization (201, Location header)
//     and the service picks the target id (a UUID); AuthorizeRequest is ignored. The answer's
//     expirationDateTimeTicks are Unix seconds (older .NET ticks are recognised too). The source
//     needs the target's ARM resource id and region next to that answer, so a v2.1 TARGET client
//     must be built with Options.ResourceID and Options.Region, and Authorization.Body becomes
//     {"targetResourceId","targetResourceRegion","copyAuthorization":<the answer, verbatim>}.
//   - CopyTo posts that body to /custom/models/{id}/copy; the Operation-Location it returns ends in
//     /copyresults/{resultId} (lowercase, as the service writes it).
//   - GetOperation reads the copy result. A failed copy is served with HTTP 200 and status
//     "failed"; it becomes Operation.Status failed with Operation.Error built from
//     copyResult.errors (or the ms-azure-ai-errorcode / x-ms-cs-error-code header). Codes 2024 and
//     AuthorizationError, and 1002 about an authorization, count as IsAuthorizationInvalid.
//   - Models lists ?op=full (an empty nextLink ends the list), Info reads ?op=summary, and ids
//     must be UUIDs. There are no classifiers and no operation list: those calls return
//     ErrUnsupported.
//
// Classifier get, list and delete need 2023-07-31 or later; classifier copy needs 2024-11-30.
package docintel
