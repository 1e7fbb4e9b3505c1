package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrLinkInvalid covers a link that is unknown, used, expired, superseded, or
// whose owner may no longer log in. The person is told only that it no longer
// works.
var ErrLinkInvalid = errors.New("flow: link is no longer valid")

// LinkLimits bound how often links are mailed. Each is counted in the
// store, so a cluster sharing the store shares the counts.
type LinkLimits struct {
	// PerIP counts browser requests per client IP (IPv6 per /64 and /48); over it,
	// the person is told to wait.
	PerIP limit.Rule
	// PerAddress counts requests per recipient address. Over it, a browser
	// sees the usual "check your inbox" page and no mail goes out, so the
	// limit tells nobody who has an account; an app is told to wait.
	PerAddress limit.Rule
	// PerClient counts an app's API requests.
	PerClient limit.Rule
}

// MagicLink is the login-by-mailed-link flow.
type MagicLink struct {
	// Store keeps the pending links.
	Store     ticket.Store
	Users     Users
	Mailer    Mailer
	Allowlist Allowlist
	// LinkURL turns a secret into the link that is mailed, for a page in
	// locale. It is built from the configured base URL, never from the
	// request.
	LinkURL  func(secret, locale string) string
	TTL      time.Duration
	SiteName string
	Now      func() time.Time
	Limits   LinkLimits
	// Observer is told of the mails started, refused, limited and given
	// up: an operator whose allow rule is wrong sees why nobody gets a
	// mail. Nil: nobody is told.
	Observer Observer
}

// links is the kind of secret a mailed link carries.
func (f *MagicLink) links() ticket.Kind[linkPayload] {
	return ticket.Kind[linkPayload]{Store: f.Store, Name: "link"}
}

type linkPayload struct {
	Email  string       `json:"email"`
	Return string       `json:"return,omitempty"`
	Locale string       `json:"locale,omitempty"`
	Client *ClientLogin `json:"client,omitempty"`
	// Expires is when the link stops working, in Unix nanoseconds, so
	// that a confirmation that failed can put it back for the rest of its
	// life and no longer.
	Expires int64 `json:"expires,omitempty"`
	// Issued is when the link was issued, in Unix nanoseconds, held
	// against the address's EndPending.
	Issued int64 `json:"issued,omitempty"`
	// Requester is for the mail only, never stored: the link's ticket
	// holds no IP or browser.
	Requester *Requester `json:"-"`
}

// Request mails a login link to email if it is allowed and within its
// limits, and otherwise mails nothing. Either way the answer must not tell
// who has access, so it does not wait for the mail server: the letter is
// queued (see Mailer.Enqueue), and an address that gets none does the same
// store round trip and queue check instead (see mailNothing). The link leads
// back to returnPath, which must already be safe (see redirect.SafeReturn).
// It fails with a *limit.ExceededError when who asked too often, with
// directory.ErrInvalidEmail for an address that does not parse, a
// TooLongError for a return path over MaxReturn, and ErrDelivery when the
// queue cannot take a letter, whether or not one was due.
func (f *MagicLink) Request(ctx context.Context, who Requester, email, returnPath, locale string) error {
	// Every request counts against its IP, well-formed or not.
	if err := f.Limits.PerIP.HitIP(ctx, f.Store, "requests_per_ip", who.IP); err != nil {
		return err
	}
	email, err := directory.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := checkLength("return", returnPath, MaxReturn); err != nil {
		return err
	}
	// Counted for every address, allowed or not, so that both cost the
	// same store round trip.
	err = f.Limits.PerAddress.Hit(ctx, f.Store, "mails_per_address", email)
	var exceeded *limit.ExceededError
	switch {
	case errors.As(err, &exceeded):
		ObservedIn(ctx, f.Observer).Limited(exceeded.Rule)
		return f.mailNothing(ctx)
	case err != nil:
		return err
	}
	if !f.Allowlist.Allows(email) {
		ObservedIn(ctx, f.Observer).Refused(MethodLink, email[strings.LastIndexByte(email, '@')+1:])
		return f.mailNothing(ctx)
	}
	return f.queue(ctx, linkPayload{Email: email, Return: returnPath, Locale: locale, Requester: &who})
}

// queue issues the link and queues its letter. A full queue is found out
// before the link is issued, as mailNothing does; a letter the queue will
// not take all the same (it filled up meanwhile) has its link dropped at
// once, and one the queue gives up on, when it does.
func (f *MagicLink) queue(ctx context.Context, p linkPayload) error {
	if err := f.Mailer.Room(); err != nil {
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	secret, letter, err := f.issue(ctx, p)
	if err != nil {
		return err
	}
	drop := func(ctx context.Context) error {
		if err := f.links().Drop(ctx, secret); err != nil {
			return fmt.Errorf("flow: dropping an undelivered link: %w", err)
		}
		return nil
	}
	given := func(ctx context.Context) error {
		Observed(f.Observer).MailGivenUp(MethodLink)
		return drop(ctx)
	}
	if err := f.Mailer.Enqueue(letter, given); err != nil {
		_ = drop(context.WithoutCancel(ctx))
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	ObservedIn(ctx, f.Observer).LoginStarted(MethodLink)
	return nil
}

// mailNothing is a request that gets no mail, answered like one that does:
// the same check of the queue first, since a full queue must not refuse
// only the addresses that have an account; then one store write where
// queue issues the link (a delete of a key nobody has, so nothing is
// stored), since against Redis that write is a network round trip that a
// timing would otherwise tell apart.
func (f *MagicLink) mailNothing(ctx context.Context) error {
	if err := f.Mailer.Room(); err != nil {
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	if err := f.links().Drop(ctx, ticket.NewSecret()); err != nil {
		return fmt.Errorf("flow: storing link: %w", err)
	}
	return nil
}

// RequestForClient mails a login link to an existing user on behalf of an
// app; the login ends at the app's redirect URI, which the caller has
// checked against the app's list. The site's allowlist does not apply: the
// app vouches for its own users. A state or scope over its bound is a
// TooLongError.
//
// Over the app's own limit, or the address's, it fails with a
// *limit.ExceededError: an app that may look users up learns nothing new
// from it.
func (f *MagicLink) RequestForClient(ctx context.Context, u directory.User, locale string, c ClientLogin) error {
	if err := checkLength("state", c.State, MaxState); err != nil {
		return err
	}
	if err := checkLength("scope", c.Scope, MaxScope); err != nil {
		return err
	}
	if err := f.Limits.PerClient.Hit(ctx, f.Store, "requests_per_client", c.ClientID); err != nil {
		return err
	}
	if err := f.Limits.PerAddress.Hit(ctx, f.Store, "mails_per_address", u.Email); err != nil {
		return err
	}
	// The app's locale for this mail, or else the user's own.
	return f.send(ctx, linkPayload{Email: u.Email, Locale: cmp.Or(locale, u.Locale), Client: &c})
}

// send issues the link and mails it, returning once the mail server took
// it.
func (f *MagicLink) send(ctx context.Context, p linkPayload) error {
	secret, letter, err := f.issue(ctx, p)
	if err != nil {
		return err
	}
	if err := f.Mailer.Send(ctx, letter); err != nil {
		// A link nobody received must not stay redeemable.
		_ = f.links().Drop(context.WithoutCancel(ctx), secret)
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	ObservedIn(ctx, f.Observer).LoginStarted(MethodLink)
	return nil
}

// issue stores a new link for p, superseding the address's previous one,
// and writes the letter that carries it.
func (f *MagicLink) issue(ctx context.Context, p linkPayload) (string, mail.Letter, error) {
	now := f.Now()
	p.Issued, p.Expires = now.UnixNano(), now.Add(f.TTL).UnixNano()
	secret, err := f.links().Issue(ctx, p.Email, p, f.TTL)
	if err != nil {
		return "", mail.Letter{}, fmt.Errorf("flow: storing link: %w", err)
	}
	letter := mail.Letter{
		To: p.Email, Locale: p.Locale, Template: "login", SiteName: f.SiteName,
		Link: f.LinkURL(secret, p.Locale), Expires: f.TTL,
	}
	if c := p.Client; c != nil {
		letter.App, letter.NewAccount, letter.SetPassword = cmp.Or(c.AppName, c.ClientID), c.AccountCreated, c.ResetPassword
	} else if r := p.Requester; r != nil {
		letter.RequestedAt, letter.RequestIP, letter.RequestAgent = f.Now(), r.IP, r.Agent
	}
	return secret, letter, nil
}

// Account returns the address the link behind secret would sign in, without
// consuming it, so that the confirmation page can name it: a person who
// opened someone else's link sees whose it is.
func (f *MagicLink) Account(ctx context.Context, secret string) (string, error) {
	p, err := f.links().Peek(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) {
		return "", ErrLinkInvalid
	}
	if err != nil {
		return "", fmt.Errorf("flow: reading link: %w", err)
	}
	return p.Email, nil
}

// Redeem consumes the link's secret and hands the login to use, which
// starts the session. The first browser login of an allowed address creates
// its user. When creating the user or use fails, the link is not used up
// (see redeem).
func (f *MagicLink) Redeem(ctx context.Context, secret string, use func(Login) error) error {
	return redeem(ctx, f.links(), secret, f.Now, linkHeld, func(p linkPayload) error {
		// The allowlist may have shrunk since a browser asked for the link.
		if p.Client == nil && !f.Allowlist.Allows(p.Email) {
			return ErrLinkInvalid
		}
		u, err := signingIn(ctx, f.Users, f.Store, p.Email, time.Unix(0, p.Issued))
		if err != nil {
			return err
		}
		return use(Login{User: u, Return: redirect.SafeReturn(p.Return), Locale: p.Locale, Client: p.Client, Method: MethodLink})
	})
}

// linkHeld is whose a link is (it was issued owned by its address) and when
// it expires.
func linkHeld(p linkPayload) (string, time.Time) { return p.Email, time.Unix(0, p.Expires) }
