package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// Error is an error of a JSON contract: a status, a machine-readable code
// and a sentence for people. WriteError sends it in the RFC 6749 shape that
// the token endpoint and seed 000 answer with; seed 002 and the client-side
// API (clientapi) write the same error in their own shapes.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Challenge, if set, is sent as WWW-Authenticate.
	Challenge string `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Is reports whether target is an *Error with e's code and status, so that
// errors.Is(err, ErrInvalidGrant) holds for every copy WithHint made of the
// sentinel, whatever its description or challenge.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code && t.Status == e.Status
}

// WithHint returns a copy of e with desc as its description. It never
// changes e: the sentinels below are shared by every request.
func (e *Error) WithHint(desc string) *Error {
	c := *e
	c.Description = desc
	return &c
}

// WithChallenge returns a copy of e that is sent with challenge as
// WWW-Authenticate. Like WithHint, it leaves e as it is.
func (e *Error) WithChallenge(challenge string) *Error {
	c := *e
	c.Challenge = challenge
	return &c
}

// The errors of the API, one per code and status it answers with. Each is a
// template: answer with a copy, ErrX.WithHint("what was wrong"), never with
// the sentinel changed in place. Codes that are answered with two statuses
// (invalid_dpop_proof, and the 405s) have a sentinel for each, so that Is
// tells them apart.
var (
	// Seed 000 (login email).

	// ErrInvalidInput is seed 000's answer to a body that is not the
	// documented JSON, or a field with a value it does not accept.
	ErrInvalidInput = &Error{Status: http.StatusBadRequest, Code: "invalid_input"}
	// ErrInvalidInputMethod is seed 000's answer to a method other than
	// POST: its own code, with 405.
	ErrInvalidInputMethod = &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_input"}
	// ErrSelectorInvalid is seed 000's answer to a selector that is missing
	// or neither email nor username.
	ErrSelectorInvalid = &Error{Status: http.StatusBadRequest, Code: "selector_invalid"}
	// ErrBothEmailAndUsername is seed 000's answer to a body that names the
	// user twice.
	ErrBothEmailAndUsername = &Error{Status: http.StatusBadRequest, Code: "both_email_and_username_are_provided"}
	// ErrNoRedirectURI is seed 000's answer to a body without redirect_uri.
	ErrNoRedirectURI = &Error{Status: http.StatusBadRequest, Code: "no_redirect_uri_provided"}
	// ErrRedirectURIMismatch is seed 000's answer to a redirect_uri the
	// client did not register.
	ErrRedirectURIMismatch = &Error{Status: http.StatusBadRequest, Code: "redirect_uri_mismatch"}
	// ErrLocaleInvalid is seed 000's answer to a locale not shaped like
	// en-GB.
	ErrLocaleInvalid = &Error{Status: http.StatusBadRequest, Code: "locale_invalid"}
	// ErrLocaleNotSupported is seed 000's answer to a well-formed locale
	// mailgate has no texts for.
	ErrLocaleNotSupported = &Error{Status: http.StatusBadRequest, Code: "locale_not_supported"}
	// ErrAccountNotFound is seed 000's answer when no enabled account
	// matches the email or username.
	ErrAccountNotFound = &Error{Status: http.StatusNotFound, Code: "account_not_found"}

	// Users API.

	// ErrUnprocessable is a users API body or query that is not the
	// documented JSON, or a field with a value it does not accept.
	ErrUnprocessable = &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request"}
	// ErrUserNotFound is a user id or address no user has.
	ErrUserNotFound = &Error{Status: http.StatusNotFound, Code: "user_not_found"}
	// ErrEmailTaken is an address another user has.
	ErrEmailTaken = &Error{Status: http.StatusConflict, Code: "email_taken"}
	// ErrUsernameTaken is a username another user has.
	ErrUsernameTaken = &Error{Status: http.StatusConflict, Code: "username_taken"}

	// Shared by the endpoints.

	// ErrTooManyRequests is a call over one of the rate limits; it goes
	// with Retry-After (see WriteLimited).
	ErrTooManyRequests = &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests"}

	// ErrTemporarilyUnavailable is a store or the mail that failed: the
	// same call may work later (RFC 6749 section 4.1.2.1 names the code).
	ErrTemporarilyUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}
	// ErrServerError is a failure of mailgate itself, such as a token it
	// could not sign (RFC 6749 section 4.1.2.1 names the code).
	ErrServerError = &Error{Status: http.StatusInternalServerError, Code: "server_error"}

	// Token endpoint (RFC 6749 section 5.2, RFC 9449 section 5).

	// ErrInvalidRequest is a token request that is malformed: no form,
	// a missing parameter, two client authentication methods.
	ErrInvalidRequest = &Error{Status: http.StatusBadRequest, Code: "invalid_request"}
	// ErrInvalidRequestMethod is the token endpoint's answer to a method
	// other than POST (RFC 6749 section 3.2 allows only POST).
	ErrInvalidRequestMethod = &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request"}
	// ErrUnsupportedGrantType is a grant_type mailgate does not implement.
	ErrUnsupportedGrantType = &Error{Status: http.StatusBadRequest, Code: "unsupported_grant_type"}
	// ErrInvalidClient is a failed client authentication; a client that
	// tried Basic also gets a Basic challenge (RFC 6749 section 5.2).
	ErrInvalidClient = &Error{Status: http.StatusUnauthorized, Code: "invalid_client"}
	// ErrInvalidScope is a scope asked for that the client was not given.
	ErrInvalidScope = &Error{Status: http.StatusBadRequest, Code: "invalid_scope"}
	// ErrInvalidGrant is an authorization code that is unknown, used,
	// expired, another client's or another redirect URI's, or whose account
	// is gone.
	ErrInvalidGrant = &Error{Status: http.StatusBadRequest, Code: "invalid_grant"}
	// ErrInvalidDPoPProof is a DPoP proof the token endpoint rejects, or
	// lacks from a client that must send one (RFC 9449 section 5: 400).
	ErrInvalidDPoPProof = &Error{Status: http.StatusBadRequest, Code: "invalid_dpop_proof"}

	// API calls, the resource server (RFC 6750 section 3.1, RFC 9449
	// section 7.1). These carry a WWW-Authenticate challenge.

	// ErrInvalidToken is an access token that is missing, invalid, expired,
	// or sent with a scheme its client or binding does not allow.
	ErrInvalidToken = &Error{Status: http.StatusUnauthorized, Code: "invalid_token"}
	// ErrInvalidDPoPProofResource is a DPoP proof an API call is refused
	// for: 401 with a challenge, unlike the token endpoint's 400 (RFC 9449
	// section 7.1).
	ErrInvalidDPoPProofResource = &Error{Status: http.StatusUnauthorized, Code: "invalid_dpop_proof"}
	// ErrInsufficientScope is a valid token without the scope the call
	// needs, or whose client no longer has it.
	ErrInsufficientScope = &Error{Status: http.StatusForbidden, Code: "insufficient_scope"}
)

// WriteJSON writes v with status and no caching: API answers carry tokens,
// codes or facts about accounts. nosniff keeps a browser from reading a JSON
// answer as anything else.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Descriptions quote <token> and the like; \u003c would only confuse
	// the person reading them.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"server_error"}` + "\n")
	}
	b := buf.Bytes()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes e in the API's error shape.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	WriteJSON(w, e.Status, e)
}

// setRetryAfter says, in whole seconds rounded up, when a limited call may
// be tried again (RFC 9110 section 10.2.3).
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(d)))
}

// unavailableHint says why a mail-sending call failed without blaming the
// mail for what was not the mail: only flow.ErrDelivery means a mail server
// or the queue refused it; anything else (the store, the directory) failed
// before a mail was tried.
func unavailableHint(err error) string {
	if errors.Is(err, flow.ErrDelivery) {
		return "the email could not be sent; try again later"
	}
	return "the request could not be handled now and no email was sent; try again later"
}
