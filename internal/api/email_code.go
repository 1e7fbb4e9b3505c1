package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
)

// The client-side "auth by email" API (seed 003): POST
// {prefix}/login/email/request starts a code login, POST
// {prefix}/login/email/confirm completes it for a user JWT, and GET
// {prefix}/login/email/request/code hands the code to the app once the
// mailed link was confirmed. Apps call it from the browser, so it speaks
// CORS for each project's origins, and it has one error shape of its own,
// modelled on the vendor's: {"error": {"code": "…", "description": "…"}}.

// Project is an app allowed to use the API, as configured.
type Project struct {
	ID   string
	Name string
	// CallbackURLs are where logins may end; login_url and link_url must
	// equal one exactly.
	CallbackURLs  []string
	CORSOrigins   []string
	CustomPayload bool
	// TokenTTL is how long its user JWTs live.
	TokenTTL time.Duration
}

// CodeFlow is the code login, as the API drives it.
type CodeFlow interface {
	Start(ctx context.Context, r flow.CodeRequest) (string, error)
	Complete(ctx context.Context, project, email, id, code string) (flow.CodeLogin, error)
	Code(ctx context.Context, project, email, id string) (string, error)
}

// EmailCode serves the three endpoints.
type EmailCode struct {
	// Projects holds the projects by their canonical id.
	Projects map[string]*Project
	Flow     CodeFlow
	// Token signs the user JWT for a completed login; with_logout says
	// that every earlier session and user JWT of the user must be refused
	// from now on, which Token arranges before it signs.
	Token func(ctx context.Context, p *Project, login flow.CodeLogin, withLogout bool) (string, error)
	// Users checks user JWTs for GET {prefix}/users/me.
	Users UserTokenChecker
	// Failures counts wrong codes per client IP, beside the flow's count
	// per address: an IP over it is refused before its code is checked.
	Failures limit.Failures
	// ClientIP is the client's IP as the server resolved it.
	ClientIP func(*http.Request) string
	// OnError is told of failures the app only sees as 503.
	OnError func(error)
}

// UserTokenChecker checks a project's user JWTs: the signature and claims,
// whether with_logout has ended them since, and whether the user may still
// log in.
type UserTokenChecker interface {
	Check(ctx context.Context, token string, p *Project) (directory.User, error)
}

// CodeError is this API's error: a status, a machine-readable code and a
// sentence for people.
type CodeError struct {
	Status      int
	Code        string
	Description string
}

func (e *CodeError) Error() string { return e.Code + ": " + e.Description }

func codeErr(status int, code, desc string) *CodeError {
	return &CodeError{Status: status, Code: code, Description: desc}
}

// errCodeExpired is the answer for an operation that is over, which does
// not say whether it expired, was used or was replaced.
func errCodeExpired() *CodeError {
	return codeErr(http.StatusUnprocessableEntity, "code_expired", "the code has expired or was used; start again")
}

// maxEmail is the contract's bound on email (1 to 255 characters).
const maxEmail = 255

// Start is POST {prefix}/login/email/request.
func (h *EmailCode) Start() http.Handler {
	return h.endpoint(http.MethodPost, func(w http.ResponseWriter, r *http.Request, p *Project) *CodeError {
		var req struct {
			Email    string `json:"email"`
			LinkURL  string `json:"link_url"`
			SendLink bool   `json:"send_link"`
		}
		if e := decodeStrict(w, r, &req); e != nil {
			return e
		}
		q := r.URL.Query()
		loginURL, e := p.callback("login_url", q.Get("login_url"), true)
		if e != nil {
			return e
		}
		if n := utf8.RuneCountInString(req.Email); n < 1 || n > maxEmail {
			return codeErr(http.StatusUnprocessableEntity, "invalid_email", "email must be 1 to 255 characters")
		}
		var linkURL string
		if req.SendLink {
			if req.LinkURL == "" {
				return codeErr(http.StatusUnprocessableEntity, "invalid_link_url", "link_url is required when send_link is true")
			}
			if linkURL, e = p.callback("link_url", req.LinkURL, false); e != nil {
				return e
			}
		}
		payload, hasPayload := q["payload"]
		if hasPayload && !p.CustomPayload {
			return codeErr(http.StatusUnprocessableEntity, "payload_not_allowed", "this project does not accept a payload")
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
			return codeErr(http.StatusUnprocessableEntity, "invalid_email", "email is not a valid address")
		case errors.As(err, &tooLong):
			return codeErr(http.StatusUnprocessableEntity, "payload_too_long", tooLong.Error())
		case err != nil:
			return h.failure(w, err)
		}
		WriteJSON(w, http.StatusOK, map[string]string{"operation_id": id})
		return nil
	})
}

// Confirm is POST {prefix}/login/email/confirm.
func (h *EmailCode) Confirm() http.Handler {
	return h.endpoint(http.MethodPost, func(w http.ResponseWriter, r *http.Request, p *Project) *CodeError {
		var req struct {
			Email       string `json:"email"`
			OperationID string `json:"operation_id"`
			Code        string `json:"code"`
		}
		if e := decodeStrict(w, r, &req); e != nil {
			return e
		}
		if req.Email == "" || req.OperationID == "" || req.Code == "" {
			return codeErr(http.StatusUnprocessableEntity, "missing_field", "email, operation_id and code are required")
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
			return codeErr(http.StatusUnprocessableEntity, "wrong_code", "the code is not the one mailed, and that was this operation's last try: start a new one")
		case errors.As(err, &wrong):
			return codeErr(http.StatusUnprocessableEntity, "wrong_code", fmt.Sprintf("the code is not the one mailed; %d tries left for this operation", wrong.Left))
		case errors.Is(err, flow.ErrCodeExpired):
			return errCodeExpired()
		case err != nil:
			return h.failure(w, err)
		}
		token, err := h.Token(r.Context(), p, login, login.WithLogout)
		if err != nil {
			return h.failure(w, err)
		}
		to, _ := url.Parse(login.LoginURL)
		q := to.Query()
		q.Set("token", token)
		to.RawQuery = q.Encode()
		WriteJSON(w, http.StatusOK, map[string]string{"login_url": to.String()})
		return nil
	})
}

// Code is GET {prefix}/login/email/request/code.
func (h *EmailCode) Code() http.Handler {
	return h.endpoint(http.MethodGet, func(w http.ResponseWriter, r *http.Request, p *Project) *CodeError {
		q := r.URL.Query()
		email, id := q.Get("login"), q.Get("operation_id")
		if email == "" || id == "" {
			return codeErr(http.StatusUnprocessableEntity, "missing_field", "login and operation_id are required")
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
			return codeErr(http.StatusUnprocessableEntity, "not_confirmed", "nobody has confirmed the mailed link yet; ask again shortly")
		case errors.Is(err, flow.ErrCodeExpired):
			return errCodeExpired()
		case err != nil:
			return h.failure(w, err)
		}
		WriteJSON(w, http.StatusOK, map[string]string{"code": code})
		return nil
	})
}

// endpoint wraps an endpoint's work with what all three share: the
// project from projectId, CORS for its origins, the method, and the error
// shape.
func (h *EmailCode) endpoint(method string, serve func(http.ResponseWriter, *http.Request, *Project) *CodeError) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		p, e := h.project(r)
		if e != nil {
			writeCodeError(w, e)
			return
		}
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(p.CORSOrigins, origin)
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			// A page can read only the headers it is shown: the wait of a
			// 429 and the reason of a 401.
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
		}
		if r.Method == http.MethodOptions {
			// A preflight: answered for the project's origins only.
			if !allowed {
				writeCodeError(w, codeErr(http.StatusForbidden, "origin_not_allowed", "this origin may not call the API for this project"))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", method)
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != method {
			w.Header().Set("Allow", method+", OPTIONS")
			writeCodeError(w, codeErr(http.StatusMethodNotAllowed, "method_not_allowed", "use "+method))
			return
		}
		if e := serve(w, r, p); e != nil {
			writeCodeError(w, e)
		}
	})
}

// project finds the project named by projectId.
func (h *EmailCode) project(r *http.Request) (*Project, *CodeError) {
	raw := r.URL.Query().Get("projectId")
	id, ok := canonicalUUID(raw)
	if !ok {
		return nil, codeErr(http.StatusBadRequest, "invalid_project_id", "projectId must be a project's UUID")
	}
	p, found := h.Projects[id]
	if !found {
		return nil, codeErr(http.StatusNotFound, "project_not_found", "no project has this projectId")
	}
	return p, nil
}

// callback checks a login_url or link_url against the project's callback
// URLs: equal to one exactly. An empty login_url means the only one, when
// there is only one.
func (p *Project) callback(field, v string, mayOmit bool) (string, *CodeError) {
	if v == "" && mayOmit {
		if len(p.CallbackURLs) == 1 {
			return p.CallbackURLs[0], nil
		}
		return "", codeErr(http.StatusUnprocessableEntity, "invalid_"+field, field+" is required: this project has several callback URLs")
	}
	if !slices.Contains(p.CallbackURLs, v) {
		return "", codeErr(http.StatusUnprocessableEntity, "invalid_"+field, field+" is not one of this project's callback URLs")
	}
	return v, nil
}

// withLogoutParam reads with_logout: "0" (the default) or "1".
func withLogoutParam(q url.Values) (bool, *CodeError) {
	switch q.Get("with_logout") {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, codeErr(http.StatusUnprocessableEntity, "invalid_with_logout", `with_logout must be "0" or "1"`)
}

// guess counts an attempt at a secret against the client's IP
// (failures_per_ip) before the secret is looked at, so that guesses sent at
// once cannot all be tried before any is counted; over the limit it is the
// 429. The caller marks a refused secret with Failed and ends with settle.
func (h *EmailCode) guess(w http.ResponseWriter, r *http.Request) (*limit.Attempt, *CodeError) {
	a, err := h.Failures.TryIP(r.Context(), h.ClientIP(r))
	if err != nil {
		return nil, h.failure(w, err)
	}
	return a, nil
}

// settle gives an attempt back unless its secret was refused.
func (h *EmailCode) settle(r *http.Request, a *limit.Attempt) {
	if err := a.Done(context.WithoutCancel(r.Context())); err != nil && h.OnError != nil {
		h.OnError(err)
	}
}

// failure answers what the flow could not do: a limit is 429 with
// Retry-After, anything else a 503 the operator's log explains.
func (h *EmailCode) failure(w http.ResponseWriter, err error) *CodeError {
	var exceeded *limit.ExceededError
	if errors.As(err, &exceeded) {
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(exceeded.RetryAfter)))
		return codeErr(http.StatusTooManyRequests, "too_many_requests", "too many attempts ("+exceeded.Rule+"); try again after Retry-After seconds")
	}
	if h.OnError != nil {
		h.OnError(err)
	}
	return codeErr(http.StatusServiceUnavailable, "temporarily_unavailable", "the request could not be handled now; try again later")
}

// decodeStrict reads a JSON body with decodeJSON: unknown fields and wrong
// types are 422, anything that is not one JSON object sent as
// application/json 400.
func decodeStrict(w http.ResponseWriter, r *http.Request, dst any) *CodeError {
	err := decodeJSON(w, r, dst)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNotJSON), errors.Is(err, errTrailing):
		return codeErr(http.StatusBadRequest, "bad_request", err.Error())
	case errors.As(err, &typ):
		return codeErr(http.StatusUnprocessableEntity, "invalid_field", err.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error, only its text.
		return codeErr(http.StatusUnprocessableEntity, "unknown_field", err.Error())
	}
	return codeErr(http.StatusBadRequest, "bad_request", "the body must be one JSON object: "+err.Error())
}

// canonicalUUID reads a UUID in its 36-character form and writes it the one
// way projects are configured.
func canonicalUUID(s string) (string, bool) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", false
	}
	return id.String(), true
}

func writeCodeError(w http.ResponseWriter, e *CodeError) {
	type body struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	}
	WriteJSON(w, e.Status, map[string]body{"error": {Code: e.Code, Description: e.Description}})
}
