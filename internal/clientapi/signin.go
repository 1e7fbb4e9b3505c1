package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/mailgate/caddy-mailgate/internal/api"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// The custom sign-in API (seed 004): an app that draws its own sign-in
// form posts the username and password to POST {prefix}/api/account/login
// from the browser, and learns the next step. Its errors have the seed's
// shape: {type, identifier, message, responseCode, errors}.

// SignInClient is an app that may call the sign-in API: a configured
// client, with the sign_in capability or without it (403).
type SignInClient struct {
	ID     string
	SignIn bool
	// AskPersist offers "keep me signed in" as a step of its own (next
	// "persist") rather than taking login's persistent.
	AskPersist bool
	// CORSOrigins are the origins whose pages may call for the client.
	CORSOrigins []string
	// SecondFactor is a client whose sign-ins need an emailed code after
	// the password (next "email_code"); its new passwords need only
	// password.MinLengthWithSecond characters.
	SecondFactor bool
}

// Credentials checks a username and password (flow.SignIn).
type Credentials interface {
	Check(ctx context.Context, who flow.Requester, username, pw string) (directory.User, error)
}

// SessionIssuer starts a session (session.Manager): one that ends with the
// browser, or, when the person asked to keep it, a persistent one.
type SessionIssuer interface {
	IssueWith(userID string, o session.IssueOptions) (token string, expiry time.Time, err error)
}

// SignIn serves seed 004.
type SignIn struct {
	// Clients holds the configured clients by id.
	Clients     map[string]*SignInClient
	Credentials Credentials
	Sessions    SessionIssuer
	// Tenant is the one tenant of this realm: a request that names
	// another is refused.
	Tenant string
	// Secure is whether the site is served over HTTPS: cookie names and
	// flags follow it.
	Secure   bool
	ClientIP func(*http.Request) string
	// Observer is told of the sign-ins done (when their session starts,
	// after any step) and of the failures the answer only shows as such,
	// with the error's identifier. Nil: nobody is told.
	Observer flow.Observer
	// Steps are the steps between a right password and a session
	// (flow.SignInSteps). Nil: every right password is done at once.
	Steps Steps
	// Now is the clock of the steps' expiresIn. Nil: time.Now.
	Now func() time.Time
}

// loginRequest is the body of POST {prefix}/api/account/login.
type loginRequest struct {
	Username         string          `json:"username"`
	Password         string          `json:"password"`
	ClientID         string          `json:"clientId"`
	Persistent       bool            `json:"persistent"`
	RememberUserName bool            `json:"rememberUserName"`
	Tenant           string          `json:"tenant"`
	ACRValues        string          `json:"acrValues"`
	AuthRequest      json.RawMessage `json:"authRequest"`
	CookiesEnabled   *bool           `json:"cookiesEnabled"`
}

// clientCall is what an endpoint whose body names its client reads before
// its work: the body, and that client.
type clientCall[R any] struct {
	req    R
	client *SignInClient
}

// signInCall is login's.
type signInCall = clientCall[loginRequest]

// readCall reads a POST body of type R and finds the client that
// clientID says it names: the call with its client's origins, or what
// clientOf answers for a body that names none or an unknown one.
func readCall[R any](h *SignIn, w http.ResponseWriter, r *http.Request, clientID func(*R) string) (*clientCall[R], []string, *Error) {
	call := &clientCall[R]{}
	if e := decodeStrict(w, r, &call.req); e != nil {
		return nil, nil, ErrSignInInvalid.WithHint(e.Description)
	}
	c, err := h.clientOf(clientID(&call.req))
	if err != nil || c == nil {
		return call, nil, err
	}
	call.client = c
	return call, c.CORSOrigins, nil
}

// Principal is who signed in, in the seed's 200 answer.
type Principal struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Tenant   string `json:"tenant"`
}

// LoginResponse is the seed's 200 answer.
type LoginResponse struct {
	SessionToken *string    `json:"sessionToken"`
	StateToken   *string    `json:"stateToken"`
	Next         string     `json:"next"`
	Principal    *Principal `json:"principal"`
	Items        any        `json:"items"`
}

// NextDone is the step of a person who is signed in: the session cookie is
// set and sessionToken is the session.
const NextDone = "done"

// UsernameCookie is the cookie rememberUserName sets: the username for the
// app's form, and nothing else.
func UsernameCookie(secure bool) string {
	if secure {
		return "__Host-mailgate-username"
	}
	return "mailgate-username"
}

// rememberFor is how long rememberUserName remembers.
const rememberFor = 400 * 24 * time.Hour

// The errors of seed 004, with the statuses the seed gives them.
var (
	// ErrSignInInvalid is a body without the required fields.
	ErrSignInInvalid = &Error{Status: http.StatusBadRequest, Code: "invalid_request"}
	// ErrBadCredentials is a wrong username or password: one answer for
	// an unknown account and a wrong password.
	ErrBadCredentials = &Error{Status: http.StatusBadRequest, Code: "invalid_credentials"}
	// ErrAccountLocked is an account with too many wrong passwords.
	ErrAccountLocked = &Error{Status: http.StatusUnauthorized, Code: "account_locked"}
	// ErrMayNotSignIn is an account that may not sign in now.
	ErrMayNotSignIn = &Error{Status: http.StatusUnauthorized, Code: "account_not_allowed"}
	// ErrClientNotAllowed is a client without the sign_in capability, or
	// a tenant that is not this realm's.
	ErrClientNotAllowed = &Error{Status: http.StatusForbidden, Code: "client_not_allowed"}
	// ErrSignInUnknownClient is a clientId no client has.
	ErrSignInUnknownClient = &Error{Status: http.StatusBadRequest, Code: "unknown_client"}
)

// errorKinds are the seed's type for each code: what went wrong, broadly.
var errorKinds = map[string]string{
	"invalid_request":         "validation",
	"invalid_credentials":     "authentication",
	"account_locked":          "authentication",
	"account_not_allowed":     "authentication",
	"client_not_allowed":      "authorization",
	"unknown_client":          "validation",
	"origin_not_allowed":      "authorization",
	"method_not_allowed":      "validation",
	"too_many_requests":       "rate_limit",
	"temporarily_unavailable": "server",
	"invalid_state_token":     "authentication",
	"password_rejected":       "validation",
}

// fieldError is one entry of the seed's errors list.
type fieldError struct {
	Field string `json:"field"`
	// Code names the rule a new password broke (password.Rule).
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

// writeSignInError writes e in seed 004's shape, with a fresh identifier
// that the answer and the operator's log share.
func writeSignInError(w http.ResponseWriter, e *Error) {
	writeSignInErrorWith(w, e, uuid.NewString(), nil)
}

func writeSignInErrorWith(w http.ResponseWriter, e *Error, id string, fields []fieldError) {
	type body struct {
		Type         string       `json:"type"`
		Identifier   string       `json:"identifier"`
		Message      string       `json:"message"`
		ResponseCode string       `json:"responseCode"`
		Errors       []fieldError `json:"errors"`
	}
	api.WriteJSON(w, e.Status, body{Type: errorKinds[e.Code], Identifier: id, Message: e.Description, ResponseCode: e.Code, Errors: fields})
}

// call reads the body and finds the client it names. A preflight has no
// body, so it is answered for the origins of every client that may sign
// in.
func (h *SignIn) call(w http.ResponseWriter, r *http.Request) (*signInCall, []string, *Error) {
	switch r.Method {
	case http.MethodOptions:
		var origins []string
		for _, c := range h.Clients {
			if c.SignIn {
				origins = append(origins, c.CORSOrigins...)
			}
		}
		return nil, origins, nil
	case http.MethodPost:
		return readCall(h, w, r, func(q *loginRequest) string { return q.ClientID })
	}
	return nil, nil, nil
}

// clientOf finds the client a body names: nil for no clientId (the
// endpoint answers that it is required), an error for one nobody has.
func (h *SignIn) clientOf(id string) (*SignInClient, *Error) {
	if id == "" {
		return nil, nil
	}
	c, ok := h.Clients[id]
	if !ok {
		return nil, ErrSignInUnknownClient.WithHint("no client has this clientId")
	}
	return c, nil
}

// login is POST {prefix}/api/account/login.
func (h *SignIn) login(w http.ResponseWriter, r *http.Request, call *signInCall) *Error {
	if call.client == nil || call.req.Username == "" || call.req.Password == "" {
		missingFields(w, call.req)
		return nil
	}
	req := call.req
	if !call.client.SignIn {
		return ErrClientNotAllowed.WithHint("this client may not sign people in")
	}
	if req.Tenant != "" && req.Tenant != h.Tenant {
		return ErrClientNotAllowed.WithHint("this tenant is not served here")
	}
	u, err := h.Credentials.Check(r.Context(), h.requester(r), req.Username, req.Password)
	var exceeded *limit.ExceededError
	switch {
	case errors.Is(err, flow.ErrBadCredentials):
		return ErrBadCredentials.WithHint("the username or password is wrong")
	case errors.As(err, &exceeded) && exceeded.Rule == flow.RuleFailedSignIns:
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(exceeded.RetryAfter)))
		return ErrAccountLocked.WithHint("too many wrong passwords: this account is locked for now; try again after Retry-After seconds or reset the password")
	case err != nil:
		// The other limits, a blocked account, a busy hashing bound and
		// the store are answered as in the steps after it.
		return h.stepError(w, err)
	}
	if req.RememberUserName {
		http.SetCookie(w, &http.Cookie{
			Name: UsernameCookie(h.Secure), Value: u.Username, Path: "/", Secure: h.Secure,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: int(rememberFor / time.Second),
		})
	}
	// A password too short to be the only factor (set through a
	// second-factor client) goes to expired_password at a client without
	// one (flow.SignInSteps.Start).
	st := flow.SignInState{
		Step: flow.StepDone, ClientID: call.client.ID, Persistent: req.Persistent, AskPersist: call.client.AskPersist,
	}
	token := ""
	if h.Steps != nil {
		if st, token, err = h.Steps.Start(r.Context(), h.requester(r), u, req.Password, st); err != nil {
			return h.stepError(w, err)
		}
	}
	return h.answer(w, r, u, st, token)
}

// answer tells the app the step a sign-in of u is at: with the stateToken
// that goes on from it, or, when it is done, with the session it starts
// (kept when st.Persistent), in a cookie and in sessionToken.
func (h *SignIn) answer(w http.ResponseWriter, r *http.Request, u directory.User, st flow.SignInState, stateToken string) *Error {
	var sessionToken string
	if st.Step == flow.StepDone {
		var err error
		if sessionToken, err = h.startSession(w, r, u.ID, st.Persistent); err != nil {
			return h.unavailable(w, err)
		}
	}
	h.write(w, u, st, sessionToken, stateToken)
	return nil
}

// startSession issues the session of userID, kept or for the browser's
// life, and sets its cookie.
func (h *SignIn) startSession(w http.ResponseWriter, r *http.Request, userID string, persistent bool) (string, error) {
	token, expiry, err := h.Sessions.IssueWith(userID, session.IssueOptions{Method: string(flow.MethodPassword), Persistent: persistent})
	if err != nil {
		return "", err
	}
	http.SetCookie(w, session.Cookie(token, expiry, h.Secure, persistent))
	flow.ObservedIn(r.Context(), h.Observer).LoginDone(userID, flow.MethodPassword)
	flow.ObservedIn(r.Context(), h.Observer).TokenIssued(flow.TokenSession)
	return token, nil
}

// write is the seed's 200: the session when the sign-in is done, else the
// stateToken of its step and what the step needs (items); the principal
// once the person is known, since the password was right: not at
// email_code, where the password alone does not prove who it is, and items
// shows the address masked.
func (h *SignIn) write(w http.ResponseWriter, u directory.User, st flow.SignInState, sessionToken, stateToken string) {
	out := LoginResponse{Next: string(st.Step), Items: h.items(st)}
	if st.Step != flow.StepEmailCode {
		out.Principal = &Principal{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, Tenant: h.Tenant}
	}
	if st.Step == flow.StepDone {
		out.SessionToken = &sessionToken
	} else {
		out.StateToken = &stateToken
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// missingFields answers a body without a required field, naming each.
func missingFields(w http.ResponseWriter, req loginRequest) {
	var missing []fieldError
	for _, f := range []struct{ name, value string }{{"username", req.Username}, {"password", req.Password}, {"clientId", req.ClientID}} {
		if f.value == "" {
			missing = append(missing, fieldError{Field: f.name, Message: f.name + " is required"})
		}
	}
	writeSignInErrorWith(w, ErrSignInInvalid.WithHint("username, password and clientId are required"), uuid.NewString(), missing)
}

// unavailable is a 503 whose cause goes to the operator's log under the
// identifier the answer carries.
func (h *SignIn) unavailable(w http.ResponseWriter, err error) *Error {
	id := uuid.NewString()
	flow.Observed(h.Observer).Failed("sign-in "+id, err)
	w.Header().Set("Retry-After", "60")
	writeSignInErrorWith(w, ErrTemporarilyUnavailable.WithHint("the sign-in could not be handled now; try again later"), id, nil)
	return nil
}
