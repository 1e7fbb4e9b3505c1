package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// PageProfile is the signed-in person's own page.
const PageProfile = "profile"

// ProfileData is what the profile page shows.
type ProfileData struct {
	User     directory.User
	Sessions []ListedSession
	// Password offers the change-password form.
	Password bool
	// Notice is a catalogue key of a message of success.
	Notice string
}

// ListedSession is one line of the profile's list of sessions.
type ListedSession struct {
	Agent, Method, Issued, Expires string
	// Current is the session of the browser looking at the list.
	Current bool
}

// profilePage shows the person's name, address, username and sessions,
// with "sign out everywhere", the change of password where the site and
// the account have passwords, and a way back to ?state= (same origin only).
func (h *Handler) profilePage(w http.ResponseWriter, r *http.Request) error {
	s, u, err := h.signedIn(r)
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	if s == nil {
		return h.toLogin(w, r, r.URL.RequestURI())
	}
	d := Data{FormToken: h.Forms.Token(w, r), Next: h.returnOf(r.URL.Query().Get("state"))}
	if r.URL.Query().Get("changed") == "1" {
		d.Profile = &ProfileData{Notice: "password_changed"}
	}
	return h.renderProfile(w, r, http.StatusOK, s, u, d)
}

// renderProfile fills in the profile of u, seen from session s.
func (h *Handler) renderProfile(w http.ResponseWriter, r *http.Request, status int, s *session.Session, u directory.User, d Data) error {
	if d.Profile == nil {
		d.Profile = &ProfileData{}
	}
	p := d.Profile
	p.User = u
	p.Password = h.Account.Passwords != nil && u.PasswordHash != ""
	records, err := h.Account.Sessions.Sessions(r.Context(), u.ID)
	if err != nil {
		// The list is a convenience: the rest of the page still works.
		h.observer().Failed("reading a user's sessions", err)
	}
	for _, rec := range records {
		if ended, err := h.Account.SessionEnded(u.ID, rec.Issued); err != nil || ended {
			continue
		}
		p.Sessions = append(p.Sessions, ListedSession{
			Agent: rec.Agent, Method: methodKey(rec.Method),
			Issued: h.when(rec.Issued), Expires: h.when(rec.Expires), Current: rec.ID == s.ID,
		})
	}
	return h.render(w, r, status, PageProfile, d)
}

// methodKey is the catalogue key that names a sign-in method.
func methodKey(m string) string {
	switch flow.Method(m) {
	case flow.MethodLink, flow.MethodCode, flow.MethodPassword, flow.MethodInvitation, flow.MethodPasswordReset:
		return "method_" + m
	}
	return "method_other"
}

// signOutEverywhere ends every session of the person, this one included,
// on every instance, and sends them to the login page.
func (h *Handler) signOutEverywhere(w http.ResponseWriter, r *http.Request) error {
	state := r.PostFormValue("state")
	s, err := h.sessionToEnd(r)
	if err != nil {
		return h.logoutFailed(w, r, err)
	}
	if s == nil {
		return h.toLogin(w, r, h.returnOf(state))
	}
	// The next second, as a disable does: tokens carry whole seconds, and
	// one issued in this second elsewhere must end too.
	if err := h.Account.EndSessions(r.Context(), s.UserID, h.now().Add(time.Second)); err != nil {
		return h.logoutFailed(w, r, err)
	}
	flow.ObservedIn(r.Context(), h.Observer).SignedOut(s.UserID, true)
	if err := h.Account.Sessions.ForgetSessions(context.WithoutCancel(r.Context()), s.UserID); err != nil {
		h.observer().Failed("dropping a user's list of sessions", err)
	}
	http.SetCookie(w, session.ClearCookie(h.Secure))
	return h.toLogin(w, r, h.returnOf(state))
}

// changePassword checks the current password as a sign-in does (counted,
// limited, locking the account after too many), holds the new one to the
// policy, stores it, ends every other session and starts a new one here.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) error {
	state := r.PostFormValue("state")
	s, u, err := h.signedIn(r)
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	if s == nil {
		return h.toLogin(w, r, h.Prefix+"/profile?state="+url.QueryEscape(state))
	}
	if h.Account.Passwords == nil {
		return fail(http.StatusNotFound, errors.New("web: passwords are not enabled"))
	}
	who := flow.Requester{IP: limit.ClientIP(r, h.ClientIP), Agent: r.UserAgent()}
	err = h.Account.Passwords.Change(r.Context(), who, u.ID,
		r.PostFormValue("current"), r.PostFormValue("password"), r.PostFormValue("confirm"))
	retry := func(status int, key string) error {
		return h.renderProfile(w, r, status, s, u, Data{
			FormToken: h.Forms.Token(w, r), Next: h.returnOf(state), Error: key,
		})
	}
	var weak *flow.PasswordRulesError
	var exceeded *limit.ExceededError
	switch {
	case err == nil:
	case errors.As(err, &weak):
		return retry(http.StatusBadRequest, "password_"+string(weak.Rules[0]))
	case errors.Is(err, flow.ErrPasswordMismatch):
		return retry(http.StatusBadRequest, "password_mismatch")
	case errors.Is(err, flow.ErrBadCredentials):
		return retry(http.StatusBadRequest, "current_password_wrong")
	case errors.Is(err, flow.ErrNoPassword):
		return retry(http.StatusBadRequest, "no_password")
	case errors.As(err, &exceeded):
		w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfterSeconds(exceeded.RetryAfter)))
		return retry(http.StatusTooManyRequests, "password_attempts")
	case errors.Is(err, password.ErrBusy):
		return h.Unavailable(w, r)
	default:
		return fail(http.StatusServiceUnavailable, err)
	}
	// Every session ended with the change, this one too: the person who
	// changed it goes on in a new one, proved by the password just typed,
	// kept as long as the one it replaces was asked to be.
	token, expiry, err := h.Sessions.IssueWith(u.ID, session.IssueOptions{Method: string(flow.MethodPassword), Persistent: s.Persistent})
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	flow.ObservedIn(r.Context(), h.Observer).TokenIssued(flow.TokenSession)
	http.SetCookie(w, session.Cookie(token, expiry, h.Secure, s.Persistent))
	http.Redirect(w, r, h.Prefix+"/profile?changed=1&state="+url.QueryEscape(state), http.StatusSeeOther)
	return nil
}
