package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/locale"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// The login page's "use a password instead" (password_login): the same
// sign-in and steps as seed 004's API (flow.SignIn, flow.SignInSteps),
// drawn as pages that work without script. A step's stateToken travels in
// a hidden field, never in a URL.

// The pages of the password sign-in.
const (
	// PagePasswordLogin is the username and password form.
	PagePasswordLogin = "password_login"
	// PagePasswordExpired asks for a new password in place of an expired
	// one.
	PagePasswordExpired = "password_expired"
	// PagePasswordKeep asks whether to stay signed in on this device.
	PagePasswordKeep = "password_keep"
	// PageAccountLocked is an account with too many wrong passwords.
	PageAccountLocked = "account_locked"
	// PageMayNotSignIn is a right password of an account that may not
	// sign in now.
	PageMayNotSignIn = "may_not_sign_in"
)

// SiteClient is the client id the login page's sign-ins carry in their
// steps: no configured client has it, since the API refuses an empty
// clientId, so a step begun on the page goes on only on the page.
const SiteClient = ""

// PasswordCredentials checks a username and password (flow.SignIn).
type PasswordCredentials interface {
	Check(ctx context.Context, who flow.Requester, username, pw string) (directory.User, error)
}

// PasswordSteps are the steps between a right password and a session
// (flow.SignInSteps).
type PasswordSteps interface {
	Start(ctx context.Context, who flow.Requester, u directory.User, pw string, st flow.SignInState) (flow.SignInState, string, error)
	Persist(ctx context.Context, who flow.Requester, token string, use func(directory.User, flow.SignInState) error) error
	UpdateExpired(ctx context.Context, who flow.Requester, token, clientID, pw string,
		use func(u directory.User, next flow.SignInState, nextToken string) error) error
}

// PasswordSessions starts the session of a password sign-in: for the
// browser's life, or kept when the person asked (session.Manager).
type PasswordSessions interface {
	IssueWith(userID string, o session.IssueOptions) (token string, expiry time.Time, err error)
}

// Keep-signed-in offers of a site's password sign-in.
const (
	// KeepCheckbox offers "keep me signed in" as a box on the form.
	KeepCheckbox = "checkbox"
	// KeepAsk asks on a page of its own after the password (the persist
	// step).
	KeepAsk = "ask"
	// KeepOff starts every session for the browser's life only.
	KeepOff = "off"
)

// PasswordLogin is the site's password sign-in; a Handler without one
// offers none, and its routes answer 404.
type PasswordLogin struct {
	Credentials PasswordCredentials
	Steps       PasswordSteps
	Sessions    PasswordSessions
	// Keep is how "keep me signed in" is offered: KeepCheckbox, KeepAsk
	// or KeepOff.
	Keep string
}

// mountPasswordLogin adds the password sign-in's routes.
func (h *Handler) mountPasswordLogin() {
	p := h.Prefix
	h.handle("GET "+p+"/login/password", h.passwordPage)
	h.handle("POST "+p+"/login/password", h.form(h.signInPassword))
	h.handle("POST "+p+"/login/password/expired", h.form(h.replaceExpiredPassword))
	h.handle("POST "+p+"/login/password/keep", h.form(h.keepSignedIn))
}

// passwordPage is the username and password form.
func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, r, http.StatusOK, PagePasswordLogin, Data{
		FormToken:    h.Forms.Token(w, r),
		Return:       redirect.SafeReturn(r.URL.Query().Get("return")),
		SignedInAs:   h.signedInAs(r),
		KeepCheckbox: h.PasswordLogin.Keep == KeepCheckbox,
	})
}

// signInPassword checks the username and password and goes to the
// sign-in's first step. A wrong pair is one page, whoever the account:
// flow.SignIn gives one error for both, after the same work.
func (h *Handler) signInPassword(w http.ResponseWriter, r *http.Request) error {
	pl := h.PasswordLogin
	d := Data{
		FormToken:    h.Forms.Token(w, r),
		Return:       redirect.SafeReturn(r.PostFormValue("return")),
		Username:     r.PostFormValue("username"),
		KeepCheckbox: pl.Keep == KeepCheckbox,
	}
	if d.Username == "" || r.PostFormValue("password") == "" {
		d.Error = "password_login_missing"
		return h.render(w, r, http.StatusBadRequest, PagePasswordLogin, d)
	}
	u, err := pl.Credentials.Check(r.Context(), h.passwordRequester(r), d.Username, r.PostFormValue("password"))
	var exceeded *limit.ExceededError
	switch {
	case errors.Is(err, flow.ErrBadCredentials):
		d.Error = "password_login_wrong"
		return h.render(w, r, http.StatusBadRequest, PagePasswordLogin, d)
	case errors.As(err, &exceeded) && exceeded.Rule == flow.RuleFailedSignIns:
		// Counted before the password was hashed: the page says nothing
		// of it.
		return h.accountLocked(w, r, d, exceeded)
	case errors.As(err, &exceeded):
		return h.tooManyPasswords(w, r, exceeded)
	case errors.Is(err, flow.ErrMayNotSignIn):
		return h.render(w, r, http.StatusForbidden, PageMayNotSignIn, d)
	case err != nil:
		return h.passwordUnavailable(w, r, err)
	}
	st := flow.SignInState{
		ClientID:   SiteClient,
		Persistent: pl.Keep == KeepCheckbox && r.PostFormValue("keep") == "on",
		AskPersist: pl.Keep == KeepAsk,
	}
	// These pages have no second factor: a password too short to be the
	// only one (set through a second-factor client) must be replaced on
	// the expired-password page first.
	st, token, err := pl.Steps.Start(r.Context(), h.passwordRequester(r), u, r.PostFormValue("password"), st)
	if err != nil {
		return h.passwordUnavailable(w, r, err)
	}
	return h.passwordStep(w, r, u, st, token, d.Return)
}

// passwordStep shows the page of the step a sign-in of u is at, or, when
// it is done, starts the session and sends the person back.
func (h *Handler) passwordStep(w http.ResponseWriter, r *http.Request, u directory.User, st flow.SignInState, token, ret string) error {
	d := Data{FormToken: h.Forms.Token(w, r), Return: ret, Secret: token, Username: u.Username}
	switch st.Step {
	case flow.StepExpiredPassword:
		return h.render(w, r, http.StatusOK, PagePasswordExpired, d)
	case flow.StepPersist:
		return h.render(w, r, http.StatusOK, PagePasswordKeep, d)
	case flow.StepDone:
	default:
		// A step these pages cannot take (a second factor, say) must not
		// be skipped: no session starts.
		return fail(http.StatusInternalServerError, fmt.Errorf("web: the password sign-in's step %q has no page", st.Step))
	}
	if err := h.startPasswordSession(w, r, u.ID, st.Persistent); err != nil {
		return h.passwordUnavailable(w, r, err)
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
	return nil
}

// startPasswordSession issues the session of userID, kept or for the
// browser's life, and sets its cookie, as seed 004's sign-in does.
func (h *Handler) startPasswordSession(w http.ResponseWriter, r *http.Request, userID string, persistent bool) error {
	token, expiry, err := h.PasswordLogin.Sessions.IssueWith(userID, session.IssueOptions{Method: string(flow.MethodPassword), Persistent: persistent})
	if err != nil {
		return err
	}
	http.SetCookie(w, session.Cookie(token, expiry, h.Secure, persistent))
	flow.ObservedIn(r.Context(), h.Observer).LoginDone(userID, flow.MethodPassword)
	flow.ObservedIn(r.Context(), h.Observer).TokenIssued(flow.TokenSession)
	return nil
}

// replaceExpiredPassword stores the new password of an expired_password
// step and goes on: signed in, or to the keep-signed-in page. A password
// that breaks the policy shows the page again, naming every rule it
// breaks, with the step still usable.
func (h *Handler) replaceExpiredPassword(w http.ResponseWriter, r *http.Request) error {
	token, ret := r.PostFormValue("s"), redirect.SafeReturn(r.PostFormValue("return"))
	pw := r.PostFormValue("password")
	retry := func(errKey string, rules []password.Rule) error {
		d := Data{FormToken: h.Forms.Token(w, r), Return: ret, Secret: token, Error: errKey}
		for _, rule := range rules {
			d.Rules = append(d.Rules, "password_"+string(rule))
		}
		return h.render(w, r, http.StatusBadRequest, PagePasswordExpired, d)
	}
	if pw != r.PostFormValue("confirm") {
		return retry("password_mismatch", nil)
	}
	var user directory.User
	var next flow.SignInState
	var nextToken string
	err := h.PasswordLogin.Steps.UpdateExpired(r.Context(), h.passwordRequester(r), token, SiteClient, pw,
		func(u directory.User, n flow.SignInState, t string) error {
			user, next, nextToken = u, n, t
			if n.Step != flow.StepDone {
				return nil
			}
			// The session starts inside the step, so that a failure to
			// start it leaves the step usable.
			return h.startPasswordSession(w, r, u.ID, n.Persistent)
		})
	var rules *flow.PasswordRulesError
	if errors.As(err, &rules) {
		return retry("password_rules", rules.Rules)
	}
	if err != nil {
		return h.passwordStepFailed(w, r, err)
	}
	if next.Step == flow.StepDone {
		http.Redirect(w, r, ret, http.StatusSeeOther)
		return nil
	}
	return h.passwordStep(w, r, user, next, nextToken, ret)
}

// keepSignedIn is the answer to "keep me signed in": the session starts,
// kept or for the browser's life.
func (h *Handler) keepSignedIn(w http.ResponseWriter, r *http.Request) error {
	keep := r.PostFormValue("keep") == "yes"
	err := h.PasswordLogin.Steps.Persist(r.Context(), h.passwordRequester(r), r.PostFormValue("s"), func(u directory.User, _ flow.SignInState) error {
		return h.startPasswordSession(w, r, u.ID, keep)
	})
	if err != nil {
		return h.passwordStepFailed(w, r, err)
	}
	http.Redirect(w, r, redirect.SafeReturn(r.PostFormValue("return")), http.StatusSeeOther)
	return nil
}

// passwordStepFailed answers a step that did not go on: a stateToken that
// no longer works sends the person back to the password form, which says
// so.
func (h *Handler) passwordStepFailed(w http.ResponseWriter, r *http.Request, err error) error {
	var exceeded *limit.ExceededError
	switch {
	case errors.Is(err, flow.ErrStateInvalid):
		return h.render(w, r, http.StatusGone, PagePasswordLogin, Data{
			FormToken:    h.Forms.Token(w, r),
			Return:       redirect.SafeReturn(r.PostFormValue("return")),
			KeepCheckbox: h.PasswordLogin.Keep == KeepCheckbox,
			Error:        "password_step_gone",
		})
	case errors.As(err, &exceeded):
		return h.tooManyPasswords(w, r, exceeded)
	case errors.Is(err, flow.ErrMayNotSignIn):
		return h.render(w, r, http.StatusForbidden, PageMayNotSignIn, Data{})
	}
	return h.passwordUnavailable(w, r, err)
}

// accountLocked says until when the account takes no password, and offers
// the mailed link meanwhile.
func (h *Handler) accountLocked(w http.ResponseWriter, r *http.Request, d Data, e *limit.ExceededError) error {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(e.RetryAfter)))
	d.Until = locale.When(h.now().Add(e.RetryAfter).In(cmp.Or(h.Zone, time.UTC)), h.locale(r))
	d.CodeLogin = h.Codes != nil
	return h.render(w, r, http.StatusTooManyRequests, PageAccountLocked, d)
}

// tooManyPasswords is the too-many page of a client IP over its wrong
// passwords or stateTokens.
func (h *Handler) tooManyPasswords(w http.ResponseWriter, r *http.Request, e *limit.ExceededError) error {
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(e.RetryAfter)))
	return h.render(w, r, http.StatusTooManyRequests, PageTooMany, Data{
		Minutes: int((e.RetryAfter + time.Minute - 1) / time.Minute),
		Error:   "too_many_passwords_body",
	})
}

// passwordUnavailable is a sign-in that cannot be handled now: too many
// passwords being hashed (a second's wait), or the store or the storage
// failing.
func (h *Handler) passwordUnavailable(w http.ResponseWriter, r *http.Request, err error) error {
	if errors.Is(err, password.ErrBusy) {
		w.Header().Set("Retry-After", "1")
		return h.render(w, r, http.StatusServiceUnavailable, PageUnavailable, Data{})
	}
	return fail(http.StatusServiceUnavailable, err)
}

// passwordRequester is who signs in, for the limits.
func (h *Handler) passwordRequester(r *http.Request) flow.Requester {
	return flow.Requester{IP: limit.ClientIP(r, h.ClientIP), Agent: r.UserAgent()}
}
