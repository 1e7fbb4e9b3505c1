package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// Pages of the operator dashboard.
const (
	PageDashboard = "dashboard"
	// PageForbidden is a signed-in person who is not an admin.
	PageForbidden = "forbidden"
)

// dashboardPath is the dashboard's path under the prefix: "_" keeps the
// operator's pages apart from the visitors'.
const dashboardPath = "/_/op-dashboard"

// dashboardShown bounds the users one page lists; a search narrows them.
const dashboardShown = 100

// dashboardRecent bounds the recent sign-ins the dashboard lists.
const dashboardRecent = 20

// DashboardData is what the operator dashboard shows.
type DashboardData struct {
	Query string
	Users []directory.User
	// Matched is how many users the search found, Shown of them listed.
	Matched int
	// Counts are the users by status, over all of them.
	Invited, Active, Disabled, Total int
	// Recent are the newest sign-ins of the users the search matched,
	// newest first, from the sessions they were issued (the profile's
	// list, kept in Caddy's storage, so every instance of a cluster shows
	// the same).
	Recent []RecentSignIn
	// Notice is a catalogue key saying how the last action went, and
	// Failed whether it did not.
	Notice string
	Failed bool
}

// RecentSignIn is one line of the dashboard's recent sign-ins.
type RecentSignIn struct {
	Email, Agent, Method, Issued string
	// issued orders the lines.
	issued time.Time
}

// dashboardNotices are the messages an action may send back to the page
// (?note=): nothing else is shown, so a crafted link cannot put words on
// the operator's page.
var dashboardNotices = map[string]bool{
	"dash_disabled": false, "dash_enabled": false, "dash_sent": false,
	"dash_link_exists": true, "dash_user_disabled": true, "dash_signed_up": true, "dash_not_signed_up": true,
	"dash_not_admitted": true, "dash_delivery": true, "dash_not_found": true, "dash_incomplete": true,
}

// admin returns the signed-in admin, or answers itself: the login page
// for a visitor without a session, 403 for anyone else, and reports false.
func (h *Handler) admin(w http.ResponseWriter, r *http.Request) (directory.User, bool, error) {
	s, u, err := h.signedIn(r)
	switch {
	case err != nil:
		return u, false, fail(http.StatusServiceUnavailable, err)
	case s == nil:
		return u, false, h.toLogin(w, r, h.Prefix+dashboardPath)
	case !h.Account.Admins(u):
		return u, false, h.render(w, r, http.StatusForbidden, PageForbidden, Data{Email: u.Email})
	}
	return u, true, nil
}

// dashboardPage lists the users (those matching ?q= in address, name or
// username) with their standing and the actions on them, and counts them
// by status.
func (h *Handler) dashboardPage(w http.ResponseWriter, r *http.Request) error {
	me, ok, err := h.admin(w, r)
	if !ok {
		return err
	}
	users, err := h.Account.Admin.List(r.Context())
	if err != nil {
		return fail(http.StatusServiceUnavailable, err)
	}
	q := r.URL.Query()
	d := &DashboardData{Query: strings.TrimSpace(q.Get("q")), Total: len(users)}
	if failed, ok := dashboardNotices[q.Get("note")]; ok {
		d.Notice, d.Failed = q.Get("note"), failed
	}
	needle := strings.ToLower(d.Query)
	for _, u := range users {
		switch u.Status {
		case directory.StatusInvited:
			d.Invited++
		case directory.StatusActive:
			d.Active++
		case directory.StatusDisabled:
			d.Disabled++
		}
		if needle == "" || strings.Contains(strings.ToLower(u.Email+"\n"+u.Name+"\n"+u.Username), needle) {
			d.Matched++
			if len(d.Users) < dashboardShown {
				d.Users = append(d.Users, u)
			}
			d.Recent = h.recentSignIns(r, d.Recent, u)
		}
	}
	return h.render(w, r, http.StatusOK, PageDashboard, Data{
		FormToken: h.Forms.Token(w, r), Email: me.Email, Dashboard: d,
	})
}

// recentSignIns adds u's sessions to the newest sign-ins in recent, which
// it keeps ordered and at most dashboardRecent long. A list that cannot be
// read is left out: the rest of the page still works.
func (h *Handler) recentSignIns(r *http.Request, recent []RecentSignIn, u directory.User) []RecentSignIn {
	records, err := h.Account.Sessions.Sessions(r.Context(), u.ID)
	if err != nil {
		h.observer().Failed("reading a user's sessions", err)
		return recent
	}
	for _, rec := range records {
		recent = append(recent, RecentSignIn{
			Email: u.Email, Agent: rec.Agent, Method: methodKey(rec.Method),
			Issued: h.when(rec.Issued), issued: rec.Issued,
		})
	}
	slices.SortStableFunc(recent, func(a, b RecentSignIn) int { return b.issued.Compare(a.issued) })
	return recent[:min(len(recent), dashboardRecent)]
}

// dashboardStatus disables or enables a user: admin.Users, as the command
// line and the users API do, so a disable ends every session of the user.
func (h *Handler) dashboardStatus(w http.ResponseWriter, r *http.Request) error {
	me, ok, err := h.admin(w, r)
	if !ok {
		return err
	}
	status, note := r.PostFormValue("status"), "dash_enabled"
	if status == directory.StatusDisabled {
		note = "dash_disabled"
	} else {
		status = directory.StatusActive
	}
	_, err = h.Account.Admin.SetStatus(r.Context(), r.PostFormValue("id"), status, "admin "+me.ID)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		note = "dash_not_found"
	case err != nil:
		h.observer().Failed("changing a user's status on the dashboard", err)
		note = "dash_incomplete"
	}
	return h.backToDashboard(w, r, note)
}

// dashboardLink mails an invitation or a password reset (flow.EmailLinks,
// which allows one live link per user: a repeat is refused, not mailed).
func (h *Handler) dashboardLink(w http.ResponseWriter, r *http.Request) error {
	if _, ok, err := h.admin(w, r); !ok {
		return err
	}
	typ := flow.EmailLinkType(r.PostFormValue("type"))
	if !slices.Contains([]flow.EmailLinkType{flow.Invitation, flow.PasswordReset}, typ) {
		return fail(http.StatusBadRequest, errors.New("web: unknown email link type"))
	}
	err := h.Account.Links.Create(r.Context(), flow.EmailLinkRequest{UserID: r.PostFormValue("id"), Type: typ})
	note := "dash_sent"
	for want, key := range map[error]string{
		directory.ErrNotFound: "dash_not_found", flow.ErrEmailLinkExists: "dash_link_exists",
		flow.ErrUserDisabled: "dash_user_disabled", flow.ErrSignedUp: "dash_signed_up",
		flow.ErrNotSignedUp: "dash_not_signed_up", flow.ErrNotAdmitted: "dash_not_admitted",
		flow.ErrDelivery: "dash_delivery",
	} {
		if errors.Is(err, want) {
			note = key
		}
	}
	if err != nil && note == "dash_sent" {
		return fail(http.StatusServiceUnavailable, err)
	}
	return h.backToDashboard(w, r, note)
}

// backToDashboard answers an action by sending the operator back to the
// list they acted on, with a note of how it went (Post/Redirect/Get).
func (h *Handler) backToDashboard(w http.ResponseWriter, r *http.Request, note string) error {
	q := url.Values{"note": {note}}
	if s := r.PostFormValue("q"); s != "" {
		q.Set("q", s)
	}
	http.Redirect(w, r, h.Prefix+dashboardPath+"?"+q.Encode(), http.StatusSeeOther)
	return nil
}
