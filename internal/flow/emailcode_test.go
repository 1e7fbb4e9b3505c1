package flow

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/storetest"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

const project = "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77"

type codeFixture struct {
	flow  *EmailCode
	out   *outbox
	store *countingStore
	now   time.Time
}

func newCodeFixture(t testing.TB) *codeFixture {
	t.Helper()
	f := &codeFixture{now: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}
	mem, err := ticket.NewMemory(ticket.MinMemory, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return f.on(mem)
}

// on sets the fixture's flow up on store.
func (f *codeFixture) on(store ticket.Store) *codeFixture {
	f.out = &outbox{}
	f.store = &countingStore{Store: store}
	f.flow = &EmailCode{
		Store:     f.store,
		Users:     directory.New(memstorage.New(), "mg", func() time.Time { return f.now }),
		Mailer:    f.out,
		Allowlist: NewAllowlist([]string{"alice@example.com"}, []string{"corp.example"}),
		LinkURL: func(s, _, _ string) string {
			return "https://app.example.com/.mailgate/code-link?t=" + url.QueryEscape(s)
		},
		SiteName: "Example",
		Now:      func() time.Time { return f.now },
		Limits: CodeLimits{
			PerIP:           limit.Rule{Max: 100, Window: 15 * time.Minute},
			PerAddress:      limit.Rule{Max: 100, Window: 15 * time.Minute},
			WrongPerAddress: limit.Rule{Max: 10, Window: 24 * time.Hour},
		},
	}
	return f
}

func (f *codeFixture) start(t *testing.T, email string, sendLink bool) string {
	t.Helper()
	id, err := f.flow.Start(context.Background(), CodeRequest{
		Project: project, App: "The Game", Email: email, LoginURL: "https://game.example.com/cb",
		SendLink: sendLink, LinkURL: "https://game.example.com/status", Payload: `{"level":3}`,
		Locale: "en-GB", Requester: browserAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// lastCode is the code of the last letter mailed.
func (f *codeFixture) lastCode(t *testing.T) string {
	t.Helper()
	if len(f.out.letters) == 0 {
		t.Fatal("no letter was mailed")
	}
	return f.out.letters[len(f.out.letters)-1].Code
}

func (f *codeFixture) complete(id, email, code string) (CodeLogin, error) {
	return f.flow.Complete(context.Background(), project, email, id, code)
}

func TestCodeRoundTrip(t *testing.T) {
	f := newCodeFixture(t)
	id := f.start(t, "Alice@Example.com", false)
	if len(id) < 22 {
		t.Fatalf("operation id %q has fewer than 128 bits", id)
	}
	l := f.out.letters[0]
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(l.Code) || strings.Contains(id, l.Code) {
		t.Fatalf("code %q, operation id %q", l.Code, id)
	}
	if l.Template != "code" || l.To != "alice@example.com" || l.Link != "" || l.Expires != 3*time.Minute || l.App != "The Game" || l.RequestIP != browserAt.IP {
		t.Fatalf("letter %+v", l)
	}
	// A pasted code with spaces works.
	login, err := f.complete(id, "alice@example.com", " "+l.Code[:3]+" "+l.Code[3:])
	if err != nil {
		t.Fatal(err)
	}
	if login.User.Email != "alice@example.com" || login.Payload != `{"level":3}` || login.LoginURL != "https://game.example.com/cb" || login.Project != project {
		t.Fatalf("login %+v", login)
	}
	if _, err := f.complete(id, "alice@example.com", l.Code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("a used code: %v, want ErrCodeExpired", err)
	}
}

// TestCodeExpiresAtThreeMinutes: at 2:59 the code works, at 3:00 it does
// not, and the answer does not say whether it expired or was used.
func TestCodeExpiresAtThreeMinutes(t *testing.T) {
	f := newCodeFixture(t)
	start := f.now
	id := f.start(t, "alice@example.com", false)
	code := f.lastCode(t)
	f.now = start.Add(3 * time.Minute)
	if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("at 3:00: %v, want ErrCodeExpired", err)
	}

	f.now = start
	id = f.start(t, "alice@example.com", false)
	code = f.lastCode(t)
	f.now = start.Add(3*time.Minute - time.Second)
	if _, err := f.complete(id, "alice@example.com", code); err != nil {
		t.Fatalf("at 2:59: %v", err)
	}
}

// wrongOf is a code that is not code.
func wrongOf(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestWrongCodesKillTheOperation: three wrong codes end the operation (the
// right code after them is refused), and the owner's next operation works:
// knowing an address does not lock its owner out.
func TestWrongCodesKillTheOperation(t *testing.T) {
	f := newCodeFixture(t)
	id := f.start(t, "alice@example.com", false)
	code := f.lastCode(t)
	for i := range CodeAttempts {
		var wrong *WrongCodeError
		if _, err := f.complete(id, "alice@example.com", wrongOf(code)); !errors.As(err, &wrong) || !errors.Is(err, ErrCodeWrong) || wrong.Left != CodeAttempts-1-i {
			t.Fatalf("wrong code %d: %v, want ErrCodeWrong with %d tries left", i+1, err, CodeAttempts-1-i)
		}
	}
	if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the right code after three wrong ones: %v, want ErrCodeExpired", err)
	}
	id = f.start(t, "alice@example.com", false)
	if _, err := f.complete(id, "alice@example.com", f.lastCode(t)); err != nil {
		t.Fatalf("the owner's new code after someone's three wrong ones: %v", err)
	}
}

// TestAnAddressOverItsWrongCodesGetsNoCode: past the softer bound across
// operations, the address may try no code and gets none mailed, until the
// window ends; other addresses are not affected.
func TestAnAddressOverItsWrongCodesGetsNoCode(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	var last, lastCode string
	for wrong := 0; wrong < 10; {
		id := f.start(t, "alice@example.com", false)
		last, lastCode = id, f.lastCode(t)
		for i := 0; i < CodeAttempts && wrong < 10; i++ {
			if _, err := f.complete(id, "alice@example.com", wrongOf(f.lastCode(t))); !errors.Is(err, ErrCodeWrong) {
				t.Fatalf("wrong code %d: %v", wrong+1, err)
			}
			wrong++
		}
	}
	// The operation of the tenth wrong code has a try left, but the address
	// has none: not even its right code is compared.
	if _, err := f.complete(last, "alice@example.com", lastCode); !errors.As(err, new(*limit.ExceededError)) {
		t.Fatalf("the right code of the locked address's last operation: %v, want %s", err, RuleWrongCodes)
	}
	id := f.start(t, "bob@corp.example", false)
	mailed := len(f.out.letters)
	var exceeded *limit.ExceededError
	_, err := f.flow.Start(ctx, CodeRequest{Project: project, Email: "alice@example.com", Requester: browserAt})
	if !errors.As(err, &exceeded) || exceeded.Rule != RuleWrongCodes || exceeded.RetryAfter != 24*time.Hour {
		t.Fatalf("a code for the locked address: %v, want %s for 24h", err, RuleWrongCodes)
	}
	if len(f.out.letters) != mailed {
		t.Fatal("a code that could not be used was mailed to the locked address")
	}
	if _, err := f.complete(id, "bob@corp.example", f.lastCode(t)); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// Nor is the address in another project: guesses through one app do
	// not lock its owner out of the others.
	other, err := f.flow.Start(ctx, CodeRequest{Project: "another-project", Email: "alice@example.com", Requester: browserAt})
	if err != nil {
		t.Fatalf("a code for the address in another project: %v", err)
	}
	if _, err := f.flow.Complete(ctx, "another-project", "alice@example.com", other, f.lastCode(t)); err != nil {
		t.Fatalf("the address in another project: %v", err)
	}
	f.now = f.now.Add(24 * time.Hour)
	id = f.start(t, "alice@example.com", false)
	if _, err := f.complete(id, "alice@example.com", f.lastCode(t)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestFiftyGuessesAtOnceGetThreeCompares fires fifty wrong codes at one
// operation at once, on the memory store and on Redis: each try is counted
// before its compare, so at most three are compared, and the right code
// sent after them is refused.
func TestFiftyGuessesAtOnceGetThreeCompares(t *testing.T) {
	storetest.Each(t, time.Now, func(t *testing.T, store ticket.Store) {
		f := &codeFixture{now: time.Now()}
		f.on(store)
		id := f.start(t, "alice@example.com", false)
		code := f.lastCode(t)
		var compared, expired atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				_, err := f.complete(id, "alice@example.com", wrongOf(code))
				switch {
				case errors.Is(err, ErrCodeWrong):
					compared.Add(1)
				case errors.Is(err, ErrCodeExpired):
					expired.Add(1)
				default:
					t.Errorf("a guess: %v", err)
				}
			})
		}
		wg.Wait()
		if compared.Load() > CodeAttempts || compared.Load()+expired.Load() != 50 {
			t.Fatalf("of 50 guesses at once, %d were compared and %d refused; want at most %d compared", compared.Load(), expired.Load(), CodeAttempts)
		}
		if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("the right code after fifty guesses: %v, want ErrCodeExpired", err)
		}

		// Tries past the limit must not spoil one within it: of ten
		// right codes at once (an app that retries), one signs in.
		id = f.start(t, "alice@example.com", false)
		code = f.lastCode(t)
		var wins atomic.Int64
		for range 10 {
			wg.Go(func() {
				if _, err := f.complete(id, "alice@example.com", code); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrCodeExpired) {
					t.Errorf("a right code at once with nine others: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("of ten right codes at once, %d signed in; want 1", wins.Load())
		}
	})
}

// TestThreeWrongCodesEndTheOperationForTheApp: after the third wrong code
// the operation is gone, so the app that polls for the code of a
// confirmed link is told it is over rather than handed a code that can no
// longer be used.
func TestThreeWrongCodesEndTheOperationForTheApp(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	id := f.start(t, "alice@example.com", true)
	u, _ := url.Parse(f.out.letters[0].Link)
	if _, err := f.flow.ConfirmLink(ctx, u.Query().Get("t")); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode(t)
	for range CodeAttempts {
		if _, err := f.complete(id, "alice@example.com", wrongOf(code)); !errors.Is(err, ErrCodeWrong) {
			t.Fatalf("a wrong code: %v", err)
		}
	}
	if got, err := f.flow.Code(ctx, project, "alice@example.com", id); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the app asking for the code after three wrong ones: %q, %v; want ErrCodeExpired", got, err)
	}
}

// interleaved is a store that runs a hook once, just before the next
// Attempt or Delete: another request's step landing between two steps of
// this one, without timing.
type interleaved struct {
	ticket.Store
	beforeAttempt, beforeDelete func()
}

func (s *interleaved) Attempt(ctx context.Context, key string, limit int64) (int64, error) {
	if h := s.beforeAttempt; h != nil {
		s.beforeAttempt = nil
		h()
	}
	return s.Store.Attempt(ctx, key, limit)
}

func (s *interleaved) Delete(ctx context.Context, key string) error {
	if h := s.beforeDelete; h != nil {
		s.beforeDelete = nil
		h()
	}
	return s.Store.Delete(ctx, key)
}

// TestCrossingTriesAreToldTheCodeIsOver: what the fifty guesses at once
// may hit, one case at a time. The right code that arrives while the
// third wrong one is still dropping the operation is not compared; a try
// whose operation another try signed in with after it was read is told the
// code is over, not that the server failed.
func TestCrossingTriesAreToldTheCodeIsOver(t *testing.T) {
	t.Run("a try behind the third wrong one", func(t *testing.T) {
		f := newCodeFixture(t)
		id := f.start(t, "alice@example.com", false)
		code := f.lastCode(t)
		for range CodeAttempts - 1 {
			_, _ = f.complete(id, "alice@example.com", wrongOf(code))
		}
		store := &interleaved{Store: f.flow.Store}
		f.flow.Store = store
		var crossing error
		store.beforeDelete = func() { _, crossing = f.complete(id, "alice@example.com", code) }
		var wrong *WrongCodeError
		if _, err := f.complete(id, "alice@example.com", wrongOf(code)); !errors.As(err, &wrong) || wrong.Left != 0 {
			t.Fatalf("the third wrong code: %v, want none left", err)
		}
		if !errors.Is(crossing, ErrCodeExpired) {
			t.Fatalf("the right code while the third wrong one was dropping the operation: %v, want ErrCodeExpired", crossing)
		}
	})
	t.Run("a try behind a sign-in", func(t *testing.T) {
		f := newCodeFixture(t)
		id := f.start(t, "alice@example.com", false)
		code := f.lastCode(t)
		store := &interleaved{Store: f.flow.Store}
		f.flow.Store = store
		var first error
		store.beforeAttempt = func() { _, first = f.complete(id, "alice@example.com", code) }
		if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("a try whose operation was signed in with meanwhile: %v, want ErrCodeExpired", err)
		}
		if first != nil {
			t.Fatalf("the sign-in it crossed: %v", first)
		}
	})
}

// TestASuccessForgivesEarlierMistakes: two typos, then the right code; the
// next login starts with three guesses again, and the address's count of
// wrong codes starts afresh too: a person who mistypes twice at every
// login, more often in all than wrong_codes_per_address allows, is never
// locked out.
func TestASuccessForgivesEarlierMistakes(t *testing.T) {
	f := newCodeFixture(t)
	for round := range f.flow.Limits.WrongPerAddress.Max/2 + 1 {
		id := f.start(t, "alice@example.com", false)
		code := f.lastCode(t)
		for range 2 {
			if _, err := f.complete(id, "alice@example.com", "12345x"); !errors.Is(err, ErrCodeWrong) {
				t.Fatalf("round %d: a typo: %v", round, err)
			}
		}
		if _, err := f.complete(id, "alice@example.com", code); err != nil {
			t.Fatalf("round %d: the right code: %v", round, err)
		}
	}
}

func TestANewCodeSupersedesTheOld(t *testing.T) {
	f := newCodeFixture(t)
	old := f.start(t, "alice@example.com", false)
	oldCode := f.lastCode(t)
	id := f.start(t, "alice@example.com", false)
	if _, err := f.complete(old, "alice@example.com", oldCode); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the superseded operation: %v, want ErrCodeExpired", err)
	}
	if _, err := f.complete(id, "alice@example.com", f.lastCode(t)); err != nil {
		t.Fatalf("the new operation: %v", err)
	}
}

// TestAnOperationIsForItsProjectAndAddress: its id with another project or
// another address is over, not a wrong code.
func TestAnOperationIsForItsProjectAndAddress(t *testing.T) {
	f := newCodeFixture(t)
	id := f.start(t, "alice@example.com", false)
	code := f.lastCode(t)
	if _, err := f.flow.Complete(context.Background(), "another-project", "alice@example.com", id, code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("another project: %v", err)
	}
	if _, err := f.complete(id, "bob@corp.example", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("another address: %v", err)
	}
	if _, err := f.complete(id, "alice@example.com", code); err != nil {
		t.Fatalf("its own project and address: %v", err)
	}
}

// TestCodeForAnAddressNotAllowed: the same kind of answer and the same
// store writes and queue checks, and no mail.
func TestCodeForAnAddressNotAllowed(t *testing.T) {
	for _, sendLink := range []bool{false, true} {
		f := newCodeFixture(t)
		f.start(t, "alice@example.com", sendLink)
		allowedCalls, allowedChecks := writes(f.store.calls), f.out.checks
		f.store.calls, f.out.checks = nil, 0
		id := f.start(t, "mallory@example.com", sendLink)
		if len(f.out.letters) != 1 {
			t.Fatalf("send_link %v: %d letters, want only alice's", sendLink, len(f.out.letters))
		}
		if len(id) != len(ticket.NewSecret()) {
			t.Fatalf("send_link %v: operation id %q is not shaped like a real one", sendLink, id)
		}
		if got := writes(f.store.calls); got != allowedCalls || f.out.checks != allowedChecks-1 {
			t.Fatalf("send_link %v: refused %d writes and %d queue checks, allowed %d and %d (+1 enqueue)", sendLink, got, f.out.checks, allowedCalls, allowedChecks)
		}
		// A wrong code gets what it gets at a real operation, and no code
		// completes it, not even the one it holds.
		decoy, err := f.flow.operations().Peek(context.Background(), id)
		if err != nil || !decoy.Decoy {
			t.Fatalf("send_link %v: the refused address's operation: %+v, %v", sendLink, decoy, err)
		}
		for i, code := range []string{wrongOf(decoy.Code), decoy.Code, wrongOf(decoy.Code)} {
			var wrong *WrongCodeError
			if _, err := f.complete(id, "mallory@example.com", code); !errors.As(err, &wrong) || wrong.Left != CodeAttempts-1-i {
				t.Fatalf("send_link %v: code %d at a refused address: %v, want a wrong code with %d tries left, as at a real one", sendLink, i+1, err, CodeAttempts-1-i)
			}
		}
		if _, err := f.complete(id, "mallory@example.com", decoy.Code); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("send_link %v: after three tries: %v, want ErrCodeExpired", sendLink, err)
		}
	}
}

// writes counts the store writes among calls.
func writes(calls []string) int {
	n := 0
	for _, c := range calls {
		if c == "PutOwned" || c == "Put" || c == "Delete" {
			n++
		}
	}
	return n
}

// TestCodeLink: the app polls for the code; a person confirms the mailed
// link (on another device); the app then gets the code and completes.
func TestCodeLink(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	id := f.start(t, "alice@example.com", true)
	l := f.out.letters[0]
	u, _ := url.Parse(l.Link)
	secret := u.Query().Get("t")
	if secret == "" || l.Code == "" {
		t.Fatalf("letter %+v has no link or no code", l)
	}
	if _, err := f.flow.Code(ctx, project, "alice@example.com", id); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("before confirmation: %v, want ErrNotConfirmed", err)
	}
	if who, err := f.flow.LinkAccount(ctx, secret); err != nil || who != "alice@example.com" {
		t.Fatalf("the confirmation page: %q, %v", who, err)
	}
	// Looking does not confirm.
	if _, err := f.flow.Code(ctx, project, "alice@example.com", id); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("after looking: %v, want ErrNotConfirmed", err)
	}
	next, err := f.flow.ConfirmLink(ctx, secret)
	if err != nil || next != "https://game.example.com/status" {
		t.Fatalf("confirming: %q, %v", next, err)
	}
	if _, err := f.flow.ConfirmLink(ctx, secret); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("confirming twice: %v, want ErrLinkInvalid", err)
	}
	if _, err := f.flow.Code(ctx, project, "bob@corp.example", id); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("the code for another address: %v", err)
	}
	code, err := f.flow.Code(ctx, project, "alice@example.com", id)
	if err != nil || code != l.Code {
		t.Fatalf("after confirmation: %q, %v; want %q", code, err, l.Code)
	}
	if _, err := f.complete(id, "alice@example.com", code); err != nil {
		t.Fatal(err)
	}
	if _, err := f.flow.Code(ctx, project, "alice@example.com", id); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("after completion: %v, want ErrCodeExpired", err)
	}
}

// TestCodeLinkExpiresWithTheCode: a link confirmed at 3:00 confirms
// nothing.
func TestCodeLinkExpiresWithTheCode(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	start := f.now
	f.start(t, "alice@example.com", true)
	u, _ := url.Parse(f.out.letters[0].Link)
	f.now = start.Add(3 * time.Minute)
	if _, err := f.flow.LinkAccount(ctx, u.Query().Get("t")); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("the page at 3:00: %v", err)
	}
	if _, err := f.flow.ConfirmLink(ctx, u.Query().Get("t")); !errors.Is(err, ErrLinkInvalid) {
		t.Fatalf("confirming at 3:00: %v", err)
	}
}

func TestCodeStartRefuses(t *testing.T) {
	f := newCodeFixture(t)
	ctx := context.Background()
	if _, err := f.flow.Start(ctx, CodeRequest{Project: project, Email: "not an address", Requester: browserAt}); !errors.Is(err, directory.ErrInvalidEmail) {
		t.Fatalf("a bad address: %v", err)
	}
	var tooLong *TooLongError
	if _, err := f.flow.Start(ctx, CodeRequest{Project: project, Email: "alice@example.com", Payload: strings.Repeat("x", MaxPayload+1), Requester: browserAt}); !errors.As(err, &tooLong) || tooLong.Field != "payload" {
		t.Fatalf("a payload over the bound: %v", err)
	}
	f.flow.Limits.PerAddress = limit.Rule{Max: 1, Window: time.Minute}
	f.start(t, "alice@example.com", false)
	var exceeded *limit.ExceededError
	if _, err := f.flow.Start(ctx, CodeRequest{Project: project, Email: "alice@example.com", Requester: browserAt}); !errors.As(err, &exceeded) {
		t.Fatalf("over mails_per_address: %v", err)
	}
	f.out.refuse = errors.New("queue full")
	if _, err := f.flow.Start(ctx, CodeRequest{Project: project, Email: "bob@corp.example", Requester: browserAt}); !errors.Is(err, ErrDelivery) {
		t.Fatalf("a full queue: %v", err)
	}
}

// TestAnUndeliveredCodeIsDropped: a code whose mail was given up does not
// stay usable.
func TestAnUndeliveredCodeIsDropped(t *testing.T) {
	f := newCodeFixture(t)
	f.out.fail = errors.New("550 no such user")
	id := f.start(t, "alice@example.com", false)
	code := f.out.tried[0].Code
	if _, err := f.complete(id, "alice@example.com", code); !errors.Is(err, ErrCodeExpired) {
		t.Fatalf("an undelivered code: %v, want ErrCodeExpired", err)
	}
}
