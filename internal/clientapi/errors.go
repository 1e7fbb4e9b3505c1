package clientapi

import (
	"net/http"

	"github.com/mailgate/caddy-mailgate/internal/api"
)

// Error is the client-side API's error: api's type (a status, a
// machine-readable code and a sentence for people, with WithHint), written
// in seed 003's own shape, {"error": {"code": "…", "description": "…"}}.
type Error = api.Error

// The errors of seed 003, one per code and status. Each is a template:
// answer with a copy, ErrX.WithHint("what was wrong"), never with the
// sentinel changed in place.
var (
	// ErrInvalidProjectID is a projectId that is not a UUID.
	ErrInvalidProjectID = &Error{Status: http.StatusBadRequest, Code: "invalid_project_id"}
	// ErrProjectNotFound is a projectId no project has.
	ErrProjectNotFound = &Error{Status: http.StatusNotFound, Code: "project_not_found"}
	// ErrOriginNotAllowed is a preflight from an origin that may not call
	// for the project.
	ErrOriginNotAllowed = &Error{Status: http.StatusForbidden, Code: "origin_not_allowed"}
	// ErrMethodNotAllowed is a method the endpoint does not serve.
	ErrMethodNotAllowed = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed"}
	// ErrBadRequest is a body that is not one JSON object sent as
	// application/json.
	ErrBadRequest = &Error{Status: http.StatusBadRequest, Code: "bad_request"}
	// ErrInvalidField is a body field of the wrong JSON type.
	ErrInvalidField = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_field"}
	// ErrUnknownField is a body field the endpoint does not read.
	ErrUnknownField = &Error{Status: http.StatusUnprocessableEntity, Code: "unknown_field"}
	// ErrMissingField is a required field left out or empty.
	ErrMissingField = &Error{Status: http.StatusUnprocessableEntity, Code: "missing_field"}
	// ErrInvalidEmail is an email that is too long, empty or no address.
	ErrInvalidEmail = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_email"}
	// ErrInvalidLoginURL is a login_url that is none of the project's
	// callback URLs, or missing where it is needed.
	ErrInvalidLoginURL = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_login_url"}
	// ErrInvalidLinkURL is the same for link_url.
	ErrInvalidLinkURL = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_link_url"}
	// ErrPayloadNotAllowed is a payload sent to a project that takes none.
	ErrPayloadNotAllowed = &Error{Status: http.StatusUnprocessableEntity, Code: "payload_not_allowed"}
	// ErrPayloadTooLong is a payload over the flow's bound.
	ErrPayloadTooLong = &Error{Status: http.StatusUnprocessableEntity, Code: "payload_too_long"}
	// ErrInvalidWithLogout is a with_logout other than "0" or "1".
	ErrInvalidWithLogout = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_with_logout"}
	// ErrWrongCode is a code that is not the one mailed.
	ErrWrongCode = &Error{Status: http.StatusUnprocessableEntity, Code: "wrong_code"}
	// ErrCodeExpired is an operation that is over: expired, used or
	// replaced, without saying which.
	ErrCodeExpired = &Error{Status: http.StatusUnprocessableEntity, Code: "code_expired"}
	// ErrNotConfirmed is a code asked for before its link was confirmed.
	ErrNotConfirmed = &Error{Status: http.StatusUnprocessableEntity, Code: "not_confirmed"}
	// ErrInvalidToken is a user JWT that is missing, invalid, expired or
	// ended; it goes with WWW-Authenticate.
	ErrInvalidToken = &Error{Status: http.StatusUnauthorized, Code: "invalid_token"}
	// ErrTooManyRequests is a call over a rate limit; it goes with
	// Retry-After.
	ErrTooManyRequests = &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests"}
	// ErrTemporarilyUnavailable is a store or the mail that failed: the
	// same call may work later.
	ErrTemporarilyUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}
)

// writeError writes e in seed 003's shape.
func writeError(w http.ResponseWriter, e *Error) {
	type body struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	}
	api.WriteJSON(w, e.Status, map[string]body{"error": {Code: e.Code, Description: e.Description}})
}
