package clientapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

// The steps of seed 004 after a right password: login answers a next
// other than "done" with a stateToken, which the app hands to
// login-resume (what is the step?), login-persist (the "keep me signed
// in" answer) or update-expired-password (a new password).

// Steps are the steps between a right password and a session
// (flow.SignInSteps).
type Steps interface {
	Start(ctx context.Context, who flow.Requester, u directory.User, pw string, st flow.SignInState) (flow.SignInState, string, error)
	Resume(ctx context.Context, who flow.Requester, token string, use func(u directory.User, st flow.SignInState, stateToken string) error) error
	Persist(ctx context.Context, who flow.Requester, token string, use func(directory.User, flow.SignInState) error) error
	UpdateExpired(ctx context.Context, who flow.Requester, token, clientID, pw string,
		use func(u directory.User, next flow.SignInState, nextToken string) error) error
}

// The errors of the steps, in seed 004's shape.
var (
	// ErrStateTokenInvalid is a stateToken that is unknown, used,
	// expired, for another step or for another client.
	ErrStateTokenInvalid = &Error{Status: http.StatusBadRequest, Code: "invalid_state_token"}
	// ErrPasswordRejected is a new password that breaks the policy; the
	// errors list names each rule.
	ErrPasswordRejected = &Error{Status: http.StatusBadRequest, Code: "password_rejected"}
)

// KeepSignedInCookie is the cookie rememberKeepMeSignIn sets: the person's
// last answer to "keep me signed in" ("true" or "false"), nothing secret.
func KeepSignedInCookie(secure bool) string {
	if secure {
		return "__Host-mailgate-keep-signed-in"
	}
	return "mailgate-keep-signed-in"
}

// persistRequest is the body of POST {prefix}/api/account/login-persist.
type persistRequest struct {
	StateToken           string `json:"stateToken"`
	Persistent           bool   `json:"persistent"`
	RememberKeepMeSignIn bool   `json:"rememberKeepMeSignIn"`
}

// expiredRequest is the body of POST
// {prefix}/api/account/update-expired-password.
type expiredRequest struct {
	Password   string `json:"password"`
	StateToken string `json:"stateToken"`
	ClientID   string `json:"clientId"`
	Tenant     string `json:"tenant"`
}

// expiredCall is update-expired-password's body and the client it names.
type expiredCall = clientCall[expiredRequest]

// anyClient is the app of login-resume and login-persist, which name no
// client: the stateToken knows it. They answer the origins of every client
// that may sign in.
func (h *SignIn) anyClient(_ http.ResponseWriter, _ *http.Request) (struct{}, []string, *Error) {
	var origins []string
	for _, c := range h.Clients {
		if c.SignIn {
			origins = append(origins, c.CORSOrigins...)
		}
	}
	return struct{}{}, origins, nil
}

// expiredCall reads update-expired-password's body and finds its client,
// as call does login's.
func (h *SignIn) expiredCall(w http.ResponseWriter, r *http.Request) (*expiredCall, []string, *Error) {
	if r.Method != http.MethodPost {
		_, origins, _ := h.anyClient(w, r)
		return nil, origins, nil
	}
	return readCall(h, w, r, func(q *expiredRequest) string { return q.ClientID })
}

// resume is GET {prefix}/api/account/login-resume?token=…: what login
// answered when it issued the stateToken, which stays usable; or, for an
// email_code step whose link was confirmed, the step after it (done, with
// the session, once).
func (h *SignIn) resume(w http.ResponseWriter, r *http.Request, _ struct{}) *Error {
	token := r.URL.Query().Get("token")
	if token == "" {
		writeSignInErrorWith(w, ErrSignInInvalid.WithHint("token is required"), uuid.NewString(),
			[]fieldError{{Field: "token", Message: "token is required"}})
		return nil
	}
	var user directory.User
	var state flow.SignInState
	var sessionToken, stateToken string
	err := h.Steps.Resume(r.Context(), h.requester(r), token, func(u directory.User, st flow.SignInState, next string) error {
		user, state, stateToken = u, st, next
		if st.Step != flow.StepDone {
			return nil
		}
		var err error
		sessionToken, err = h.startSession(w, r, u.ID, st.Persistent)
		return err
	})
	if err != nil {
		return h.stepError(w, err)
	}
	h.write(w, user, state, sessionToken, stateToken)
	return nil
}

// persist is POST {prefix}/api/account/login-persist: the answer to "keep
// me signed in", which starts the session kept or for the browser's life.
func (h *SignIn) persist(w http.ResponseWriter, r *http.Request, _ struct{}) *Error {
	var req persistRequest
	if e := decodeStrict(w, r, &req); e != nil {
		return ErrSignInInvalid.WithHint(e.Description)
	}
	if req.StateToken == "" {
		writeSignInErrorWith(w, ErrSignInInvalid.WithHint("stateToken is required"), uuid.NewString(),
			[]fieldError{{Field: "stateToken", Message: "stateToken is required"}})
		return nil
	}
	var user directory.User
	var sessionToken string
	err := h.Steps.Persist(r.Context(), h.requester(r), req.StateToken, func(u directory.User, _ flow.SignInState) error {
		var err error
		user = u
		sessionToken, err = h.startSession(w, r, u.ID, req.Persistent)
		return err
	})
	if err != nil {
		return h.stepError(w, err)
	}
	h.rememberKeepSignedIn(w, r, req)
	h.write(w, user, flow.SignInState{Step: flow.StepDone}, sessionToken, "")
	return nil
}

// rememberKeepSignedIn keeps the person's answer for the app's next form
// when they asked it to, and forgets an earlier one when they did not.
func (h *SignIn) rememberKeepSignedIn(w http.ResponseWriter, r *http.Request, req persistRequest) {
	name := KeepSignedInCookie(h.Secure)
	c := &http.Cookie{Name: name, Path: "/", Secure: h.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	switch _, err := r.Cookie(name); {
	case req.RememberKeepMeSignIn:
		c.Value, c.MaxAge = strconv.FormatBool(req.Persistent), int(rememberFor/time.Second)
	case err == nil:
		c.MaxAge = -1
	default:
		return
	}
	http.SetCookie(w, c)
}

// updateExpired is POST {prefix}/api/account/update-expired-password: a
// new password in place of an expired one, then the next step (done, with
// the session, or persist).
func (h *SignIn) updateExpired(w http.ResponseWriter, r *http.Request, call *expiredCall) *Error {
	req := call.req
	var missing []fieldError
	for _, f := range []struct{ name, value string }{{"password", req.Password}, {"stateToken", req.StateToken}, {"clientId", req.ClientID}, {"tenant", req.Tenant}} {
		if f.value == "" {
			missing = append(missing, fieldError{Field: f.name, Message: f.name + " is required"})
		}
	}
	if missing != nil {
		writeSignInErrorWith(w, ErrSignInInvalid.WithHint("password, stateToken, clientId and tenant are required"), uuid.NewString(), missing)
		return nil
	}
	if !call.client.SignIn {
		return ErrClientNotAllowed.WithHint("this client may not sign people in")
	}
	if req.Tenant != h.Tenant {
		return ErrClientNotAllowed.WithHint("this tenant is not served here")
	}
	var user directory.User
	var next flow.SignInState
	var sessionToken, stateToken string
	err := h.Steps.UpdateExpired(r.Context(), h.requester(r), req.StateToken, req.ClientID, req.Password,
		func(u directory.User, n flow.SignInState, nextToken string) error {
			user, next, stateToken = u, n, nextToken
			if n.Step != flow.StepDone {
				return nil
			}
			var err error
			sessionToken, err = h.startSession(w, r, u.ID, n.Persistent)
			return err
		})
	var rules *flow.PasswordRulesError
	if errors.As(err, &rules) {
		writeSignInErrorWith(w, ErrPasswordRejected.WithHint("the new password breaks the password rules"), uuid.NewString(), ruleErrors(rules.Rules, call.client.minLength()))
		return nil
	}
	if err != nil {
		return h.stepError(w, err)
	}
	h.write(w, user, next, sessionToken, stateToken)
	return nil
}

// ruleSentences say each password rule for the errors list (too_short's
// says the client's minimum).
var ruleSentences = map[password.Rule]string{
	password.RuleTooLong:    "use fewer characters",
	password.RuleNotText:    "use printable characters and spaces only",
	password.RuleCommon:     "this password is on a list of common or breached passwords",
	password.RuleContext:    "do not use your username, your address or the site's name",
	password.RuleRepetitive: "do not repeat one character",
	flow.RuleSameAsExpired:  "choose a password other than the expired one",
}

// ruleErrors is the errors list of a password that breaks rules: one
// entry per rule, with the rule's code; a password shorter than minLength
// is told that number.
func ruleErrors(rules []password.Rule, minLength int) []fieldError {
	out := make([]fieldError, len(rules))
	for i, r := range rules {
		msg := ruleSentences[r]
		if r == password.RuleTooShort {
			msg = fmt.Sprintf("use at least %d characters", minLength)
		}
		out[i] = fieldError{Field: "password", Code: string(r), Message: msg}
	}
	return out
}

// minLength is the fewest characters of the client's new passwords.
func (c *SignInClient) minLength() int {
	if c.SecondFactor {
		return password.MinLengthWithSecond
	}
	return password.MinLengthSingleFactor
}

// stepError answers a step's failure in the seed's shape.
func (h *SignIn) stepError(w http.ResponseWriter, err error) *Error {
	var exceeded *limit.ExceededError
	switch {
	case errors.Is(err, flow.ErrStateInvalid):
		return ErrStateTokenInvalid.WithHint("the stateToken is unknown, used or expired: sign in again")
	case errors.As(err, &exceeded):
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(exceeded.RetryAfter)))
		return ErrTooManyRequests.WithHint("too many attempts (" + exceeded.Rule + "); try again after Retry-After seconds")
	case errors.Is(err, flow.ErrMayNotSignIn):
		return ErrMayNotSignIn.WithHint("this account may not sign in now")
	case errors.Is(err, password.ErrBusy):
		w.Header().Set("Retry-After", "1")
		return ErrTemporarilyUnavailable.WithHint("too many passwords are being hashed now; try again in a second")
	case errors.Is(err, flow.ErrDelivery):
		w.Header().Set("Retry-After", "60")
		return ErrTemporarilyUnavailable.WithHint("the code cannot be mailed now; try again later")
	}
	return h.unavailable(w, err)
}

// requester is who calls, for the limits.
func (h *SignIn) requester(r *http.Request) flow.Requester {
	return flow.Requester{IP: h.ClientIP(r), Agent: r.UserAgent()}
}
