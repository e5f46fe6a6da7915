package didev

import (
	"fmt"
	"net/http"
)

// Error codes didev answers with. The recorded ones match the live service word for word; the
// rest are documented as assumptions in docs/didev.md.
const (
	CodeInvalidRequest        = "InvalidRequest"
	CodeInvalidArgument       = "InvalidArgument"
	CodeNotFound              = "NotFound"
	CodeConflict              = "Conflict"
	CodeForbidden             = "Forbidden"
	CodeInternalServerError   = "InternalServerError"
	CodeModelNotFound         = "ModelNotFound"
	CodeOperationNotFound     = "OperationNotFound"
	CodeModelNotReady         = "ModelNotReady"
	CodeModelExists           = "ModelExists"
	CodeDocumentModelLimit    = "DocumentModelLimit"
	CodeParameterMissing      = "ParameterMissing"
	CodeInvalidParameter      = "InvalidParameter"
	CodeInvalidParameterLen   = "InvalidParameterLength"
	CodeAuthorizationExpired  = "AuthorizationExpired"
	CodeAuthorizationFailed   = "AuthorizationFailed"
	CodeAuthMetadataNotFound  = "AuthorizationMetadataNotFound"
	CodeDataProtection        = "DataProtectionTransformServiceError"
	CodeResourceResolverError = "ResourceResolverError"
	CodeV21Invalid            = "1002" // v2.1: invalid copy request, expired authorization
	CodeV21ModelNotFound      = "1022" // v2.1: model not found
	CodeV21AuthMetadata       = "2024" // v2.1: could not retrieve authorization metadata
	CodeV21AuthError          = "AuthorizationError"
)

// apiError is the v3/v4 error object: {"code","message","target"?,"details"?,"innererror"?}.
type apiError struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Target  string      `json:"target,omitempty"`
	Details []apiError  `json:"details,omitempty"`
	Inner   *innerError `json:"innererror,omitempty"`
}

type innerError struct {
	Code    string      `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
	Inner   *innerError `json:"innererror,omitempty"`
}

// v2Error is a v2.1 error: {"code","message"} (copy results add innerError.requestId).
type v2Error struct {
	Code       string        `json:"code"`
	InnerError *v2InnerError `json:"innerError,omitempty"`
	Message    string        `json:"message"`
}

type v2InnerError struct {
	RequestID string `json:"requestId"`
}

// httpError is a synchronous error answer: the status and the body's error object.
type httpError struct {
	status int
	err    apiError
}

func newErr(status int, code, msg, innerCode, innerMsg string) *httpError {
	e := &httpError{status: status, err: apiError{Code: code, Message: msg}}
	if innerCode != "" {
		e.err.Inner = &innerError{Code: innerCode, Message: innerMsg}
	}
	return e
}

// Recorded error bodies (CONTRACT §5) and the decided copy-authorization failures.
func errModelNotFound() *httpError {
	return newErr(http.StatusNotFound, CodeNotFound, "Resource not found.", CodeModelNotFound, "The requested model was not found.")
}

func errOperationNotFound() *httpError {
	return newErr(http.StatusNotFound, CodeNotFound, "Resource not found.", CodeOperationNotFound,
		"The requested operation was not found. The identifier may be invalid or the operation may have expired.")
}

func errModelNotReady() *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidRequest, "Invalid request.", CodeModelNotReady,
		"Model is not ready for the requested operation. Wait for training to complete or check for operation errors.")
}

func errModelExists() *httpError {
	return newErr(http.StatusConflict, CodeConflict,
		"The request could not be completed due to a conflict with the current state of the target resource.",
		CodeModelExists, "A model with the provided name already exists.")
}

func errModelLimit(limit int) *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidRequest, "Invalid request.", CodeDocumentModelLimit,
		fmt.Sprintf("Account can't create more than %d models.", limit))
}

func errParamMissing(p string) *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidArgument, "Invalid argument.", CodeParameterMissing,
		fmt.Sprintf("The parameter %s is required.", p))
}

func errParamInvalid(p, why string) *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidArgument, "Invalid argument.", CodeInvalidParameter,
		fmt.Sprintf("The parameter %s is invalid: %s", p, why))
}

func errParamLength(p string, max int) *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidArgument, "Invalid argument.", CodeInvalidParameterLen,
		fmt.Sprintf("The parameter %s exceeds the maximum length of %d.", p, max))
}

func errAuthExpired() *httpError {
	return newErr(http.StatusBadRequest, CodeInvalidRequest, "Invalid request.", CodeAuthorizationExpired,
		"The copy authorization has expired. Request a new authorization from the target resource.")
}

// Operation errors (a copy that was accepted with 202 and then failed).
func opErrAuthFailed() *apiError {
	return &apiError{Code: CodeForbidden, Message: "Forbidden.", Inner: &innerError{
		Code: CodeAuthorizationFailed, Message: "Authorization failure due to missing or invalid authorization claims."}}
}

func opErrAuthUsed() *apiError {
	return &apiError{Code: CodeInvalidRequest, Message: "Invalid request.", Inner: &innerError{
		Code: CodeAuthMetadataNotFound, Message: "Couldn't retrieve authorization metadata. If this issue persists use a different target model to copy into."}}
}

func opErrDowngrade() *apiError {
	return &apiError{Code: CodeInvalidRequest, Message: "Invalid request.", Inner: &innerError{
		Code: CodeDataProtection, Message: "Data transfer request isn't allowed as it downgrades to a less secure data protection scheme. Set the x-ms-forms-copy-degrade header to allow it."}}
}

func opErrResolver(resourceID string) *apiError {
	return &apiError{Code: CodeInvalidRequest, Message: "Invalid request.", Inner: &innerError{
		Code: CodeResourceResolverError, Message: fmt.Sprintf("Couldn't fetch information for Cognitive resource with ID '%s'.", resourceID)}}
}

func opErrModelLimit(limit int) *apiError {
	e := errModelLimit(limit).err
	return &e
}

func opErrInternal() *apiError {
	return &apiError{Code: CodeInternalServerError, Message: "An unexpected error occurred."}
}

func opErrTargetExists() *apiError {
	return &apiError{Code: CodeConflict, Message: "The request could not be completed due to a conflict with the current state of the target resource.",
		Inner: &innerError{Code: CodeModelExists, Message: "A model with the provided name already exists."}}
}

// v2.1 messages.
const (
	v2MsgAuthMetadata = "Could not retrieve authorization metadata. If this issue persists use a different target model to copy into."
	v2MsgBadResource  = "Copy request is invalid. Field 'TargetResourceId' must be a valid Azure Resource ID."
	v2MsgBadRegion    = "Copy request is invalid. Field 'TargetResourceRegion' must be a valid Azure region name."
	v2MsgNoAuth       = "Copy request is invalid. Field 'CopyAuthorization' is required."
	v2MsgAuthExpired  = "Copy request is invalid. The copy authorization has expired. Request a new authorization from the target resource."
	v2MsgSourceBusy   = "Copy request is invalid. The source model is not ready."
)

func v2ModelNotFound(id string) string { return fmt.Sprintf("Model with 'id=%s' not found.", id) }

// Gateway (APIM) bodies: no backend headers, "code" is the status as a string.
const (
	gatewayNotFoundBody = `{"error":{"code":"404","message":"Resource not found"}}`
	badKeyBody          = `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}`
	missingKeyBody      = `{"error":{"code":"401","message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}`
	bearerRefusedBody   = `{"error":{"code":"BadRequest","message":"Please provide an authentication key."}}`
	internalErrorBody   = `{"error":{"code":"InternalServerError","message":"An unexpected error occurred."}}`
)

func throttledBody(op, version, tier string) string {
	return fmt.Sprintf(`{"error":{"code":"429","message":"Requests to the %s Operation under Form Recognizer API (%s) have exceeded rate limit of your current FormRecognizer %s pricing tier. Please retry after 1 second. To increase your default rate limit, please contact Azure support."}}`,
		op, version, tier)
}
