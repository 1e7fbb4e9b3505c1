package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// The client-side "auth by email" API (seed 003): POST
// {prefix}/login/email/request starts a code login, POST
// {prefix}/login/email/confirm completes it for a user JWT, and GET
// {prefix}/login/email/request/code hands the code to the app once the
// mailed link was confirmed. Its error shape is modelled on the vendor's:
// {"error": {"code": "…", "description": "…"}}.

// CodeFlow is the code login, as the API drives it.
type CodeFlow interface {
	Start(ctx context.Context, r flow.CodeRequest) (string, error)
	Complete(ctx context.Context, project, email, id, code string) (flow.CodeLogin, error)
	Code(ctx context.Context, project, email, id string) (string, error)
}

// EmailCode serves seed 003's calls and GET {prefix}/users/me.
type EmailCode struct {
	Projects Projects
	Flow     CodeFlow
	// Logins signs a completed login's user JWT, and checks user JWTs for
	// GET {prefix}/users/me.
	Logins ProjectLogins
	// Failures counts wrong codes per client IP, beside the flow's count
	// per address: an IP over it is refused before its code is checked.
	Failures limit.Failures
	// ClientIP is the client's IP as the server resolved it.
	ClientIP func(*http.Request) string
	// Observer is told of failures the app only sees as 503. Nil: nobody
	// is told.
	Observer flow.Observer
}

// ProjectLogins ends a project's login in a user JWT and checks the JWTs it
// signed (flow.ProjectLogin).
type ProjectLogins interface {
	Token(ctx context.Context, p flow.Project, login flow.CodeLogin) (string, error)
	Check(ctx context.Context, token string, p flow.Project) (directory.User, error)
}

// The bodies of the calls that take one.
type (
	startRequest struct {
		Email    string `json:"email"`
		LinkURL  string `json:"link_url"`
		SendLink bool   `json:"send_link"`
	}
	confirmRequest struct {
		Email       string `json:"email"`
		OperationID string `json:"operation_id"`
		Code        string `json:"code"`
	}
)

// maxEmail is the contract's bound on email (1 to 255 characters).
const maxEmail = 255

// errCodeExpired is the answer for an operation that is over, which does
// not say whether it expired, was used or was replaced.
func errCodeExpired() *Error {
	return ErrCodeExpired.WithHint("the code has expired or was used; start again")
}

// start is POST {prefix}/login/email/request.
func (h *EmailCode) start(w http.ResponseWriter, r *http.Request, p *Project) *Error {
	var req startRequest
	if e := decodeStrict(w, r, &req); e != nil {
		return e
	}
	q := r.URL.Query()
	loginURL, e := p.callback("login_url", q.Get("login_url"), true, ErrInvalidLoginURL)
	if e != nil {
		return e
	}
	if n := utf8.RuneCountInString(req.Email); n < 1 || n > maxEmail {
		return ErrInvalidEmail.WithHint("email must be 1 to 255 characters")
	}
	var linkURL string
	if req.SendLink {
		if req.LinkURL == "" {
			return ErrInvalidLinkURL.WithHint("link_url is required when send_link is true")
		}
		if linkURL, e = p.callback("link_url", req.LinkURL, false, ErrInvalidLinkURL); e != nil {
			return e
		}
	}
	payload, hasPayload := q["payload"]
	if hasPayload && !p.CustomPayload {
		return ErrPayloadNotAllowed.WithHint("this project does not accept a payload")
	}
	withLogout, e := withLogoutParam(q)
	if e != nil {
		return e
	}
	cr := flow.CodeRequest{
		Project: p.ID, App: p.Name, Email: req.Email, LoginURL: loginURL,
		SendLink: req.SendLink, LinkURL: linkURL, WithLogout: withLogout,
		Requester: flow.Requester{IP: h.ClientIP(r), Agent: r.UserAgent()},
	}
	if hasPayload {
		cr.Payload = payload[0]
	}
	id, err := h.Flow.Start(r.Context(), cr)
	var tooLong *flow.TooLongError
	switch {
	case errors.Is(err, directory.ErrInvalidEmail):
		return ErrInvalidEmail.WithHint("email is not a valid address")
	case errors.As(err, &tooLong):
		return ErrPayloadTooLong.WithHint(tooLong.Error())
	case err != nil:
		return h.failure(w, err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"operation_id": id})
	return nil
}

// confirm is POST {prefix}/login/email/confirm.
func (h *EmailCode) confirm(w http.ResponseWriter, r *http.Request, p *Project) *Error {
	var req confirmRequest
	if e := decodeStrict(w, r, &req); e != nil {
		return e
	}
	if req.Email == "" || req.OperationID == "" || req.Code == "" {
		return ErrMissingField.WithHint("email, operation_id and code are required")
	}
	attempt, e := h.guess(w, r)
	if e != nil {
		return e
	}
	defer h.settle(r, attempt)
	login, err := h.Flow.Complete(r.Context(), p.ID, req.Email, req.OperationID, req.Code)
	if errors.Is(err, flow.ErrCodeWrong) || errors.Is(err, flow.ErrCodeExpired) {
		attempt.Failed()
	}
	var wrong *flow.WrongCodeError
	switch {
	case errors.As(err, &wrong) && wrong.Left == 0:
		return ErrWrongCode.WithHint("the code is not the one mailed, and that was this operation's last try: start a new one")
	case errors.As(err, &wrong):
		return ErrWrongCode.WithHint(fmt.Sprintf("the code is not the one mailed; %d tries left for this operation", wrong.Left))
	case errors.Is(err, flow.ErrCodeExpired):
		return errCodeExpired()
	case err != nil:
		return h.failure(w, err)
	}
	token, err := h.Logins.Token(r.Context(), p.Project, login)
	if err != nil {
		return h.failure(w, err)
	}
	to, _ := url.Parse(login.LoginURL)
	q := to.Query()
	q.Set("token", token)
	to.RawQuery = q.Encode()
	api.WriteJSON(w, http.StatusOK, map[string]string{"login_url": to.String()})
	return nil
}

// code is GET {prefix}/login/email/request/code.
func (h *EmailCode) code(w http.ResponseWriter, r *http.Request, p *Project) *Error {
	q := r.URL.Query()
	email, id := q.Get("login"), q.Get("operation_id")
	if email == "" || id == "" {
		return ErrMissingField.WithHint("login and operation_id are required")
	}
	attempt, e := h.guess(w, r)
	if e != nil {
		return e
	}
	defer h.settle(r, attempt)
	code, err := h.Flow.Code(r.Context(), p.ID, email, id)
	if errors.Is(err, flow.ErrCodeExpired) {
		attempt.Failed()
	}
	switch {
	case errors.Is(err, flow.ErrNotConfirmed):
		return ErrNotConfirmed.WithHint("nobody has confirmed the mailed link yet; ask again shortly")
	case errors.Is(err, flow.ErrCodeExpired):
		return errCodeExpired()
	case err != nil:
		return h.failure(w, err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"code": code})
	return nil
}

// withLogoutParam reads with_logout: "0" (the default) or "1".
func withLogoutParam(q url.Values) (bool, *Error) {
	switch q.Get("with_logout") {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, ErrInvalidWithLogout.WithHint(`with_logout must be "0" or "1"`)
}

// guess counts an attempt at a secret against the client's IP
// (failures_per_ip) before the secret is looked at, so that guesses sent at
// once cannot all be tried before any is counted; over the limit it is the
// 429. The caller marks a refused secret with Failed and ends with settle.
func (h *EmailCode) guess(w http.ResponseWriter, r *http.Request) (*limit.Attempt, *Error) {
	a, err := h.Failures.TryIP(r.Context(), h.ClientIP(r))
	if err != nil {
		return nil, h.failure(w, err)
	}
	return a, nil
}

// settle gives an attempt back unless its secret was refused.
func (h *EmailCode) settle(r *http.Request, a *limit.Attempt) {
	if err := a.Done(context.WithoutCancel(r.Context())); err != nil {
		flow.Observed(h.Observer).Failed("login by email code", err)
	}
}

// failure answers what the flow could not do: a limit is 429 with
// Retry-After, anything else a 503 the operator's log explains.
func (h *EmailCode) failure(w http.ResponseWriter, err error) *Error {
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) {
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(exceeded.RetryAfter)))
		return ErrTooManyRequests.WithHint("too many attempts (" + exceeded.Rule + "); try again after Retry-After seconds")
	}
	flow.Observed(h.Observer).Failed("login by email code", err)
	return ErrTemporarilyUnavailable.WithHint("the request could not be handled now; try again later")
}

// decodeStrict reads a JSON body with api.DecodeJSON: unknown fields and
// wrong types are 422, anything that is not one JSON object sent as
// application/json 400.
func decodeStrict(w http.ResponseWriter, r *http.Request, dst any) *Error {
	err := api.DecodeJSON(w, r, dst)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, api.ErrNotJSON), errors.Is(err, api.ErrTrailing):
		return ErrBadRequest.WithHint(err.Error())
	case errors.As(err, &typ):
		return ErrInvalidField.WithHint(err.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error, only its text.
		return ErrUnknownField.WithHint(err.Error())
	}
	return ErrBadRequest.WithHint("the body must be one JSON object: " + err.Error())
}
