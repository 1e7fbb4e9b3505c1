package flow

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// outbox is a Mailer whose queue delivers at once, before Enqueue returns,
// so that a test sees the letter (or its giving up) straight away. It
// records every letter tried, and those delivered.
type outbox struct {
	letters []mail.Letter
	tried   []mail.Letter
	// fail makes every delivery fail: Send returns it, and a queued letter
	// is given up, as the queue does after its last attempt.
	fail error
	// refuse makes the queue refuse letters: Room and Enqueue return it.
	refuse error
	// checks counts the calls to Room and Enqueue.
	checks int
}

func (o *outbox) Send(_ context.Context, l mail.Letter) error {
	o.tried = append(o.tried, l)
	if o.fail != nil {
		return o.fail
	}
	o.letters = append(o.letters, l)
	return nil
}

func (o *outbox) Enqueue(l mail.Letter, undelivered func(context.Context) error) error {
	o.checks++
	if o.refuse != nil {
		return o.refuse
	}
	if o.Send(context.Background(), l) != nil {
		return undelivered(context.Background())
	}
	return nil
}

func (o *outbox) Room() error {
	o.checks++
	return o.refuse
}

// countingStore records which Store calls a request makes, in order.
type countingStore struct {
	ticket.Store
	calls []string
}

func (c *countingStore) PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error {
	c.calls = append(c.calls, "PutOwned")
	return c.Store.PutOwned(ctx, owner, key, value, ttl)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.calls = append(c.calls, "Delete")
	return c.Store.Delete(ctx, key)
}

func (c *countingStore) Incr(ctx context.Context, key string, window time.Duration) (ticket.Count, error) {
	c.calls = append(c.calls, "Incr")
	return c.Store.Incr(ctx, key, window)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.calls = append(c.calls, "Get")
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.calls = append(c.calls, "Put")
	return c.Store.Put(ctx, key, value, ttl)
}

func (c *countingStore) Take(ctx context.Context, key string) ([]byte, error) {
	c.calls = append(c.calls, "Take")
	return c.Store.Take(ctx, key)
}

// redeemLink confirms a link as the page does, returning the login it
// handed on.
func redeemLink(ctx context.Context, f *MagicLink, secret string) (Login, error) {
	var login Login
	err := f.Redeem(ctx, secret, func(l Login) error {
		login = l
		return nil
	})
	return login, err
}

// completeStep sets the password as the page does, returning the login it
// handed on.
func completeStep(ctx context.Context, p *PasswordStep, secret, pw, confirm string) (Login, error) {
	var login Login
	err := p.Complete(ctx, secret, pw, confirm, func(l Login) error {
		login = l
		return nil
	})
	return login, err
}

// browserAt is who asks in tests of the browser form.
var browserAt = Requester{IP: "192.0.2.1", Agent: "Firefox"}

type fixture struct {
	flow   *MagicLink
	out    *outbox
	now    time.Time
	secret func(l mail.Letter) string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}
	store, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.out = &outbox{}
	f.flow = &MagicLink{
		Store:     store,
		Users:     directory.New(memstorage.New(), "mg", func() time.Time { return f.now }),
		Mailer:    f.out,
		Allowlist: NewAllowlist([]string{"alice@example.com"}, []string{"corp.example"}),
		LinkURL:   func(s, _ string) string { return "https://app.example.com/.mailgate/link?t=" + url.QueryEscape(s) },
		TTL:       15 * time.Minute,
		SiteName:  "Example",
		Now:       func() time.Time { return f.now },
	}
	f.secret = func(l mail.Letter) string {
		u, err := url.Parse(l.Link)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("t")
	}
	return f
}

func TestAllowlist(t *testing.T) {
	a := NewAllowlist([]string{"Alice@Example.com"}, []string{"@corp.example"})
	for email, want := range map[string]bool{
		"alice@example.com":     true,
		"bob@example.com":       false,
		"carol@corp.example":    true,
		"dave@sub.corp.example": false,
		"corp.example":          false,
		"eve@corp.example.evil": false,
	} {
		if got := a.Allows(email); got != want {
			t.Errorf("Allows(%q) = %v, want %v", email, got, want)
		}
	}
}

func TestRequestAndRedeem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.flow.Request(ctx, browserAt, " Alice@Example.com ", "/docs", "en-GB"); err != nil {
		t.Fatal(err)
	}
	if len(f.out.letters) != 1 {
		t.Fatalf("%d letters sent", len(f.out.letters))
	}
	l := f.out.letters[0]
	if l.To != "alice@example.com" || !strings.HasPrefix(l.Link, "https://app.example.com/.mailgate/link?t=") || l.Expires != 15*time.Minute {
		t.Fatalf("letter = %+v", l)
	}
	login, err := redeemLink(ctx, f.flow, f.secret(l))
	if err != nil || login.User.Email != "alice@example.com" || login.Return != "/docs" || login.Client != nil {
		t.Fatalf("redeem = %+v, %v", login, err)
	}
	if _, err := redeemLink(ctx, f.flow, f.secret(l)); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("second redeem err = %v", err)
	}
}

// TestDisallowedGetsNoMailButTheSameWork: the form's answer waits for no
// mail server, so what could still tell an allowed address from another
// is the work on the request path. Both make the same number of store
// calls (a write where the allowed one stores its link) and ask the queue
// the same; an address over its limit too.
func TestDisallowedGetsNoMailButTheSameWork(t *testing.T) {
	f := newFixture(t)
	store := &countingStore{Store: f.flow.Store}
	f.flow.Store = store
	f.flow.Limits.PerIP = limit.Rule{Max: 100, Window: time.Minute}
	f.flow.Limits.PerAddress = limit.Rule{Max: 1, Window: time.Minute}
	ctx := context.Background()
	work := func(email string) ([]string, int) {
		store.calls, f.out.checks = nil, 0
		if err := f.flow.Request(ctx, browserAt, email, "/", ""); err != nil {
			t.Fatalf("%s: %v (an error here tells who has access)", email, err)
		}
		return store.calls, f.out.checks
	}
	allowed, allowedChecks := work("alice@example.com")
	for _, email := range []string{"mallory@example.com", "alice@example.com" /* now over its limit */} {
		calls, checks := work(email)
		if len(calls) != len(allowed) || calls[len(calls)-1] == "Incr" || checks == 0 {
			t.Errorf("%s: store calls %v and %d queue checks; a mailed address made %v and %d",
				email, calls, checks, allowed, allowedChecks)
		}
	}
	if len(f.out.letters) != 1 {
		t.Fatalf("%d letters, want 1: the refused and the limited request were mailed", len(f.out.letters))
	}
}

func TestInvalidAddress(t *testing.T) {
	f := newFixture(t)
	if err := f.flow.Request(context.Background(), browserAt, "not an address", "/", ""); !errors.Is(err, directory.ErrInvalidEmail) {
		t.Fatalf("err = %v", err)
	}
}

// TestUndeliveredLinkIsDropped: the form does not wait for the mail, so a
// delivery the queue gives up on cannot fail the request; the link it
// carried stops working then, and the earlier link it superseded stays
// dead.
func TestUndeliveredLinkIsDropped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	sent := f.out.letters[0]
	f.out.fail = errors.New("550 mailbox unavailable")
	if err := f.flow.Request(ctx, browserAt, "alice@example.com", "/", ""); err != nil {
		t.Fatalf("err = %v; the form's answer must not depend on the delivery", err)
	}
	lost := f.out.tried[len(f.out.tried)-1]
	for name, l := range map[string]mail.Letter{"the undelivered link": lost, "the earlier link": sent} {
		if _, err := redeemLink(ctx, f.flow, f.secret(l)); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("%s still works after the delivery was given up: %v", name, err)
		}
	}
}

// TestFullQueueRefusesEveryAddress: a queue that takes no letter makes the
// form fail with ErrDelivery for every address, mailed or not, so that the
// refusal tells nobody who has access; no link is left behind.
func TestFullQueueRefusesEveryAddress(t *testing.T) {
	f := newFixture(t)
	store := &countingStore{Store: f.flow.Store}
	f.flow.Store = store
	f.out.refuse = mail.ErrQueueFull
	ctx := context.Background()
	for _, email := range []string{"alice@example.com", "mallory@example.com"} {
		store.calls = nil
		err := f.flow.Request(ctx, browserAt, email, "/", "")
		if !errors.Is(err, ErrDelivery) || !errors.Is(err, mail.ErrQueueFull) {
			t.Errorf("%s: err = %v, want ErrDelivery wrapping mail.ErrQueueFull", email, err)
		}
		if len(store.calls) != 0 {
			t.Errorf("%s: store calls %v for a request the queue could not take", email, store.calls)
		}
	}
	if len(f.out.tried) != 0 {
		t.Fatalf("%d letters tried through a full queue", len(f.out.tried))
	}
}

// TestAppWaitsForTheHandover: the API promises the mail was handed over,
// so RequestForClient sends at once and reports a refusal, with the link
// dropped.
func TestAppWaitsForTheHandover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.flow.Users.EnsureByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f.out.fail = errors.New("550 mailbox unavailable")
	f.out.refuse = mail.ErrQueueFull // not asked: the API does not queue
	err = f.flow.RequestForClient(ctx, u, "", ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb"})
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("err = %v, want ErrDelivery carrying the SMTP error", err)
	}
	if len(f.out.tried) != 1 || f.out.checks != 0 {
		t.Fatalf("%d letters tried, %d queue calls; want 1 sent at once, none queued", len(f.out.tried), f.out.checks)
	}
	if _, err := redeemLink(ctx, f.flow, f.secret(f.out.tried[0])); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("the link of a mail the server refused still works: %v", err)
	}
}

func TestLinkExpires(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	f.now = f.now.Add(15 * time.Minute)
	if _, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[0])); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("expired link: err = %v", err)
	}
}

func TestNewLinkSupersedesOld(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	if _, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[0])); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("superseded link: err = %v", err)
	}
	if _, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[1])); err != nil {
		t.Fatalf("newest link: %v", err)
	}
}

func TestAllowlistShrinkInvalidatesPendingLink(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_ = f.flow.Request(ctx, browserAt, "carol@corp.example", "/", "")
	f.flow.Allowlist = NewAllowlist([]string{"alice@example.com"}, nil)
	if _, err := redeemLink(ctx, f.flow, f.secret(f.out.letters[0])); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestClientLoginSkipsAllowlistAndCarriesTheClient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	u, err := users.EnsureByEmail(ctx, "dave@elsewhere.example")
	if err != nil {
		t.Fatal(err)
	}
	c := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb", State: "s 1&2"}
	if err := f.flow.RequestForClient(ctx, u, "nl-BE", c); err != nil {
		t.Fatal(err)
	}
	l := f.out.letters[len(f.out.letters)-1]
	if l.To != "dave@elsewhere.example" || l.Locale != "nl-BE" {
		t.Fatalf("letter = %+v", l)
	}
	login, err := redeemLink(ctx, f.flow, f.secret(l))
	if err != nil || login.User.ID != u.ID || login.Client == nil || *login.Client != c || login.Locale != "nl-BE" {
		t.Fatalf("redeem = %+v, %v", login, err)
	}
}

func TestCodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	codes := AuthCodes{Store: f.flow.Store}
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	// RFC 7636 appendix B: the S256 challenge of that verifier.
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	c := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb", CodeChallenge: challenge}

	code, err := codes.Issue(ctx, c, "u-1", f.now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := codes.Exchange(ctx, code, "shop", "https://shop.example.com/cb", verifier)
	if err != nil || g.UserID != "u-1" || !g.AuthTime.Equal(f.now) {
		t.Fatalf("exchange = %+v, %v", g, err)
	}
	if _, err := codes.Exchange(ctx, code, "shop", "https://shop.example.com/cb", verifier); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("second exchange: %v", err)
	}

	// Another client cannot burn a code it was never given.
	code, _ = codes.Issue(ctx, c, "u-1", f.now)
	if _, err := codes.Exchange(ctx, code, "crm", c.RedirectURI, verifier); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("exchange by another client: err = %v, want ErrInvalidGrant", err)
	}
	if g, err := codes.Exchange(ctx, code, "shop", c.RedirectURI, verifier); err != nil || g.UserID != "u-1" {
		t.Fatalf("the right client's exchange after another client's attempt = %+v, %v; want the grant", g, err)
	}

	bad := map[string]func(code string) error{
		"another redirect_uri": func(code string) error {
			_, err := codes.Exchange(ctx, code, "shop", c.RedirectURI+"/", verifier)
			return err
		},
		"wrong verifier": func(code string) error {
			_, err := codes.Exchange(ctx, code, "shop", c.RedirectURI, verifier+"x")
			return err
		},
		"no verifier": func(code string) error {
			_, err := codes.Exchange(ctx, code, "shop", c.RedirectURI, "")
			return err
		},
	}
	for name, try := range bad {
		code, _ := codes.Issue(ctx, c, "u-1", f.now)
		if err := try(code); !errors.Is(err, ErrInvalidGrant) {
			t.Errorf("%s: err = %v, want ErrInvalidGrant", name, err)
		}
		// A failed attempt uses the code up.
		if _, err := codes.Exchange(ctx, code, "shop", c.RedirectURI, verifier); !errors.Is(err, ErrInvalidGrant) {
			t.Errorf("%s: the code still works after a failed exchange", name)
		}
	}

	code, _ = codes.Issue(ctx, c, "u-1", f.now)
	f.now = f.now.Add(CodeTTL)
	if _, err := codes.Exchange(ctx, code, "shop", c.RedirectURI, verifier); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("a code %s old: err = %v, want ErrInvalidGrant", CodeTTL, err)
	}
}

// TestStoredFieldsAreBounded: what a visitor or an app stores with a link is
// refused, not truncated, over its bound, before any mail or store write.
func TestStoredFieldsAreBounded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := "/" + strings.Repeat("a", MaxReturn)
	var tooLong *TooLongError
	if err := f.flow.Request(ctx, browserAt, "alice@example.com", long, ""); !errors.As(err, &tooLong) || tooLong.Field != "return" {
		t.Fatalf("return of %d bytes: err = %v, want a TooLongError for return", len(long), err)
	}
	if err := f.flow.Request(ctx, browserAt, "alice@example.com", long[:MaxReturn], ""); err != nil {
		t.Fatalf("return of exactly %d bytes: %v", MaxReturn, err)
	}
	u, err := f.flow.Users.EnsureByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	c := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb"}
	for field, set := range map[string]func(*ClientLogin){
		"state": func(c *ClientLogin) { c.State = strings.Repeat("s", MaxState+1) },
		"scope": func(c *ClientLogin) { c.Scope = strings.Repeat("s", MaxScope+1) },
	} {
		cl := c
		set(&cl)
		if err := f.flow.RequestForClient(ctx, u, "", cl); !errors.As(err, &tooLong) || tooLong.Field != field {
			t.Errorf("%s over its bound: err = %v, want a TooLongError for %s", field, err, field)
		}
	}
	if len(f.out.letters) != 1 {
		t.Fatalf("%d mails sent, want 1 (only the request within bounds)", len(f.out.letters))
	}
}

// TestAccountNamesTheLinkWithoutUsingIt: the confirmation page learns whose
// link it is, and the link still works afterwards.
func TestAccountNamesTheLinkWithoutUsingIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.flow.Request(ctx, browserAt, "alice@example.com", "/", ""); err != nil {
		t.Fatal(err)
	}
	secret := f.secret(f.out.letters[0])
	for i := 0; i < 2; i++ {
		if got, err := f.flow.Account(ctx, secret); err != nil || got != "alice@example.com" {
			t.Fatalf("Account #%d = %q, %v", i+1, got, err)
		}
	}
	if _, err := redeemLink(ctx, f.flow, secret); err != nil {
		t.Fatalf("the link was used up by Account: %v", err)
	}
	if _, err := f.flow.Account(ctx, secret); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("Account of a used link: err = %v, want ErrLinkInvalid", err)
	}
}

// TestPasswordStep: a password the policy refuses leaves the step usable;
// a good one uses it up, stores the password and hands back the login.
func TestPasswordStep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	u, err := users.EnsureByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	step := &PasswordStep{Store: f.flow.Store, Users: users, Now: func() time.Time { return f.now }}
	c := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb", ResetPassword: true}
	secret, err := step.Begin(ctx, Login{User: u, Locale: "nl-NL", Client: &c})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := completeStep(ctx, step, secret, "short", "short"); !errors.Is(err, ErrPasswordTooShort) {
		t.Fatalf("short password: err = %v", err)
	}
	if _, err := completeStep(ctx, step, secret, "long enough phrase 1", "long enough phrase 2"); !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("mismatch: err = %v", err)
	}
	var weak *PasswordRulesError
	if _, err := completeStep(ctx, step, secret, "123456789987654321", "123456789987654321"); !errors.As(err, &weak) || weak.Rules[0] != password.RuleCommon {
		t.Fatalf("a common password: err = %v", err)
	}
	login, err := completeStep(ctx, step, secret, "long enough phrase 1", "long enough phrase 1")
	if err != nil || login.User.ID != u.ID || login.Locale != "nl-NL" || login.Client == nil || *login.Client != c {
		t.Fatalf("the refused attempts used the step up, or the login came back wrong: %+v, %v", login, err)
	}
	if stored, _ := users.ByID(ctx, u.ID); stored.PasswordHash == "" {
		t.Fatal("no password stored")
	}
	if _, err := completeStep(ctx, step, secret, "long enough phrase 1", "long enough phrase 1"); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("second use of the step: err = %v, want ErrLinkInvalid", err)
	}
}

func TestAllowlistWildcardMeansEverySubdomain(t *testing.T) {
	a := NewAllowlist(nil, []string{"*.Example.com"})
	for email, want := range map[string]bool{
		"x@mail.example.com":  true,
		"x@a.b.example.com":   true,
		"x@example.com":       false, // the wildcard does not include the domain itself
		"x@badexample.com":    false,
		"x@mail.example.com.": false,
		"x@.example.com":      false,
	} {
		if got := a.Allows(email); got != want {
			t.Errorf("Allows(%q) = %v, want %v", email, got, want)
		}
	}
}

// TestRefusedRequestsAreReportedByDomain: the operator learns that a request
// matched no rule, and from which domain, never the address.
func TestRefusedRequestsAreReportedByDomain(t *testing.T) {
	f := newFixture(t)
	obs := &recorder{}
	f.flow.Observer = obs
	ctx := context.Background()
	for _, email := range []string{"mallory@Example.org", "alice@example.com", "carol@corp.example"} {
		if err := f.flow.Request(ctx, browserAt, email, "/", ""); err != nil {
			t.Fatal(err)
		}
	}
	if refused := obs.refused; len(refused) != 1 || refused[0] != "example.org" {
		t.Fatalf("refused domains %q, want [example.org]", refused)
	}
}

// discard is a Mailer whose queue takes every letter and sends none, for
// timing the request path alone.
type discard struct{}

func (discard) Send(context.Context, mail.Letter) error                { return nil }
func (discard) Enqueue(mail.Letter, func(context.Context) error) error { return nil }
func (discard) Room() error                                            { return nil }

// BenchmarkRequestPath times the form's request path in the flow, with the
// memory store, for an address that gets a mail and one that does not
// (docs/performance.md).
func BenchmarkRequestPath(b *testing.B) {
	for _, c := range []struct{ name, email string }{{"allowed", "alice@example.com"}, {"not_allowed", "mallory@example.com"}} {
		email := c.email
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b)
			f.flow.Mailer = discard{}
			ctx := context.Background()
			for b.Loop() {
				if err := f.flow.Request(ctx, browserAt, email, "/", ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// recorder is an Observer that keeps what the flows tell it.
type recorder struct {
	Unobserved
	refused, limited []string
	started, gaveUp  []Method
	done             []Method
}

func (r *recorder) LoginDone(_ string, m Method) { r.done = append(r.done, m) }

func (r *recorder) LoginStarted(m Method) { r.started = append(r.started, m) }
func (r *recorder) MailGivenUp(m Method)  { r.gaveUp = append(r.gaveUp, m) }

func (r *recorder) Refused(_ Method, domain string) { r.refused = append(r.refused, domain) }
func (r *recorder) Limited(rule string)             { r.limited = append(r.limited, rule) }

// The observer hears of each login mail handed on and of each one given
// up, and of none for an address that gets no mail.
func TestObserverHearsOfMailsStartedAndGivenUp(t *testing.T) {
	f := newFixture(t)
	obs := &recorder{}
	f.flow.Observer = obs
	ctx := context.Background()
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	_ = f.flow.Request(ctx, browserAt, "mallory@example.org", "/", "")
	f.out.fail = errors.New("550 mailbox unavailable")
	_ = f.flow.Request(ctx, browserAt, "alice@example.com", "/", "")
	if len(obs.started) != 2 || len(obs.gaveUp) != 1 || obs.gaveUp[0] != MethodLink {
		t.Fatalf("started %v, gave up %v; want 2 started, 1 link given up", obs.started, obs.gaveUp)
	}
}

// An app's mail is in the locale the app asks for, or else in the user's
// own.
func TestClientLoginMailsInTheUsersLocale(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	users := f.flow.Users.(*directory.Directory)
	u, err := users.Create(ctx, directory.NewUser{Email: "dora@example.com", Locale: "nl-NL"})
	if err != nil {
		t.Fatal(err)
	}
	c := ClientLogin{ClientID: "shop", RedirectURI: "https://shop.example.com/cb"}
	for asked, want := range map[string]string{"": "nl-NL", "nl-BE": "nl-BE"} {
		if err := f.flow.RequestForClient(ctx, u, asked, c); err != nil {
			t.Fatal(err)
		}
		if l := f.out.letters[len(f.out.letters)-1]; l.Locale != want {
			t.Errorf("asked %q: letter in %q, want %q", asked, l.Locale, want)
		}
	}
}
