package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/locale"
)

// Users finds accounts for the API.
type Users interface {
	ByEmail(ctx context.Context, email string) (directory.User, error)
	ByUsername(ctx context.Context, username string) (directory.User, error)
}

// ClientLinks mails a login link on an app's behalf.
type ClientLinks interface {
	RequestForClient(ctx context.Context, u directory.User, locale string, c flow.ClientLogin) error
}

// LoginEmail is POST {prefix}/api/v1/login-email: mail a user a link that
// logs them in and ends at the app's redirect URI with a code (seed 000).
type LoginEmail struct {
	Auth  *Authenticator
	URL   string
	Users Users
	Links ClientLinks
	// Observer is told of failures the caller only sees as 503. Nil:
	// nobody is told.
	Observer flow.Observer
}

type loginEmailRequest struct {
	Selector            *string `json:"selector"`
	Email               string  `json:"email"`
	Username            string  `json:"username"`
	RedirectURI         string  `json:"redirect_uri"`
	State               string  `json:"state"`
	Locale              string  `json:"locale"`
	CodeChallenge       string  `json:"code_challenge"`
	CodeChallengeMethod string  `json:"code_challenge_method"`
}

func (h *LoginEmail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client, aerr := h.Auth.Authenticate(r, h.URL, ScopeLoginEmail)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	r = actingFor(r, client)
	req, aerr := decodeLoginEmail(w, r)
	if aerr == nil {
		aerr = req.validate(client)
	}
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	u, err := h.find(r.Context(), req)
	if errors.Is(err, directory.ErrNotFound) {
		WriteError(w, ErrAccountNotFound.WithHint("no account matches this "+*req.Selector))
		return
	}
	if err == nil {
		err = h.Links.RequestForClient(r.Context(), u, req.Locale, flow.ClientLogin{
			ClientID: client.ID, AppName: client.Name, RedirectURI: req.RedirectURI, State: req.State, CodeChallenge: req.CodeChallenge,
		})
	}
	var tooLong *flow.TooLongError
	if errors.As(err, &tooLong) {
		WriteError(w, ErrInvalidInput.WithHint(tooLong.Error()))
		return
	}
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) {
		setRetryAfter(w, exceeded.RetryAfter)
		WriteError(w, ErrTooManyRequests.WithHint("too many login emails ("+exceeded.Rule+"); try again after Retry-After seconds"))
		return
	}
	if err != nil {
		flow.Observed(h.Observer).Failed("login-email: link not sent", err)
		WriteError(w, ErrTemporarilyUnavailable.WithHint(unavailableHint(err)))
		return
	}
	WriteJSON(w, http.StatusOK, struct{}{})
}

// decodeLoginEmail reads the body strictly (see DecodeJSON): unknown
// fields, wrong types, another media type and trailing data are all
// invalid_input, seed 000's answer to a body that is not the documented
// JSON, so that a typo is not silently ignored.
func decodeLoginEmail(w http.ResponseWriter, r *http.Request) (loginEmailRequest, *Error) {
	var req loginEmailRequest
	switch err := DecodeJSON(w, r, &req); {
	case errors.Is(err, ErrNotJSON), errors.Is(err, ErrTrailing):
		return req, ErrInvalidInput.WithHint(err.Error())
	case err != nil:
		return req, ErrInvalidInput.WithHint("the body must be a JSON object with the documented fields: " + err.Error())
	}
	return req, nil
}

// validate checks the fields in the seed's order and normalizes them.
func (req *loginEmailRequest) validate(client *Client) *Error {
	if req.Selector == nil || (*req.Selector != "email" && *req.Selector != "username") {
		return ErrSelectorInvalid.WithHint(`selector must be "email" or "username"`)
	}
	if req.Email != "" && req.Username != "" {
		return ErrBothEmailAndUsername.WithHint("give email or username, matching the selector, not both")
	}
	switch *req.Selector {
	case "email":
		email, err := directory.NormalizeEmail(req.Email)
		if err != nil {
			return ErrInvalidInput.WithHint("selector is email: email must be a valid address")
		}
		req.Email = email
	case "username":
		if req.Username == "" {
			return ErrInvalidInput.WithHint("selector is username: username is required")
		}
	}
	if req.RedirectURI == "" {
		return ErrNoRedirectURI.WithHint("redirect_uri is required")
	}
	if !client.AllowsRedirect(req.RedirectURI) {
		return ErrRedirectURIMismatch.WithHint("redirect_uri is not one of this client's registered redirect URIs")
	}
	locale, aerr := normalizeLocale(req.Locale)
	if aerr != nil {
		return aerr
	}
	req.Locale = locale
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod == "":
	case req.CodeChallengeMethod != "S256":
		return ErrInvalidInput.WithHint("code_challenge_method must be S256")
	case len(req.CodeChallenge) != 43 || strings.ContainsAny(req.CodeChallenge, "+/="):
		return ErrInvalidInput.WithHint("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
	}
	return nil
}

// normalizeLocale returns the canonical spelling of a supported locale, or
// the seed's error for a malformed or unsupported one. Empty means en-GB.
func normalizeLocale(s string) (string, *Error) {
	l, err := locale.Parse(s)
	switch {
	case errors.Is(err, locale.ErrMalformed):
		return "", ErrLocaleInvalid.WithHint("locale must look like en-GB: language, dash, country")
	case err != nil:
		return "", ErrLocaleNotSupported.WithHint("supported locales: " + strings.Join(locale.All(), ", "))
	}
	return l, nil
}

func (h *LoginEmail) find(ctx context.Context, req loginEmailRequest) (directory.User, error) {
	var u directory.User
	var err error
	if *req.Selector == "email" {
		u, err = h.Users.ByEmail(ctx, req.Email)
	} else {
		u, err = h.Users.ByUsername(ctx, req.Username)
	}
	if err == nil && u.Status == directory.StatusDisabled {
		return directory.User{}, directory.ErrNotFound
	}
	return u, err
}
