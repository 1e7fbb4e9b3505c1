package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// EmailLinks is seed 001's flow as the API uses it.
type EmailLinks interface {
	Create(ctx context.Context, req flow.EmailLinkRequest) error
	Status(ctx context.Context, userID string) (flow.EmailLink, error)
	Withdraw(ctx context.Context, userID string) error
	Verify(ctx context.Context, secret string) (flow.EmailLink, error)
}

// EmailLink serves seed 001: {prefix}/api/v1/users/{userId}/email-link
// (POST creates, GET shows, DELETE withdraws) and
// {prefix}/api/v1/email-link/verify. Every answer, an error too, is the
// seed's JSON: {"error": "<sentence>"} for an error.
type EmailLink struct {
	Auth *Authenticator
	// Origin is base_url and Prefix mailgate's path prefix: a proof's htu
	// and the Location are built from them, never from the request's Host.
	Origin string
	Prefix string
	Links  EmailLinks
	// Failures limits wrong tickets per client IP; ClientIP is the IP as
	// the server resolved it (nil: the peer's address).
	Failures limit.Failures
	ClientIP func(r *http.Request) string
	// Observer is told of failures the caller only sees as 503. Nil:
	// nobody is told.
	Observer flow.Observer
}

// emailLinkError is seed 001's error body.
type emailLinkError struct {
	Error string `json:"error"`
}

func writeEmailLinkError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, emailLinkError{Error: msg})
}

// aboutUser is a sentence about user id in the seed's words, such as
// aboutUser(id, "cannot be found."); the answers the seed does not spell
// out are in the same voice.
func aboutUser(id, says string) string { return "User with id: " + id + " " + says }

const ticketNotFound = "The ticket cannot be found."

// authenticate checks the call's token for scope email_link, and answers a
// failure in the seed's shape with the RFC 6750 challenge.
func (h *EmailLink) authenticate(w http.ResponseWriter, r *http.Request) (*Client, bool) {
	// The proof names the URL as the client sent it, the user id escaped
	// as it was.
	client, aerr := h.Auth.Authenticate(r, h.Origin+r.URL.EscapedPath(), ScopeEmailLink)
	if aerr != nil {
		if aerr.Challenge != "" {
			w.Header().Set("WWW-Authenticate", aerr.Challenge)
		}
		writeEmailLinkError(w, aerr.Status, aerr.Description)
		return nil, false
	}
	return client, true
}

// unavailable answers a failure of the store, the directory or the mail
// server: 503, for the same call may work later. The seed's 500 is left
// for what mailgate itself got wrong.
func (h *EmailLink) unavailable(w http.ResponseWriter, what string, err error) {
	flow.Observed(h.Observer).Failed(what, err)
	writeEmailLinkError(w, http.StatusServiceUnavailable, "Service unavailable: "+unavailableHint(err))
}

type emailLinkRequest struct {
	Type      flow.EmailLinkType `json:"type"`
	URLPrefix string             `json:"urlPrefix"`
	Locale    string             `json:"locale"`
}

// Create is POST …/users/{userId}/email-link.
func (h *EmailLink) Create(w http.ResponseWriter, r *http.Request) {
	client, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	r = actingFor(r, client)
	id := r.PathValue("userId")
	var req emailLinkRequest
	if msg := decodeEmailLink(w, r, &req); msg != "" {
		writeEmailLinkError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	if msg := req.validate(client); msg != "" {
		writeEmailLinkError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	err := h.Links.Create(r.Context(), flow.EmailLinkRequest{
		UserID: id, Type: req.Type, URLPrefix: req.URLPrefix, Locale: req.Locale, Sender: client.Name,
	})
	switch {
	case err == nil:
		w.Header().Set("Location", h.Origin+h.Prefix+"/api/v1/users/"+url.PathEscape(id)+"/email-link")
		WriteJSON(w, http.StatusCreated, struct{}{})
	case errors.Is(err, directory.ErrNotFound):
		writeEmailLinkError(w, http.StatusNotFound, aboutUser(id, "cannot be found."))
	case errors.Is(err, flow.ErrEmailLinkExists):
		writeEmailLinkError(w, http.StatusUnprocessableEntity, aboutUser(id, "already has an email-link."))
	case errors.Is(err, flow.ErrSignedUp):
		writeEmailLinkError(w, http.StatusUnprocessableEntity, aboutUser(id, "has already completed the signup. Invitations are for users who have not; send a passwordReset instead."))
	case errors.Is(err, flow.ErrNotSignedUp):
		writeEmailLinkError(w, http.StatusUnprocessableEntity, aboutUser(id, "has not completed the signup. Password resets are for users who have; send an invitation instead."))
	case errors.Is(err, flow.ErrUserDisabled):
		writeEmailLinkError(w, http.StatusUnprocessableEntity, aboutUser(id, "is disabled."))
	case errors.Is(err, flow.ErrNotAdmitted):
		writeEmailLinkError(w, http.StatusUnprocessableEntity, aboutUser(id, "is not admitted by this site's allow rules. Give a urlPrefix that leads to the app's own page."))
	default:
		h.unavailable(w, "email-link: link not sent", err)
	}
}

// decodeEmailLink reads the body strictly (see DecodeJSON) and returns why
// it is not the documented JSON, or "".
func decodeEmailLink(w http.ResponseWriter, r *http.Request, dst any) string {
	switch err := DecodeJSON(w, r, dst); {
	case errors.Is(err, ErrNotJSON), errors.Is(err, ErrTrailing):
		return "Invalid request: " + err.Error() + "."
	case err != nil:
		return "Invalid request: the body must be a JSON object with the documented fields: " + err.Error() + "."
	}
	return ""
}

// validate checks the fields and normalizes the locale; it returns the
// seed's 422 sentence, or "".
func (req *emailLinkRequest) validate(client *Client) string {
	if req.Type != flow.Invitation && req.Type != flow.PasswordReset {
		return "Invalid request: type must be invitation or passwordReset."
	}
	if req.URLPrefix != "" && !client.AllowsEmailLinkPrefix(req.URLPrefix) {
		return "Invalid request: urlPrefix is not one of this client's email_link_prefix values."
	}
	loc, aerr := normalizeLocale(req.Locale)
	if aerr != nil {
		return "Invalid request: " + aerr.Description + "."
	}
	// An omitted locale is the user's, not the default.
	if req.Locale != "" {
		req.Locale = loc
	}
	return ""
}

// emailLinkStatus is GET's answer.
type emailLinkStatus struct {
	UserID    string             `json:"userId"`
	Type      flow.EmailLinkType `json:"type"`
	ExpiresAt time.Time          `json:"expiresAt"`
}

// Status is GET …/users/{userId}/email-link: 200 with the live link, 404
// when the user has none or does not exist.
func (h *EmailLink) Status(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authenticate(w, r); !ok {
		return
	}
	id := r.PathValue("userId")
	l, err := h.Links.Status(r.Context(), id)
	switch {
	case err == nil:
		WriteJSON(w, http.StatusOK, emailLinkStatus{UserID: id, Type: l.Type, ExpiresAt: l.Expires.UTC().Truncate(time.Second)})
	case errors.Is(err, directory.ErrNotFound):
		writeEmailLinkError(w, http.StatusNotFound, aboutUser(id, "cannot be found."))
	case errors.Is(err, flow.ErrNoEmailLink):
		writeEmailLinkError(w, http.StatusNotFound, aboutUser(id, "has no email-link."))
	default:
		h.unavailable(w, "email-link: reading a link", err)
	}
}

// Withdraw is DELETE …/users/{userId}/email-link: 204, after which the link
// no longer works and a new one may be made.
func (h *EmailLink) Withdraw(w http.ResponseWriter, r *http.Request) {
	client, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	r = actingFor(r, client)
	id := r.PathValue("userId")
	err := h.Links.Withdraw(r.Context(), id)
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, directory.ErrNotFound):
		writeEmailLinkError(w, http.StatusNotFound, aboutUser(id, "cannot be found."))
	case errors.Is(err, flow.ErrNoEmailLink):
		writeEmailLinkError(w, http.StatusNotFound, aboutUser(id, "has no email-link."))
	default:
		h.unavailable(w, "email-link: withdrawing a link", err)
	}
}

type verifyRequest struct {
	Ticket string `json:"ticket"`
}

type verifyResponse struct {
	UserID string             `json:"userId"`
	Type   flow.EmailLinkType `json:"type"`
}

// Verify is POST …/email-link/verify: 200 {userId, type} and the ticket is
// used up; 404 for a ticket that is unknown, used, withdrawn or expired,
// one answer for all. Each try is counted against the caller's IP before
// the ticket is looked up, as every check of a secret is.
func (h *EmailLink) Verify(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.authenticate(w, r); !ok {
		return
	}
	var req verifyRequest
	if msg := decodeEmailLink(w, r, &req); msg != "" {
		writeEmailLinkError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	if req.Ticket == "" {
		writeEmailLinkError(w, http.StatusUnprocessableEntity, "Invalid request: ticket is required.")
		return
	}
	attempt, err := h.Failures.TryIP(r.Context(), limit.ClientIP(r, h.ClientIP))
	var exceeded *limit.ExceededError
	switch {
	case errors.As(err, &exceeded):
		setRetryAfter(w, exceeded.RetryAfter)
		writeEmailLinkError(w, http.StatusTooManyRequests, "Too many tickets that could not be found ("+exceeded.Rule+"); try again after Retry-After seconds.")
		return
	case err != nil:
		h.unavailable(w, "email-link: counting an attempt at a ticket", err)
		return
	}
	defer func() {
		if err := attempt.Done(context.WithoutCancel(r.Context())); err != nil {
			flow.Observed(h.Observer).Failed("email-link: giving back an attempt at a ticket", err)
		}
	}()
	l, err := h.Links.Verify(r.Context(), req.Ticket)
	switch {
	case err == nil:
		WriteJSON(w, http.StatusOK, verifyResponse{UserID: l.UserID, Type: l.Type})
	case errors.Is(err, flow.ErrLinkInvalid):
		attempt.Failed()
		writeEmailLinkError(w, http.StatusNotFound, ticketNotFound)
	default:
		h.unavailable(w, "email-link: verifying a ticket", err)
	}
}

// emailLinkNotAllowed answers a method a seed 001 path does not serve, in
// the seed's shape, with Allow.
func emailLinkNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeEmailLinkError(w, http.StatusMethodNotAllowed, "Use "+allow+".")
	})
}
