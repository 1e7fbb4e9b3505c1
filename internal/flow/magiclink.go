package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// ErrDelivery means the login mail could not be handed to the mail server;
// the link was dropped and the person should try again later.
var ErrDelivery = errors.New("flow: the email could not be sent")

// ErrLinkInvalid covers a link that is unknown, used, expired, superseded, or
// whose owner may no longer log in. The person is told only that it no longer
// works.
var ErrLinkInvalid = errors.New("flow: link is no longer valid")

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
	Tickets   ticket.Tickets
	Users     Users
	Mailer    Mailer
	Allowlist Allowlist
	// LinkURL turns a secret into the link that is mailed. It is built
	// from the configured base URL, never from the request.
	LinkURL  func(secret string) string
	TTL      time.Duration
	SiteName string
	// Sleep waits for d or until ctx ends; it pads answers for addresses
	// that get no mail (see pad).
	Sleep func(ctx context.Context, d time.Duration)
	Now   func() time.Time

	mu      sync.Mutex
	sendAvg time.Duration
}

type linkPayload struct {
	Email  string `json:"email"`
	Return string `json:"return"`
}

// Request mails a login link to email if it is allowed, and otherwise does
// nothing, taking about as long either way so that the answer does not tell
// who has access. The link leads back to returnPath, which must already be
// safe (see SafeReturn). It fails with directory.ErrInvalidEmail for an
// address that does not parse, and ErrDelivery when the mail server refused.
func (f *MagicLink) Request(ctx context.Context, email, returnPath, locale string) error {
	email, err := directory.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if !f.Allowlist.Allows(email) {
		f.pad(ctx)
		return nil
	}
	payload, err := json.Marshal(linkPayload{Email: email, Return: returnPath})
	if err != nil {
		return err
	}
	secret, err := f.Tickets.Issue(ctx, email, payload, f.TTL)
	if err != nil {
		return fmt.Errorf("flow: storing link: %w", err)
	}
	start := f.Now()
	err = f.Mailer.Send(ctx, mail.Letter{
		To: email, Locale: locale, Template: "login", SiteName: f.SiteName,
		Link: f.LinkURL(secret), Expires: f.TTL,
	})
	if err != nil {
		// A link nobody received must not stay redeemable.
		_ = f.Tickets.Drop(context.WithoutCancel(ctx), secret)
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	f.record(f.Now().Sub(start))
	return nil
}

// Redeem consumes the link's secret and returns the person it logs in, and
// where to send them. The first login of an allowed address creates its user.
func (f *MagicLink) Redeem(ctx context.Context, secret string) (directory.User, string, error) {
	raw, err := f.Tickets.Redeem(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) {
		return directory.User{}, "", ErrLinkInvalid
	}
	if err != nil {
		return directory.User{}, "", fmt.Errorf("flow: reading link: %w", err)
	}
	var p linkPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return directory.User{}, "", fmt.Errorf("flow: corrupt link payload: %w", err)
	}
	// The allowlist may have shrunk since the link was sent.
	if !f.Allowlist.Allows(p.Email) {
		return directory.User{}, "", ErrLinkInvalid
	}
	u, err := f.Users.EnsureByEmail(ctx, p.Email)
	if err != nil {
		return directory.User{}, "", err
	}
	if u.Status == directory.StatusDisabled {
		return directory.User{}, "", ErrLinkInvalid
	}
	return u, SafeReturn(p.Return), nil
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
