package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// Seed 002 answers every call with {message, status, subSystem}; these are
// its texts.
const (
	magicLinkSubSystem  = 5
	magicLinkSentMsg    = "Mail was sent successfully to provided email id with magic link"
	magicLinkBadModeMsg = "Invalid response type or response mode"
	magicLinkNoUserMsg  = "User is not present, Please enable user"
)

// MagicLinkUsers finds accounts, and creates them for forceCreate.
type MagicLinkUsers interface {
	ByEmail(ctx context.Context, email string) (directory.User, error)
	EnsureByEmail(ctx context.Context, email string) (directory.User, error)
}

// MagicLink is POST {prefix}/api/v1/magic-link: mail a user a link that
// ends at the app's redirect URI with a code, a token or both (seed 002).
type MagicLink struct {
	Auth  *Authenticator
	URL   string
	Users MagicLinkUsers
	Links ClientLinks
	// Observer is told of failures the caller only sees as 503. Nil:
	// nobody is told.
	Observer flow.Observer
}

// MagicLinkResponse is the seed's answer, success or failure.
type MagicLinkResponse struct {
	Message   string `json:"message"`
	Status    string `json:"status"`
	SubSystem int    `json:"subSystem"`
}

type magicLinkRequest struct {
	Email         string `json:"email"`
	ClientID      string `json:"clientId"`
	RedirectURI   string `json:"redirectUri"`
	Scope         string `json:"scope"`
	ResponseMode  string `json:"responseMode"`
	ResponseType  string `json:"responseType"`
	ForceCreate   bool   `json:"forceCreate"`
	ResetPassword bool   `json:"resetPassword"`
}

// Response types and modes of seed 002.
var (
	responseTypes = []string{"code", "token", "code token"}
	responseModes = []string{"query", "fragment", "form_post"}
)

func writeMagicLink(w http.ResponseWriter, status int, message string) {
	s := strings.ToUpper(http.StatusText(status))
	if status == http.StatusOK {
		s = "Ok"
	} else if status == http.StatusNotFound {
		s = "Not Found"
	}
	WriteJSON(w, status, MagicLinkResponse{Message: message, Status: s, SubSystem: magicLinkSubSystem})
}

func (h *MagicLink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client, aerr := h.Auth.Authenticate(r, h.URL, ScopeMagicLink)
	if aerr != nil {
		if aerr.Challenge != "" {
			w.Header().Set("WWW-Authenticate", aerr.Challenge)
		}
		writeMagicLink(w, aerr.Status, aerr.Description)
		return
	}
	r = actingFor(r, client)
	var req magicLinkRequest
	switch err := DecodeJSON(w, r, &req); {
	case errors.Is(err, ErrNotJSON), errors.Is(err, ErrTrailing):
		writeMagicLink(w, http.StatusBadRequest, "Invalid request: "+err.Error())
		return
	case err != nil:
		writeMagicLink(w, http.StatusBadRequest, "Invalid request: the body must be a JSON object with the documented fields: "+err.Error())
		return
	}
	login, status, msg := req.validate(client)
	if status != 0 {
		writeMagicLink(w, status, msg)
		return
	}
	u, err := h.Users.ByEmail(r.Context(), req.Email)
	if errors.Is(err, directory.ErrNotFound) && req.ForceCreate && client.ForceCreate {
		u, err = h.Users.EnsureByEmail(r.Context(), req.Email)
		// The mail tells a newcomer an account was made for them.
		login.AccountCreated = err == nil
	}
	if errors.Is(err, directory.ErrNotFound) || (err == nil && u.Status == directory.StatusDisabled) {
		writeMagicLink(w, http.StatusNotFound, magicLinkNoUserMsg)
		return
	}
	if err == nil {
		// Seed 002 names no locale: the user's, or mailgate's default.
		err = h.Links.RequestForClient(r.Context(), u, "", login)
	}
	var tooLong *flow.TooLongError
	if errors.As(err, &tooLong) {
		writeMagicLink(w, http.StatusBadRequest, "Invalid request: "+tooLong.Error())
		return
	}
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) {
		setRetryAfter(w, exceeded.RetryAfter)
		writeMagicLink(w, http.StatusTooManyRequests, "Too many magic links ("+exceeded.Rule+"); try again after Retry-After seconds")
		return
	}
	if err != nil {
		flow.Observed(h.Observer).Failed("magic-link: link not sent", err)
		writeMagicLink(w, http.StatusServiceUnavailable, "Service unavailable: "+unavailableHint(err))
		return
	}
	writeMagicLink(w, http.StatusOK, magicLinkSentMsg)
}

// validate checks the request and returns the login to mail, or a status
// and message.
func (req *magicLinkRequest) validate(client *Client) (flow.ClientLogin, int, string) {
	// The required fields in the seed's order, checked as a list and not
	// a map: a body missing several always names the same, first one.
	for _, f := range []struct{ name, value string }{
		{"email", req.Email}, {"clientId", req.ClientID}, {"redirectUri", req.RedirectURI},
		{"scope", req.Scope}, {"responseMode", req.ResponseMode}, {"responseType", req.ResponseType},
	} {
		if f.value == "" {
			return flow.ClientLogin{}, http.StatusBadRequest, "Invalid request: " + f.name + " is required"
		}
	}
	email, err := directory.NormalizeEmail(req.Email)
	if err != nil {
		return flow.ClientLogin{}, http.StatusBadRequest, "Invalid request: email is not a valid address"
	}
	req.Email = email
	if req.ClientID != client.ID {
		return flow.ClientLogin{}, http.StatusBadRequest, "Invalid request: clientId is not the authenticated client"
	}
	if !client.AllowsRedirect(req.RedirectURI) {
		return flow.ClientLogin{}, http.StatusBadRequest, "Invalid request: redirectUri is not registered for this client"
	}
	typ := normalizeResponseType(req.ResponseType)
	if !slices.Contains(responseTypes, typ) || !slices.Contains(responseModes, req.ResponseMode) ||
		// A token in a query string ends up in logs and Referer headers.
		(strings.Contains(typ, "token") && req.ResponseMode == "query") {
		return flow.ClientLogin{}, http.StatusBadRequest, magicLinkBadModeMsg
	}
	return flow.ClientLogin{
		ClientID: client.ID, AppName: client.Name, RedirectURI: req.RedirectURI,
		ResponseType: typ, ResponseMode: req.ResponseMode, Scope: req.Scope, ResetPassword: req.ResetPassword,
	}, 0, ""
}

// normalizeResponseType accepts the space-separated values in any order.
func normalizeResponseType(s string) string {
	parts := strings.Fields(s)
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), " ")
}
