package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// Account is what the signed-in person's own pages need (the profile, the
// no-access page, the operator dashboard), beside the Handler's sessions
// and forms. caddymodule builds it; nil mounts none of those pages.
type Account struct {
	Users AccountUsers
	// Sessions is the record of the sessions issued to each user, for the
	// profile's list; never the tokens.
	Sessions SessionRecords
	// EndSessions ends every session of a user issued before a time, on
	// every instance (session.Manager.RevokeUser).
	EndSessions func(ctx context.Context, userID string, before time.Time) error
	// SessionEnded reports whether a session of userID issued at a time was
	// ended by EndSessions (session.Manager.UserTokenRevoked): such a
	// session is no longer listed.
	SessionEnded func(userID string, issued time.Time) (bool, error)
	// Passwords, if set, lets people with a password change it on the
	// profile: the site signs people in with passwords.
	Passwords PasswordChanger
	// Admins reports whether a user may read the operator dashboard.
	Admins func(directory.User) bool
	// Admin changes users for the dashboard (admin.Users).
	Admin UserAdmin
	// Links mails invitations and password resets (flow.EmailLinks).
	Links LinkMailer
}

// AccountUsers reads the signed-in person's record.
type AccountUsers interface {
	ByID(ctx context.Context, id string) (directory.User, error)
}

// SessionRecords is the per-user list of sessions issued
// (directory.Directory).
type SessionRecords interface {
	Sessions(ctx context.Context, userID string) ([]directory.SessionRecord, error)
	ForgetSession(ctx context.Context, userID, sessionID string) error
	ForgetSessions(ctx context.Context, userID string) error
}

// PasswordChanger is flow.PasswordChange.
type PasswordChanger interface {
	Change(ctx context.Context, who flow.Requester, userID, current, pw, confirm string) error
}

// UserAdmin is the part of admin.Users the dashboard uses.
type UserAdmin interface {
	List(ctx context.Context) ([]directory.User, error)
	SetStatus(ctx context.Context, id, status, by string) (directory.User, error)
}

// LinkMailer makes and mails an invitation or a reset link.
type LinkMailer interface {
	Create(ctx context.Context, req flow.EmailLinkRequest) error
}

// signedIn returns the visitor's valid session and its user, a nil session
// when there is none (no cookie, or one refused), or an error when the
// revocations or the users cannot be read.
func (h *Handler) signedIn(r *http.Request) (*session.Session, directory.User, error) {
	s, err := h.sessionToEnd(r)
	if err != nil || s == nil {
		return nil, directory.User{}, err
	}
	u, err := h.Account.Users.ByID(r.Context(), s.UserID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, directory.User{}, nil
	}
	return s, u, err
}

// toLogin sends a visitor without a session to the login page, which
// brings them back to the page they asked for.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, back string) error {
	http.Redirect(w, r, h.Prefix+"/login?return="+url.QueryEscape(redirect.SafeReturn(back)), http.StatusSeeOther)
	return nil
}

// returnOf is the page a `state` parameter asks to go back to: a path on
// this site, or an absolute URL of this origin made a path; anything else
// is "", and the page offers no way back rather than an open redirect.
func (h *Handler) returnOf(state string) string {
	if origin := h.Forms.Origin; origin != "" && strings.HasPrefix(state, origin+"/") {
		state = state[len(origin):]
	}
	if ret := redirect.SafeReturn(state); ret == state {
		return ret
	}
	return ""
}

// forgetSession drops a session that ended from its user's list. The list
// is a convenience: a failure is reported, and the session stays ended.
func (h *Handler) forgetSession(r *http.Request, s *session.Session) {
	if h.Account == nil {
		return
	}
	if err := h.Account.Sessions.ForgetSession(context.WithoutCancel(r.Context()), s.UserID, s.ID); err != nil {
		h.observer().Failed("dropping a session from its user's list", err)
	}
}

// when tells a time the way the pages do, in the site's zone.
func (h *Handler) when(t time.Time) string {
	zone := h.Zone
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("2006-01-02 15:04 MST")
}
