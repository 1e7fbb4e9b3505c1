package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/redirect"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrDelivery means the login mail could not be handed to the mail server;
// the link was dropped and the person should try again later.
var ErrDelivery = errors.New("flow: the email could not be sent")

// ErrLinkInvalid covers a link that is unknown, used, expired, superseded, or
// whose owner may no longer log in. The person is told only that it no longer
// works.
var ErrLinkInvalid = errors.New("flow: link is no longer valid")

// Bounds on what a request stores with its pending link. They are checked
// before anything reaches the store, which never drops a marker to make
// room and must not fill with one visitor's padding.
const (
	// MaxReturn bounds the path a browser login returns to.
	MaxReturn = 2 << 10
	// MaxState bounds an app's opaque state, echoed to its redirect URI.
	MaxState = 1 << 10
	// MaxScope bounds the scope an app asks its tokens to carry.
	MaxScope = 1 << 10
)

// TooLongError names a request field over its bound; contracts answer it
// with their own 400.
type TooLongError struct {
	Field string
	Max   int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("%s is longer than %d bytes", e.Field, e.Max)
}

// checkLength returns a TooLongError when v is longer than max bytes.
func checkLength(field, v string, max int) error {
	if len(v) > max {
		return &TooLongError{Field: field, Max: max}
	}
	return nil
}

// Requester is who asked for a mail from a browser: limits count per IP,
// and the mail repeats both, so that a person who did not ask can tell.
type Requester struct {
	// IP is the client IP as the server resolved it (trusted proxies
	// only), never a raw header.
	IP    string
	Agent string
}

// LinkLimits bound how often links are mailed. Each is counted in the
// store, so a cluster sharing the store shares the counts.
type LinkLimits struct {
	// PerIP counts browser requests per client IP (IPv6 per /64); over it,
	// the person is told to wait.
	PerIP limit.Rule
	// PerAddress counts requests per recipient address. Over it, a browser
	// sees the usual "check your inbox" page and no mail goes out, so the
	// limit tells nobody who has an account; an app is told to wait.
	PerAddress limit.Rule
	// PerClient counts an app's API requests.
	PerClient limit.Rule
}

// Mailer sends a letter.
type Mailer interface {
	Send(ctx context.Context, l mail.Letter) error
}

// Users finds or creates the account behind an address.
type Users interface {
	EnsureByEmail(ctx context.Context, email string) (directory.User, error)
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
	// Sleep waits for d or until ctx ends; it pads answers for addresses
	// that get no mail (see pad).
	Sleep func(ctx context.Context, d time.Duration)
	Now   func() time.Time
	// Refused, if set, is told the domain of an address that matched no
	// allow rule, so that an operator whose rule is wrong can see why
	// nobody gets a mail; the person is answered as if it was sent.
	Refused func(domain string)
	Limits  LinkLimits
	// Limited, if set, is told the rule that silently stopped a mail.
	Limited func(rule string)

	mu      sync.Mutex
	sendAvg time.Duration
}

// Login is a redeemed link: who logs in, and where they go next.
type Login struct {
	User directory.User
	// Return is the path on this site to go to, for a browser login.
	Return string
	Locale string
	// Client is set for a login an app asked for.
	Client *ClientLogin
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
	// Requester is for the mail only, never stored: the link's ticket
	// holds no IP or browser.
	Requester *Requester `json:"-"`
}

// Request mails a login link to email if it is allowed and within its
// limits, and otherwise does nothing, taking about as long either way so
// that the answer does not tell who has access. The link leads back to
// returnPath, which must already be safe (see redirect.SafeReturn). It fails
// with a *limit.ExceededError when who asked too often, with
// directory.ErrInvalidEmail for an address that does not parse, a
// TooLongError for a return path over MaxReturn, and ErrDelivery when the
// mail server refused.
func (f *MagicLink) Request(ctx context.Context, who Requester, email, returnPath, locale string) error {
	// Every request counts against its IP, well-formed or not.
	if err := f.Limits.PerIP.Hit(ctx, f.Store, "requests_per_ip", limit.IPSubject(who.IP)); err != nil {
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
		if f.Limited != nil {
			f.Limited(exceeded.Rule)
		}
		f.pad(ctx)
		return nil
	case err != nil:
		return err
	}
	if !f.Allowlist.Allows(email) {
		if f.Refused != nil {
			f.Refused(email[strings.LastIndexByte(email, '@')+1:])
		}
		f.pad(ctx)
		return nil
	}
	return f.send(ctx, linkPayload{Email: email, Return: returnPath, Locale: locale, Requester: &who})
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
	return f.send(ctx, linkPayload{Email: u.Email, Locale: locale, Client: &c})
}

func (f *MagicLink) send(ctx context.Context, p linkPayload) error {
	secret, err := f.links().Issue(ctx, p.Email, p, f.TTL)
	if err != nil {
		return fmt.Errorf("flow: storing link: %w", err)
	}
	start := f.Now()
	letter := mail.Letter{
		To: p.Email, Locale: p.Locale, Template: "login", SiteName: f.SiteName,
		Link: f.LinkURL(secret, p.Locale), Expires: f.TTL,
	}
	if c := p.Client; c != nil {
		letter.App, letter.NewAccount, letter.SetPassword = cmp.Or(c.AppName, c.ClientID), c.AccountCreated, c.ResetPassword
	} else if r := p.Requester; r != nil {
		letter.RequestedAt, letter.RequestIP, letter.RequestAgent = f.Now(), r.IP, r.Agent
	}
	err = f.Mailer.Send(ctx, letter)
	if err != nil {
		// A link nobody received must not stay redeemable.
		_ = f.links().Drop(context.WithoutCancel(ctx), secret)
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	f.record(f.Now().Sub(start))
	return nil
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

// Redeem consumes the link's secret and returns the login. The first
// browser login of an allowed address creates its user.
func (f *MagicLink) Redeem(ctx context.Context, secret string) (Login, error) {
	p, err := f.links().Redeem(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) {
		return Login{}, ErrLinkInvalid
	}
	if err != nil {
		return Login{}, fmt.Errorf("flow: reading link: %w", err)
	}
	// The allowlist may have shrunk since a browser asked for the link.
	if p.Client == nil && !f.Allowlist.Allows(p.Email) {
		return Login{}, ErrLinkInvalid
	}
	u, err := f.Users.EnsureByEmail(ctx, p.Email)
	if err != nil {
		return Login{}, err
	}
	if u.Status == directory.StatusDisabled {
		return Login{}, ErrLinkInvalid
	}
	return Login{User: u, Return: redirect.SafeReturn(p.Return), Locale: p.Locale, Client: p.Client}, nil
}

// record keeps a moving average of how long a successful send takes.
func (f *MagicLink) record(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendAvg == 0 {
		f.sendAvg = d
		return
	}
	f.sendAvg = (f.sendAvg*7 + d) / 8
}

// maxPad bounds the padding, so a slow mail server cannot make every
// refused request slow.
const maxPad = 3 * time.Second

// pad waits about as long as a send takes, so an address that gets no mail is
// not told apart by a faster answer.
func (f *MagicLink) pad(ctx context.Context) {
	f.mu.Lock()
	d := f.sendAvg
	f.mu.Unlock()
	if d > maxPad {
		d = maxPad
	}
	if d > 0 {
		f.Sleep(ctx, d)
	}
}

// SleepContext waits for d or until ctx is done: the production Sleep.
func SleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
