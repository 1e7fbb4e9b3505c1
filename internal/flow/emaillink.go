package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// EmailLinkType is what an email link is for (seed 001).
type EmailLinkType string

// The types of seed 001, spelled as its API spells them.
const (
	// Invitation completes the signup of a user who has not done so yet.
	Invitation EmailLinkType = "invitation"
	// PasswordReset lets a user who has signed up choose a new password.
	PasswordReset EmailLinkType = "passwordReset"
)

// Why an email link was not made. The contracts answer each in their own
// shape; seed 001 answers them all with 422.
var (
	// ErrEmailLinkExists: the user has a live link; one at a time.
	ErrEmailLinkExists = errors.New("flow: the user already has an email link")
	// ErrSignedUp: an invitation for a user who completed the signup.
	ErrSignedUp = errors.New("flow: the user has completed the signup, so there is nothing to invite to")
	// ErrNotSignedUp: a password reset for a user who has not signed up.
	ErrNotSignedUp = errors.New("flow: the user has not completed the signup, so there is no password to reset")
	// ErrUserDisabled: a link for a user who may not sign in.
	ErrUserDisabled = errors.New("flow: the user is disabled")
	// ErrNotAdmitted: a link to mailgate's own pages for an address the
	// site's allow rules do not admit, which would sign the person in to
	// a site that turns them away.
	ErrNotAdmitted = errors.New("flow: the site's allow rules do not admit the user")
	// ErrNoEmailLink: the user has no live link to show or withdraw.
	ErrNoEmailLink = errors.New("flow: the user has no email link")
)

// Sender hands a letter to the mail server and returns once it took it: an
// email link is asked for by an app or the operator, whose answer promises
// the handover (see Mailer.Send).
type Sender interface {
	Send(ctx context.Context, l mail.Letter) error
}

// EmailLinkUsers finds the users links are for and records what the links
// do: an invitation completes the signup, a reset sets a password.
type EmailLinkUsers interface {
	ByID(ctx context.Context, id string) (directory.User, error)
	SignUp(ctx context.Context, id string) (directory.User, error)
	SetPassword(ctx context.Context, id, hash string) error
}

// EmailLinks is seed 001's flow: invitation and password-reset links, one
// live link per user, each used once.
//
// A link is two store entries. The ticket, under the secret's hash, says
// whose link it is and for what; the user's record, under the user id,
// says that the user has a live link and which ticket it is (by a nonce
// both carry). The record is created with PutNew, so a second link while
// one is live is refused atomically, and it is what GET and DELETE by user
// id see: withdrawing a link drops the record, and a ticket whose record is
// gone or names another nonce no longer works. Using a link takes its
// ticket (exactly once, see redeem) and then drops the record, so that the
// user may be sent a new one.
type EmailLinks struct {
	// Store keeps the tickets and the records.
	Store  ticket.Store
	Users  EmailLinkUsers
	Mailer Sender
	// PageURL is the default URL prefix of a link of type t: mailgate's
	// own page, built from base_url, ending where the ticket is appended.
	PageURL func(t EmailLinkType) string
	// RevokeURL is the "this wasn't me" link that ends the link of
	// secret, also built from base_url.
	RevokeURL func(secret string) string
	// InvitationTTL and ResetTTL are how long a link of each type works.
	InvitationTTL time.Duration
	ResetTTL      time.Duration
	SiteName      string
	// Admits, if set, is the site's allow rules. A link to mailgate's own
	// pages (no URLPrefix) signs the person in to the site, so it is for
	// an address the rules admit; an app's own page decides for itself.
	Admits func(email string) bool
	// EndSessions ends every session of userID issued before before, so
	// that a new password leaves no other device signed in
	// (session.Manager.RevokeUser). Only Reset calls it.
	EndSessions func(ctx context.Context, userID string, before time.Time) error
	Now         func() time.Time
	// Observer is told of the mails sent, the links revoked by their
	// recipients, and the failures a caller only sees as such.
	Observer Observer
}

// EmailLinkRequest is a link to make.
type EmailLinkRequest struct {
	UserID string
	Type   EmailLinkType
	// URLPrefix is what the ticket is appended to; empty: PageURL. The
	// caller has compared it with what the operator allowed.
	URLPrefix string
	// Locale is the mail's language; empty: the user's.
	Locale string
	// Sender names who asked for the link in the mail: an app's name, or
	// empty for the operator.
	Sender string
}

// EmailLink is a live link as a page or an API call shows it.
type EmailLink struct {
	UserID  string
	Type    EmailLinkType
	Expires time.Time
	// The rest is known from the ticket only, not from the user's record.
	User   directory.User
	Sender string
	Locale string
}

type emailLinkTicket struct {
	UserID string        `json:"user_id"`
	Type   EmailLinkType `json:"type"`
	Nonce  string        `json:"nonce"`
	Locale string        `json:"locale,omitempty"`
	Sender string        `json:"sender,omitempty"`
	// Expires is when the link stops working, in Unix nanoseconds (see
	// redeem).
	Expires int64 `json:"expires"`
}

type emailLinkRecord struct {
	Type    EmailLinkType `json:"type"`
	Nonce   string        `json:"nonce"`
	Expires int64         `json:"expires"`
}

func (f *EmailLinks) tickets() ticket.Kind[emailLinkTicket] {
	return ticket.Kind[emailLinkTicket]{Store: f.Store, Name: "emaillink"}
}

// records are kept by user id. Not "emaillink-of": that is where the
// tickets' Kind keeps its owner pointers.
func (f *EmailLinks) records() ticket.Kind[emailLinkRecord] {
	return ticket.Kind[emailLinkRecord]{Store: f.Store, Name: "emaillink-user"}
}

// TTL is how long a link of type t works.
func (f *EmailLinks) TTL(t EmailLinkType) time.Duration {
	if t == Invitation {
		return f.InvitationTTL
	}
	return f.ResetTTL
}

// signedUp is the seed's "completed the signup": users made active before
// SignedUp was recorded count too.
func signedUp(u directory.User) bool {
	return !u.SignedUp.IsZero() || u.Status == directory.StatusActive
}

// Create makes a link for the user and mails it, and returns once the mail
// server took the mail. It fails with directory.ErrNotFound for an unknown
// user, ErrUserDisabled, ErrSignedUp or ErrNotSignedUp when the type does
// not fit the user, ErrNotAdmitted for mailgate's own pages and an address
// the site does not admit, ErrEmailLinkExists while the user has a live link, and
// ErrDelivery when the mail could not be sent: then no link is left, and
// a new one may be asked for at once.
func (f *EmailLinks) Create(ctx context.Context, req EmailLinkRequest) error {
	u, err := f.Users.ByID(ctx, req.UserID)
	if err != nil {
		return err
	}
	switch {
	case req.Type != Invitation && req.Type != PasswordReset:
		return fmt.Errorf("flow: unknown email link type %q", req.Type)
	case u.Status == directory.StatusDisabled:
		return ErrUserDisabled
	case req.Type == Invitation && signedUp(u):
		return ErrSignedUp
	case req.Type == PasswordReset && !signedUp(u):
		return ErrNotSignedUp
	case req.URLPrefix == "" && f.Admits != nil && !f.Admits(u.Email):
		return ErrNotAdmitted
	}
	ttl := f.TTL(req.Type)
	expires := f.Now().Add(ttl).UnixNano()
	nonce := ticket.NewSecret()
	fresh, err := f.records().PutNew(ctx, u.ID, emailLinkRecord{Type: req.Type, Nonce: nonce, Expires: expires}, ttl)
	if err != nil {
		return fmt.Errorf("flow: storing the email link: %w", err)
	}
	if !fresh {
		return ErrEmailLinkExists
	}
	loc := cmp.Or(req.Locale, u.Locale)
	// Owned by the user, so that the ticket of a link that was withdrawn
	// (dead already, its record gone) is deleted rather than left to expire.
	secret, err := f.tickets().Issue(ctx, u.ID, emailLinkTicket{
		UserID: u.ID, Type: req.Type, Nonce: nonce, Locale: loc, Sender: req.Sender, Expires: expires,
	}, ttl)
	if err != nil {
		return errors.Join(fmt.Errorf("flow: storing the email link: %w", err), f.forget(ctx, u.ID, ""))
	}
	letter := mail.Letter{
		To: u.Email, Locale: loc, Template: letterOf(req.Type), SiteName: f.SiteName, App: req.Sender,
		Link: cmp.Or(req.URLPrefix, f.PageURL(req.Type)) + secret, RevokeLink: f.RevokeURL(secret), Expires: ttl,
	}
	if err := f.Mailer.Send(ctx, letter); err != nil {
		// A link nobody received must neither work nor keep the user from
		// getting the next one.
		return errors.Join(fmt.Errorf("%w: %w", ErrDelivery, err), f.forget(ctx, u.ID, secret))
	}
	ObservedIn(ctx, f.Observer).LoginStarted(methodOf(req.Type))
	return nil
}

// forget drops a link that was not sent: its record and, if issued, its
// ticket.
func (f *EmailLinks) forget(ctx context.Context, userID, secret string) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if secret != "" {
		errs = append(errs, f.tickets().Drop(ctx, secret))
	}
	errs = append(errs, f.records().Drop(ctx, userID))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flow: dropping an email link that was not sent: %w", err)
	}
	return nil
}

// letterOf is the mail's letter (see mail's catalogue) for a link type.
func letterOf(t EmailLinkType) string {
	if t == Invitation {
		return "invitation"
	}
	return "reset"
}

func methodOf(t EmailLinkType) Method {
	if t == Invitation {
		return MethodInvitation
	}
	return MethodPasswordReset
}

// Status returns the user's live link: directory.ErrNotFound for an unknown
// user, ErrNoEmailLink when there is none.
func (f *EmailLinks) Status(ctx context.Context, userID string) (EmailLink, error) {
	if _, err := f.Users.ByID(ctx, userID); err != nil {
		return EmailLink{}, err
	}
	rec, err := f.records().Peek(ctx, userID)
	if errors.Is(err, ticket.ErrNotFound) {
		return EmailLink{}, ErrNoEmailLink
	}
	if err != nil {
		return EmailLink{}, fmt.Errorf("flow: reading the email link: %w", err)
	}
	return EmailLink{UserID: userID, Type: rec.Type, Expires: time.Unix(0, rec.Expires)}, nil
}

// Withdraw ends the user's live link without using it; a new one may then
// be made. directory.ErrNotFound for an unknown user, ErrNoEmailLink when
// there is none.
func (f *EmailLinks) Withdraw(ctx context.Context, userID string) error {
	if _, err := f.Users.ByID(ctx, userID); err != nil {
		return err
	}
	// Taken, not deleted, to know whether there was one. The ticket stays
	// until it expires or the next link's Issue deletes it, but no longer
	// works: live finds no record for it.
	_, err := f.records().Redeem(ctx, userID)
	if errors.Is(err, ticket.ErrNotFound) {
		return ErrNoEmailLink
	}
	if err != nil {
		return fmt.Errorf("flow: withdrawing the email link: %w", err)
	}
	return nil
}

// Peek returns the link behind secret without using it, for the pages that
// show what a link is for before the person confirms: mail scanners open
// links too. ErrLinkInvalid when it no longer works.
func (f *EmailLinks) Peek(ctx context.Context, secret string) (EmailLink, error) {
	t, err := f.tickets().Peek(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) {
		return EmailLink{}, ErrLinkInvalid
	}
	if err != nil {
		return EmailLink{}, fmt.Errorf("flow: reading the email link: %w", err)
	}
	u, err := f.owner(ctx, t)
	if err != nil {
		return EmailLink{}, err
	}
	return t.link(u), nil
}

func (t emailLinkTicket) link(u directory.User) EmailLink {
	return EmailLink{UserID: t.UserID, Type: t.Type, Expires: time.Unix(0, t.Expires), User: u, Sender: t.Sender, Locale: t.Locale}
}

// owner returns the user of a ticket that still works: its user's record
// names it, and the user exists and may sign in. ErrLinkInvalid otherwise.
func (f *EmailLinks) owner(ctx context.Context, t emailLinkTicket) (directory.User, error) {
	rec, err := f.records().Peek(ctx, t.UserID)
	switch {
	case errors.Is(err, ticket.ErrNotFound):
		return directory.User{}, ErrLinkInvalid
	case err != nil:
		return directory.User{}, fmt.Errorf("flow: reading the email link: %w", err)
	case rec.Nonce != t.Nonce:
		return directory.User{}, ErrLinkInvalid
	}
	u, err := f.Users.ByID(ctx, t.UserID)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return directory.User{}, ErrLinkInvalid
	case err != nil:
		return directory.User{}, err
	case u.Status == directory.StatusDisabled:
		return directory.User{}, ErrLinkInvalid
	}
	return u, nil
}

// use takes the ticket behind secret, once, and hands the link to do while
// it still works; one of a wrong type is used up as ErrLinkInvalid (an
// empty want takes either). When do fails, the ticket is put back (see redeem). When it
// succeeds the user's record is dropped, so a new link may be made; a
// record that cannot be dropped is reported, not failed on, since what the
// link was for is done and cannot be undone: the record then only refuses
// a new link until it expires.
func (f *EmailLinks) use(ctx context.Context, secret string, want EmailLinkType, do func(EmailLink) error) error {
	return redeem(ctx, f.tickets(), secret, f.Now, emailLinkHeld, func(t emailLinkTicket) error {
		u, err := f.owner(ctx, t)
		if err != nil {
			return err
		}
		if want != "" && t.Type != want {
			// Taken all the same: its record goes with it, or it would
			// refuse the user a new link until it expired.
			f.dropRecord(ctx, t.UserID)
			return ErrLinkInvalid
		}
		if err := do(t.link(u)); err != nil {
			return err
		}
		f.dropRecord(ctx, t.UserID)
		return nil
	})
}

// dropRecord drops the record of a link whose ticket was taken.
func (f *EmailLinks) dropRecord(ctx context.Context, userID string) {
	if err := f.records().Drop(context.WithoutCancel(ctx), userID); err != nil {
		Observed(f.Observer).Failed("dropping a used email link's record", err)
	}
}

// emailLinkHeld is whose a ticket is (it was issued owned by its user) and
// when it expires.
func emailLinkHeld(t emailLinkTicket) (string, time.Time) { return t.UserID, time.Unix(0, t.Expires) }

// Verify uses the link behind secret for an app that serves its own pages
// (a custom URL prefix) and returns it: the app does what the link is for.
// An invitation's signup is complete once its link is verified, so the user
// is active from then on. ErrLinkInvalid for a ticket that is unknown,
// used, withdrawn or expired: one answer for all.
func (f *EmailLinks) Verify(ctx context.Context, secret string) (EmailLink, error) {
	var verified EmailLink
	err := f.use(ctx, secret, "", func(l EmailLink) error {
		if l.Type == Invitation {
			if _, err := f.Users.SignUp(ctx, l.UserID); err != nil {
				return err
			}
		}
		verified = l
		return nil
	})
	return verified, err
}

// Accept uses an invitation: the user becomes active, and use starts the
// session and sends the person to the site.
func (f *EmailLinks) Accept(ctx context.Context, secret string, use func(Login) error) error {
	return f.use(ctx, secret, Invitation, func(l EmailLink) error {
		u, err := f.Users.SignUp(ctx, l.UserID)
		if err != nil {
			return err
		}
		return use(Login{User: u, Return: "/", Locale: l.Locale, Method: MethodInvitation})
	})
}

// Reset uses a password-reset link: it checks the new password against the
// policy first (a password that fails it leaves the link usable, as
// PasswordStep does), stores it, ends every other session of the user,
// and hands the login to use, which starts the new session.
func (f *EmailLinks) Reset(ctx context.Context, secret, pw, confirm string, use func(Login) error) error {
	if err := checkNewPassword(pw, confirm); err != nil {
		return err
	}
	return f.use(ctx, secret, PasswordReset, func(l EmailLink) error {
		if err := checkOwnWords(pw, l.User); err != nil {
			return err
		}
		if err := f.Users.SetPassword(ctx, l.UserID, password.New(pw).String()); err != nil {
			return err
		}
		// Whoever reset the password may have done so because someone
		// else is signed in as them.
		if err := f.EndSessions(ctx, l.UserID, f.Now()); err != nil {
			return err
		}
		return use(Login{User: l.User, Return: "/", Locale: l.Locale, Method: MethodPasswordReset})
	})
}

// Revoke ends the link behind secret for its recipient, who says it was not
// for them, and returns what it was.
func (f *EmailLinks) Revoke(ctx context.Context, secret string) (EmailLink, error) {
	var revoked EmailLink
	err := f.use(ctx, secret, "", func(l EmailLink) error {
		revoked = l
		Observed(f.Observer).EmailLinkRevoked(l.UserID)
		return nil
	})
	return revoked, err
}
