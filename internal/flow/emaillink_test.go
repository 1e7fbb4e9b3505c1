package flow

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// linkUsers is an in-memory EmailLinkUsers.
type linkUsers struct {
	mu    sync.Mutex
	users map[string]directory.User
	// failSignUp makes SignUp fail, as a full storage would.
	failSignUp error
}

func (u *linkUsers) ByID(_ context.Context, id string) (directory.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr, ok := u.users[id]
	if !ok {
		return directory.User{}, directory.ErrNotFound
	}
	return usr, nil
}

func (u *linkUsers) SignUp(_ context.Context, id string) (directory.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failSignUp != nil {
		return directory.User{}, u.failSignUp
	}
	usr := u.users[id]
	if usr.Status == directory.StatusInvited {
		usr.Status, usr.SignedUp = directory.StatusActive, time.Now()
	}
	u.users[id] = usr
	return usr, nil
}

func (u *linkUsers) SetPassword(_ context.Context, id, hash string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr := u.users[id]
	usr.PasswordHash = hash
	u.users[id] = usr
	return nil
}

// letters records what was sent; fail makes the mail server refuse.
type letters struct {
	mu   sync.Mutex
	sent []mail.Letter
	fail error
}

func (l *letters) Send(_ context.Context, letter mail.Letter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.sent = append(l.sent, letter)
	return nil
}

// secret is the ticket of the last link mailed: the part after "x=" of the
// default prefix, or after the custom prefix.
func (l *letters) secret(t *testing.T, prefix string) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sent) == 0 {
		t.Fatal("no letter was sent")
	}
	link := l.sent[len(l.sent)-1].Link
	s, ok := strings.CutPrefix(link, prefix)
	if !ok {
		t.Fatalf("link %q does not start with %q", link, prefix)
	}
	return s
}

type linkFixture struct {
	flow    *EmailLinks
	users   *linkUsers
	mail    *letters
	ended   []string
	invited directory.User
	active  directory.User
}

const (
	invitePrefix = "https://app.example.com/.mailgate/account/invite/?x="
	resetPrefix  = "https://app.example.com/.mailgate/account/pwreset/?x="
)

func newLinkFixture(t *testing.T, store ticket.Store) *linkFixture {
	f := &linkFixture{
		users: &linkUsers{users: map[string]directory.User{}},
		mail:  &letters{},
		invited: directory.User{ID: "u-invited", Email: "ivy@example.com", Status: directory.StatusInvited,
			Locale: "nl-BE"},
		active: directory.User{ID: "u-active", Email: "alice@example.com", Status: directory.StatusActive,
			SignedUp: time.Now()},
	}
	f.users.users[f.invited.ID], f.users.users[f.active.ID] = f.invited, f.active
	f.flow = &EmailLinks{
		Store: store, Users: f.users, Mailer: f.mail,
		PageURL: func(t EmailLinkType) string {
			if t == Invitation {
				return invitePrefix
			}
			return resetPrefix
		},
		RevokeURL:     func(s string) string { return "https://app.example.com/.mailgate/account/revoke/?x=" + s },
		InvitationTTL: 7 * 24 * time.Hour, ResetTTL: time.Hour, SiteName: "Example",
		EndSessions: func(_ context.Context, id string, _ time.Time) error {
			f.ended = append(f.ended, id)
			return nil
		},
		Now: time.Now,
	}
	return f
}

func memoryStore(t *testing.T) ticket.Store {
	m, err := ticket.NewMemory(ticket.MinMemory, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestEmailLinkRules: the seed's rules on who gets which link, one live
// link per user, and a new one after use or withdrawal.
func TestEmailLinkRules(t *testing.T) {
	ctx := context.Background()
	f := newLinkFixture(t, memoryStore(t))
	for _, c := range []struct {
		id   string
		typ  EmailLinkType
		want error
	}{
		{"nobody", Invitation, directory.ErrNotFound},
		{"u-active", Invitation, ErrSignedUp},
		{"u-invited", PasswordReset, ErrNotSignedUp},
	} {
		if err := f.flow.Create(ctx, EmailLinkRequest{UserID: c.id, Type: c.typ}); !errors.Is(err, c.want) {
			t.Errorf("%s %s: %v, want %v", c.typ, c.id, err, c.want)
		}
	}
	if len(f.mail.sent) != 0 {
		t.Fatalf("refused links were mailed: %+v", f.mail.sent)
	}

	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation, Sender: "The Shop"}); err != nil {
		t.Fatal(err)
	}
	l := f.mail.sent[0]
	if l.To != "ivy@example.com" || l.Locale != "nl-BE" || l.Template != "invitation" || l.App != "The Shop" ||
		l.Expires != 7*24*time.Hour || !strings.HasPrefix(l.RevokeLink, "https://app.example.com/") {
		t.Errorf("letter %+v", l)
	}
	first := f.mail.secret(t, invitePrefix)
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation}); !errors.Is(err, ErrEmailLinkExists) {
		t.Fatalf("a second link while one is live: %v", err)
	}
	st, err := f.flow.Status(ctx, "u-invited")
	if err != nil || st.Type != Invitation || time.Until(st.Expires) < 6*24*time.Hour {
		t.Fatalf("Status = %+v, %v", st, err)
	}

	// Withdrawn: the old link no longer works, and a new one may be made.
	if err := f.flow.Withdraw(ctx, "u-invited"); err != nil {
		t.Fatal(err)
	}
	if err := f.flow.Withdraw(ctx, "u-invited"); !errors.Is(err, ErrNoEmailLink) {
		t.Fatalf("withdrawing twice: %v", err)
	}
	if _, err := f.flow.Peek(ctx, first); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("a withdrawn link: %v", err)
	}
	if _, err := f.flow.Verify(ctx, first); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("verifying a withdrawn link: %v", err)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation, Locale: "en-GB",
		URLPrefix: "https://shop.example.com/?invitation="}); err != nil {
		t.Fatal(err)
	}
	if f.mail.sent[1].Locale != "en-GB" {
		t.Errorf("the request's locale was not the letter's: %q", f.mail.sent[1].Locale)
	}
	second := f.mail.secret(t, "https://shop.example.com/?invitation=")

	// Used: the user is active, and may be sent a reset, not an invitation.
	v, err := f.flow.Verify(ctx, second)
	if err != nil || v.UserID != "u-invited" || v.Type != Invitation {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	if _, err := f.flow.Verify(ctx, second); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("verified twice: %v", err)
	}
	if u, _ := f.users.ByID(ctx, "u-invited"); u.Status != directory.StatusActive {
		t.Fatalf("after the invitation's verify the user is %s", u.Status)
	}
	if _, err := f.flow.Status(ctx, "u-invited"); !errors.Is(err, ErrNoEmailLink) {
		t.Fatalf("Status after use: %v", err)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: PasswordReset}); err != nil {
		t.Fatalf("a reset after signup: %v", err)
	}
	if f.mail.sent[2].Expires != time.Hour || f.mail.sent[2].Template != "reset" {
		t.Errorf("reset letter %+v", f.mail.sent[2])
	}

	// A disabled user gets no link, and a live link of theirs stops working.
	reset := f.mail.secret(t, resetPrefix)
	u := f.users.users["u-invited"]
	u.Status = directory.StatusDisabled
	f.users.users["u-invited"] = u
	if _, err := f.flow.Peek(ctx, reset); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("a disabled user's link: %v", err)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); err != nil {
		t.Fatal(err)
	}
	u = f.users.users["u-active"]
	u.Status = directory.StatusDisabled
	f.users.users["u-active"] = u
	if err := f.flow.Withdraw(ctx, "u-active"); err != nil {
		t.Fatal(err)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("a link for a disabled user: %v", err)
	}
}

// TestEmailLinkNotSent: a mail the server refused leaves no link behind,
// neither one that works nor one that blocks the next.
func TestEmailLinkNotSent(t *testing.T) {
	ctx := context.Background()
	f := newLinkFixture(t, memoryStore(t))
	f.mail.fail = errors.New("550 no")
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation}); !errors.Is(err, ErrDelivery) {
		t.Fatalf("Create with the mail refused: %v", err)
	}
	if _, err := f.flow.Status(ctx, "u-invited"); !errors.Is(err, ErrNoEmailLink) {
		t.Fatalf("a link that was not sent is live: %v", err)
	}
	f.mail.fail = nil
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation}); err != nil {
		t.Fatal(err)
	}
}

// TestEmailLinkAcceptAndReset: the pages' uses of a link, a failure putting
// the link back, the wrong type, the password policy, the other sessions
// ended, and the revoke link.
func TestEmailLinkAcceptAndReset(t *testing.T) {
	ctx := context.Background()
	f := newLinkFixture(t, memoryStore(t))
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation, Sender: "The Shop"}); err != nil {
		t.Fatal(err)
	}
	invite := f.mail.secret(t, invitePrefix)
	p, err := f.flow.Peek(ctx, invite)
	if err != nil || p.Sender != "The Shop" || p.User.Email != "ivy@example.com" || p.Locale != "nl-BE" {
		t.Fatalf("Peek = %+v, %v", p, err)
	}
	if err := f.flow.Reset(ctx, invite, "long enough password", "long enough password", nil); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("an invitation used as a reset: %v", err)
	}
	if err := f.flow.Withdraw(ctx, "u-invited"); !errors.Is(err, ErrNoEmailLink) {
		t.Fatalf("the misused invitation is still live: %v", err)
	}

	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation}); err != nil {
		t.Fatal(err)
	}
	invite = f.mail.secret(t, invitePrefix)
	f.users.failSignUp = errors.New("storage is read-only")
	if err := f.flow.Accept(ctx, invite, func(Login) error { return nil }); err == nil || errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("Accept with the storage failing: %v", err)
	}
	f.users.failSignUp = nil
	var login Login
	if err := f.flow.Accept(ctx, invite, func(l Login) error { login = l; return nil }); err != nil {
		t.Fatalf("Accept after the storage recovered: %v", err)
	}
	if login.User.Status != directory.StatusActive || login.Method != MethodInvitation || login.Return != "/" {
		t.Fatalf("login %+v", login)
	}

	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); err != nil {
		t.Fatal(err)
	}
	reset := f.mail.secret(t, resetPrefix)
	if err := f.flow.Reset(ctx, reset, "short", "short", nil); !errors.Is(err, ErrPasswordTooShort) {
		t.Fatalf("a short password: %v", err)
	}
	if err := f.flow.Reset(ctx, reset, "long enough password", "long enough passwore", nil); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("a mistyped password: %v", err)
	}
	// The account's own address is refused once the link shows whose it
	// is, and the link stays usable.
	var weak *PasswordRulesError
	if err := f.flow.Reset(ctx, reset, "Alice@Example.com!!", "Alice@Example.com!!", nil); !errors.As(err, &weak) || weak.Rules[0] != password.RuleContext {
		t.Fatalf("the account's own address as the password: %v", err)
	}
	if err := f.flow.Reset(ctx, reset, "long enough password", "long enough password", func(l Login) error { login = l; return nil }); err != nil {
		t.Fatal(err)
	}
	hash, err := password.Parse(f.users.users["u-active"].PasswordHash)
	if err != nil || !hash.Matches("long enough password") {
		t.Fatalf("the new password was not stored: %v", err)
	}
	if len(f.ended) != 1 || f.ended[0] != "u-active" || login.Method != MethodPasswordReset {
		t.Fatalf("sessions ended for %v; login %+v", f.ended, login)
	}

	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); err != nil {
		t.Fatal(err)
	}
	reset = f.mail.secret(t, resetPrefix)
	obs := &revocations{}
	f.flow.Observer = obs
	if r, err := f.flow.Revoke(ctx, reset); err != nil || r.UserID != "u-active" {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	if _, err := f.flow.Revoke(ctx, reset); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("revoked twice: %v", err)
	}
	if obs.users != "u-active" {
		t.Fatalf("the observer heard of revocations by %q", obs.users)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); err != nil {
		t.Fatalf("a new link after a revoked one: %v", err)
	}
}

type revocations struct {
	Unobserved
	users string
}

func (r *revocations) EmailLinkRevoked(id string) { r.users += id }

// TestEmailLinkConcurrent: of fifty verifies of one ticket at once exactly
// one succeeds, and of concurrent creates for one user exactly one mails a
// link, on either store.
func TestEmailLinkConcurrent(t *testing.T) {
	ctx := context.Background()
	storetest.Each(t, time.Now, func(t *testing.T, s ticket.Store) {
		f := newLinkFixture(t, s)
		var created atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation})
				switch {
				case err == nil:
					created.Add(1)
				case !errors.Is(err, ErrEmailLinkExists):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if created.Load() != 1 || len(f.mail.sent) != 1 {
			t.Fatalf("%d creates succeeded, %d mails sent", created.Load(), len(f.mail.sent))
		}
		secret := f.mail.secret(t, invitePrefix)
		var ok atomic.Int32
		for range 50 {
			wg.Go(func() {
				_, err := f.flow.Verify(ctx, secret)
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, ErrLinkInvalid):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d of 50 verifies succeeded", ok.Load())
		}
	})
}

// TestEmailLinkOnlyForAdmittedAddresses: a link to mailgate's own pages
// signs the person in to the site, so it is refused for an address the
// site's allow rules do not admit; a link to the app's own page is the
// app's business.
func TestEmailLinkOnlyForAdmittedAddresses(t *testing.T) {
	ctx := context.Background()
	f := newLinkFixture(t, memoryStore(t))
	f.flow.Admits = NewAllowlist([]string{"alice@example.com"}, nil).Allows
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation}); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("mailgate's page for an address the site does not admit: %v", err)
	}
	if len(f.mail.sent) != 0 {
		t.Fatalf("mailed: %+v", f.mail.sent)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-invited", Type: Invitation, URLPrefix: "https://hr.example.com/?invitation="}); err != nil {
		t.Fatalf("the app's own page: %v", err)
	}
	if err := f.flow.Create(ctx, EmailLinkRequest{UserID: "u-active", Type: PasswordReset}); err != nil {
		t.Fatalf("an admitted address: %v", err)
	}
}
