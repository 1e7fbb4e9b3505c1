package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mailgate/caddy-mailgate/internal/testsmtp"
)

// hangGuard bounds every wait of these tests on the queue's goroutines, so
// that a bug fails a test instead of hanging it. No test measures time.
const hangGuard = 10 * time.Second

// testDrain and testDelay are the queue's Drain and Delay in these tests:
// the fake sleep tells them from a backoff, which is never as long with
// the jitter taken off.
const (
	testDrain = 7 * time.Second
	testDelay = 3 * time.Millisecond
)

// sender is a scripted Sender: attempt n fails with errs[n-1] while there
// is one; while hold is not nil, every attempt first waits for it or for
// its context.
type sender struct {
	mu       sync.Mutex
	errs     []error
	attempts int
	sent     []Letter
	hold     chan struct{}
	// started receives each attempt as it begins.
	started chan Letter
}

func (s *sender) Send(ctx context.Context, l Letter) error {
	s.mu.Lock()
	s.attempts++
	n, hold := s.attempts, s.hold
	s.mu.Unlock()
	if s.started != nil {
		s.started <- l
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return fmt.Errorf("sending: %w", ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= len(s.errs) && s.errs[n-1] != nil {
		return s.errs[n-1]
	}
	s.sent = append(s.sent, l)
	return nil
}

func (s *sender) delivered() []Letter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Letter(nil), s.sent...)
}

// clock is the queue's time: Now, and a Sleep that records each backoff
// and moves Now on by it at once. The drain deadline is a Sleep of
// testDrain, which passes only when the test closes expire. While holdWaits,
// a backoff lasts until the queue stops instead.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
	// delays counts the Sleeps of a letter's Delay.
	delays    int
	holdWaits bool
	// sleeping receives each backoff as it begins; draining is closed
	// when the drain begins.
	sleeping chan time.Duration
	draining chan struct{}
	expire   chan struct{}
}

func newClock() *clock {
	return &clock{
		now:      time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC),
		sleeping: make(chan time.Duration, 16),
		draining: make(chan struct{}),
		expire:   make(chan struct{}),
	}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) bool {
	if d == testDelay {
		c.mu.Lock()
		c.delays++
		c.mu.Unlock()
		return ctx.Err() == nil
	}
	if d == testDrain {
		close(c.draining)
		select {
		case <-c.expire:
			return true
		case <-ctx.Done():
			return false
		}
	}
	c.mu.Lock()
	c.waits = append(c.waits, d)
	hold := c.holdWaits
	c.mu.Unlock()
	c.sleeping <- d
	if hold {
		<-ctx.Done()
		return false
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err() == nil
}

func (c *clock) backoffs() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// setup is a started queue over s, with its clock, its log and a stop
// func; t's end stops it too.
type setup struct {
	q     *Queue
	clock *clock
	logs  *observer.ObservedLogs
	stop  context.CancelFunc
}

func startQueue(t *testing.T, s Sender, configure func(*Queue)) setup {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	c := newClock()
	q := &Queue{
		Sender: s, Logger: zap.New(core),
		Drain: testDrain, Delay: testDelay, Sleep: c.Sleep, Now: c.Now,
		Jitter: func(int64) int64 { return 0 },
	}
	if configure != nil {
		configure(q)
	}
	ctx, stop := context.WithCancel(context.Background())
	q.Start(ctx)
	t.Cleanup(func() { waitFor(t, "the queue to stop", q.Stop) })
	return setup{q: q, clock: c, logs: logs, stop: stop}
}

// waitFor runs wait, failing the test if it has not returned within
// hangGuard.
func waitFor(t *testing.T, what string, wait func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("still waiting for %s after %s", what, hangGuard)
	}
}

// flush waits until the queue has finished with every letter.
func (s setup) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.q.Flush(ctx); err != nil {
		t.Fatalf("the queue did not finish its letters: %v", err)
	}
}

// drops counts the calls to the undelivered func it makes.
type drops struct {
	mu sync.Mutex
	n  int
}

func (d *drops) undelivered(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("undelivered ran without a deadline")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	return nil
}

func (d *drops) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// letterTo is letter() to another recipient of example.com.
func letterTo(name string) Letter {
	l := letter()
	l.To = name + "@example.com"
	return l
}

// temporary is how a mail server says "not now".
var temporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "<Alice@Example.com>: try again later"}

// assertNoAddress fails if any log entry holds the recipient's mailbox
// name, in its message or its fields.
func assertNoAddress(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		if line := strings.ToLower(fmt.Sprint(e.Message, e.ContextMap())); strings.Contains(line, "alice") {
			t.Errorf("a log entry names the recipient: %s", line)
		}
	}
}

// TestQueueRetriesWithBackoff: a letter that fails twice for a reason that
// may pass is tried again after waits that double, and is delivered on the
// third attempt; each failure is logged with the domain only.
func TestQueueRetriesWithBackoff(t *testing.T) {
	s := &sender{errs: []error{temporary, errors.New("dial tcp: connection refused")}}
	qs := startQueue(t, s, nil)
	var d drops
	if err := qs.q.Enqueue(letter(), d.undelivered); err != nil {
		t.Fatal(err)
	}
	qs.flush(t)
	if got := s.delivered(); len(got) != 1 || s.attempts != 3 {
		t.Fatalf("%d delivered after %d attempts, want 1 after 3", len(got), s.attempts)
	}
	if w := qs.clock.backoffs(); len(w) != 2 || w[0] != DefaultBackoff || w[1] != 2*DefaultBackoff {
		t.Fatalf("backoffs %v, want [%s %s]", w, DefaultBackoff, 2*DefaultBackoff)
	}
	qs.clock.mu.Lock()
	delays := qs.clock.delays
	qs.clock.mu.Unlock()
	if delays != 1 {
		t.Fatalf("the letter's Delay was waited %d times, want once, before its first attempt", delays)
	}
	retries := qs.logs.FilterMessage("mail not delivered; trying again").All()
	if len(retries) != 2 || d.count() != 0 || qs.logs.FilterLevelExact(zapcore.ErrorLevel).Len() != 0 {
		t.Fatalf("%d retries logged, %d drops, errors %v; want 2, 0, none", len(retries), d.count(), qs.logs.FilterLevelExact(zapcore.ErrorLevel).All())
	}
	if f := retries[0].ContextMap(); f["domain"] != "example.com" || f["attempt"] != int64(1) || f["retry_in"] != DefaultBackoff {
		t.Errorf("first retry logged as %v", f)
	}
	assertNoAddress(t, qs.logs)
}

// TestQueueGivesUpAndRunsUndelivered: after Attempts failures the letter
// is given up: undelivered runs once (it drops the link), and the give-up
// is logged as an error, without the address that the server's refusal
// repeated.
func TestQueueGivesUpAndRunsUndelivered(t *testing.T) {
	s := &sender{errs: []error{temporary, temporary, temporary, temporary}}
	qs := startQueue(t, s, nil)
	var d drops
	if err := qs.q.Enqueue(letter(), d.undelivered); err != nil {
		t.Fatal(err)
	}
	qs.flush(t)
	if s.attempts != DefaultAttempts || d.count() != 1 || len(qs.clock.backoffs()) != DefaultAttempts-1 {
		t.Fatalf("%d attempts, %d drops, backoffs %v; want %d attempts, 1 drop",
			s.attempts, d.count(), qs.clock.backoffs(), DefaultAttempts)
	}
	gaveUp := qs.logs.FilterMessage("mail given up").All()
	if len(gaveUp) != 1 || gaveUp[0].Level != zapcore.ErrorLevel {
		t.Fatalf("give-up logged as %v", gaveUp)
	}
	f := gaveUp[0].ContextMap()
	if f["attempts"] != int64(DefaultAttempts) || f["domain"] != "example.com" || !strings.Contains(f["error"].(string), "…@Example.com") {
		t.Errorf("give-up logged with %v", f)
	}
	assertNoAddress(t, qs.logs)
}

// TestQueuePermanentRefusalIsNotRetried: a 5xx would only come again.
func TestQueuePermanentRefusalIsNotRetried(t *testing.T) {
	refused := fmt.Errorf("mail: sending through relay: %w", &smtp.SMTPError{Code: 550, Message: "no such mailbox"})
	s := &sender{errs: []error{refused}}
	qs := startQueue(t, s, nil)
	var d drops
	if err := qs.q.Enqueue(letter(), d.undelivered); err != nil {
		t.Fatal(err)
	}
	qs.flush(t)
	if s.attempts != 1 || d.count() != 1 || len(qs.clock.backoffs()) != 0 {
		t.Fatalf("%d attempts, %d drops, backoffs %v; want 1 attempt, 1 drop, no wait", s.attempts, d.count(), qs.clock.backoffs())
	}
}

// TestQueueGivesUpAtOnceOnAnAddressTheServerCannotTake: an address that is
// not ASCII can only be sent with SMTPUTF8, and a server that does not
// offer it now will not on the next attempt: the letter is given up on its
// first, without a wait, and the log says why. The mail to the next
// recipient goes out as usual.
func TestQueueGivesUpAtOnceOnAnAddressTheServerCannotTake(t *testing.T) {
	// go-smtp's server offers SMTPUTF8 only when told to.
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none"})
	tr := pooled(srv, TLSNone, 0)
	defer tr.Close()
	qs := startQueue(t, mailer(t, tr), nil)
	var d drops
	jorg := letter()
	jorg.To = "jörg@example.com"
	for _, l := range []Letter{jorg, letter()} {
		if err := qs.q.Enqueue(l, d.undelivered); err != nil {
			t.Fatal(err)
		}
	}
	qs.flush(t)
	if d.count() != 1 || len(qs.clock.backoffs()) != 0 {
		t.Fatalf("%d letters given up after backoffs %v; want 1, at once", d.count(), qs.clock.backoffs())
	}
	gaveUp := qs.logs.FilterMessage("mail given up").All()
	if len(gaveUp) != 1 {
		t.Fatalf("give-ups logged: %v", gaveUp)
	}
	if f := gaveUp[0].ContextMap(); f["attempts"] != int64(1) || !strings.Contains(f["error"].(string), "SMTPUTF8") {
		t.Errorf("give-up logged with %v", f)
	}
	for _, e := range qs.logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "jörg") {
			t.Errorf("a log entry names the recipient: %s", line)
		}
	}
	if msgs := srv.Messages(); len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "alice@example.com" {
		t.Fatalf("the server received %+v, want the mail to alice@example.com alone", msgs)
	}
}

// TestQueueGivesUpAtOnceOnALetterThatCannotBeComposed: a recipient that
// does not parse fails the same way on every attempt, so it is given up
// without a retry, and the next letter still goes out.
func TestQueueGivesUpAtOnceOnALetterThatCannotBeComposed(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Options{TLS: "none"})
	tr := pooled(srv, TLSNone, 0)
	defer tr.Close()
	qs := startQueue(t, mailer(t, tr), nil)
	var d drops
	bad := letter()
	bad.To = "not an address"
	for _, l := range []Letter{bad, letter()} {
		if err := qs.q.Enqueue(l, d.undelivered); err != nil {
			t.Fatal(err)
		}
	}
	qs.flush(t)
	if d.count() != 1 || len(qs.clock.backoffs()) != 0 {
		t.Fatalf("%d letters given up after backoffs %v; want 1, at once", d.count(), qs.clock.backoffs())
	}
	if msgs := srv.Messages(); len(msgs) != 1 {
		t.Fatalf("the server received %d mails, want the good letter's", len(msgs))
	}
}

// TestQueueDoesNotRetryPastTheLinkExpiry: a mail whose link would have
// expired before the next attempt is given up rather than sent dead.
func TestQueueDoesNotRetryPastTheLinkExpiry(t *testing.T) {
	s := &sender{errs: []error{temporary, temporary, temporary}}
	qs := startQueue(t, s, func(q *Queue) { q.Backoff = 40 * time.Second })
	l := letter()
	l.Expires = time.Minute
	var d drops
	if err := qs.q.Enqueue(l, d.undelivered); err != nil {
		t.Fatal(err)
	}
	qs.flush(t)
	// Attempt 1 at 0s, attempt 2 at 40s; a third would start at 120s.
	if s.attempts != 2 || d.count() != 1 {
		t.Fatalf("%d attempts, %d drops; want 2 attempts, then given up", s.attempts, d.count())
	}
}

// TestBackoffIsBounded: with any jitter, the wait after attempt n is more
// than half of Backoff·2^(n-1) and at most all of it, so that the whole
// schedule ends within Backoff·(2^(Attempts-1)-1).
func TestBackoffIsBounded(t *testing.T) {
	for name, jitter := range map[string]func(int64) int64{
		"none": func(int64) int64 { return 0 },
		"most": func(n int64) int64 { return n - 1 },
	} {
		q := &Queue{Backoff: 20 * time.Second, Jitter: jitter}
		var total time.Duration
		for n := 1; n < DefaultAttempts; n++ {
			nominal := q.Backoff << (n - 1)
			w := q.backoff(n)
			if w <= nominal/2 || w > nominal {
				t.Errorf("jitter %s: wait after attempt %d = %s, want in (%s, %s]", name, n, w, nominal/2, nominal)
			}
			total += w
		}
		if limit := q.Backoff * (1<<(DefaultAttempts-1) - 1); total > limit {
			t.Errorf("jitter %s: retries take %s, over %s", name, total, limit)
		}
	}
}

// TestFullQueueRefuses: a queue holding Size letters, being delivered or
// waiting, says so to Enqueue and Room alike rather than drop a letter, even
// one that would only wait behind another to the same recipient; it takes
// letters again once it has room.
func TestFullQueueRefuses(t *testing.T) {
	s := &sender{hold: make(chan struct{}), started: make(chan Letter, 4)}
	qs := startQueue(t, s, func(q *Queue) { q.Size, q.Workers = 2, 1 })
	if err := qs.q.Enqueue(letterTo("alice"), nil); err != nil {
		t.Fatal(err)
	}
	<-s.started // the worker holds alice's letter; bob's waits
	if err := qs.q.Enqueue(letterTo("bob"), nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range []Letter{letterTo("carol"), letterTo("alice")} {
		if err := qs.q.Enqueue(l, nil); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Enqueue to %s in a full queue: %v, want ErrQueueFull", l.To, err)
		}
	}
	if err := qs.q.Room(); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Room of a full queue: %v, want ErrQueueFull", err)
	}
	close(s.hold)
	qs.flush(t)
	if n := len(s.delivered()); n != 2 {
		t.Fatalf("%d delivered, want the 2 taken", n)
	}
	if err := qs.q.Room(); err != nil {
		t.Fatalf("Room of an empty queue: %v", err)
	}
}

// TestNewerLetterReplacesAWaitingOne: letters to one recipient go out one
// at a time, in order; of those waiting behind the one being delivered,
// only the newest goes, since a new link supersedes the old. Other
// recipients keep theirs.
func TestNewerLetterReplacesAWaitingOne(t *testing.T) {
	s := &sender{hold: make(chan struct{}), started: make(chan Letter, 4)}
	qs := startQueue(t, s, func(q *Queue) { q.Workers = 1 })
	var d drops
	first := letterTo("alice")
	if err := qs.q.Enqueue(first, d.undelivered); err != nil {
		t.Fatal(err)
	}
	<-s.started // alice's first letter is being tried
	for i, l := range []Letter{letterTo("alice"), letterTo("bob"), letterTo("alice")} {
		l.Link += fmt.Sprint(i)
		if err := qs.q.Enqueue(l, d.undelivered); err != nil {
			t.Fatal(err)
		}
	}
	close(s.hold)
	qs.flush(t)
	var got []string
	for _, l := range s.delivered() {
		got = append(got, l.To+" "+strings.TrimPrefix(l.Link, first.Link))
	}
	want := []string{"alice@example.com ", "alice@example.com 2", "bob@example.com 1"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") || d.count() != 0 {
		t.Fatalf("delivered %q, %d given up; want %q", got, d.count(), want)
	}
}

// TestOneRecipientsLettersGoInOrder: with workers to spare, a recipient's
// letters still go one after the other, so that the newest link arrives
// last; the first letter of a line is never replaced, whether or not a
// worker has begun it.
func TestOneRecipientsLettersGoInOrder(t *testing.T) {
	s := &sender{hold: make(chan struct{})} // so that the first is not done before the others come
	qs := startQueue(t, s, nil)
	for i := range 3 {
		l := letterTo("alice")
		l.Link = fmt.Sprint(i)
		if err := qs.q.Enqueue(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(s.hold)
	qs.flush(t)
	var got []string
	for _, l := range s.delivered() {
		got = append(got, l.Link)
	}
	if strings.Join(got, " ") != "0 2" {
		t.Fatalf("delivered links %q, want [0 2]: the first, then the newest", got)
	}
}

// TestStopDrains: once its context ends, the queue takes no more letters
// and delivers those it holds; Stop returns when it has.
func TestStopDrains(t *testing.T) {
	s := &sender{hold: make(chan struct{}), started: make(chan Letter, 4)}
	qs := startQueue(t, s, func(q *Queue) { q.Workers = 1 })
	var d drops
	for _, name := range []string{"alice", "bob", "carol"} {
		if err := qs.q.Enqueue(letterTo(name), d.undelivered); err != nil {
			t.Fatal(err)
		}
	}
	<-s.started
	qs.stop()
	waitFor(t, "the drain to begin", func() { <-qs.clock.draining })
	if err := qs.q.Enqueue(letter(), d.undelivered); !errors.Is(err, ErrQueueStopped) {
		t.Fatalf("Enqueue while stopping: %v, want ErrQueueStopped", err)
	}
	close(s.hold)
	waitFor(t, "the queue to stop", qs.q.Stop)
	if n := len(s.delivered()); n != 3 || d.count() != 0 {
		t.Fatalf("%d delivered and %d given up at the stop, want all 3 delivered", n, d.count())
	}
}

// TestStopCutsARetryWaitShort: a letter waiting for its retry when the
// queue stops gets its last attempt at once instead of holding the stop.
func TestStopCutsARetryWaitShort(t *testing.T) {
	s := &sender{errs: []error{temporary}}
	qs := startQueue(t, s, nil)
	qs.clock.mu.Lock()
	qs.clock.holdWaits = true
	qs.clock.mu.Unlock()
	var d drops
	if err := qs.q.Enqueue(letter(), d.undelivered); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backoff to begin", func() { <-qs.clock.sleeping })
	waitFor(t, "the queue to stop", qs.q.Stop)
	if n := len(s.delivered()); n != 1 || s.attempts != 2 || d.count() != 0 {
		t.Fatalf("%d delivered after %d attempts, %d given up; want the second attempt at the stop to deliver it", n, s.attempts, d.count())
	}
}

// TestStopAbandonsWhatTheDrainCannotDeliver: when the drain runs out, the
// attempt under way is cut off and every letter left is given up, its
// undelivered func run, so that a hung mail server cannot hold a reload
// and no undelivered link stays live.
func TestStopAbandonsWhatTheDrainCannotDeliver(t *testing.T) {
	s := &sender{hold: make(chan struct{}), started: make(chan Letter, 4)} // never released: a hung server
	qs := startQueue(t, s, func(q *Queue) { q.Workers = 1 })
	var d drops
	for _, name := range []string{"alice", "bob"} {
		if err := qs.q.Enqueue(letterTo(name), d.undelivered); err != nil {
			t.Fatal(err)
		}
	}
	<-s.started
	stopped := make(chan struct{})
	go func() { qs.q.Stop(); close(stopped) }()
	waitFor(t, "the drain to begin", func() { <-qs.clock.draining })
	close(qs.clock.expire)
	waitFor(t, "the queue to stop", func() { <-stopped })
	if d.count() != 2 || len(s.delivered()) != 0 || s.attempts != 1 {
		t.Fatalf("%d given up, %d delivered, %d attempts; want both given up, the queued one untried", d.count(), len(s.delivered()), s.attempts)
	}
	for _, e := range qs.logs.FilterMessage("mail given up").All() {
		if n := e.ContextMap()["attempts"]; n != int64(1) && n != int64(0) {
			t.Errorf("given up after %v attempts", n)
		}
	}
}

// TestQueueNotStarted: a queue that never ran refuses letters, and Stop
// and Flush do not block on it.
func TestQueueNotStarted(t *testing.T) {
	var q Queue
	if err := q.Enqueue(letter(), nil); !errors.Is(err, ErrQueueStopped) {
		t.Fatalf("Enqueue before Start: %v", err)
	}
	q.Stop()
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRedactTakesTheMailboxNameOut(t *testing.T) {
	err := errors.New("550 5.1.1 <ALICE@example.com>: Recipient address rejected; alice@EXAMPLE.com unknown")
	got := redact(err, "alice@example.com")
	if strings.Contains(strings.ToLower(got), "alice") || !strings.Contains(got, "<…@example.com>") {
		t.Fatalf("redact = %q", got)
	}
}

// TestQueueTellsOfRetriesAndDeliveries: Retried hears each failed attempt
// that another follows, Delivered the delivery, with its attempts and the
// time since the letter was queued on the queue's clock (the backoffs),
// and Len the letters held until then.
func TestQueueTellsOfRetriesAndDeliveries(t *testing.T) {
	s := &sender{errs: []error{temporary}}
	var mu sync.Mutex
	var retried, attempts int
	var latency time.Duration
	qs := startQueue(t, s, func(q *Queue) {
		q.Retried = func(Letter) { mu.Lock(); retried++; mu.Unlock() }
		q.Delivered = func(_ Letter, n int, d time.Duration) { mu.Lock(); attempts, latency = n, d; mu.Unlock() }
	})
	if n := qs.q.Len(); n != 0 {
		t.Fatalf("an empty queue's Len is %d", n)
	}
	s.hold = make(chan struct{})
	if err := qs.q.Enqueue(letter(), nil); err != nil {
		t.Fatal(err)
	}
	if n := qs.q.Len(); n != 1 {
		t.Fatalf("Len with a letter held: %d, want 1", n)
	}
	close(s.hold)
	qs.flush(t)
	mu.Lock()
	defer mu.Unlock()
	if retried != 1 || attempts != 2 || latency < DefaultBackoff {
		t.Fatalf("retried %d, delivered after %d attempts and %s; want 1, 2 and at least %s", retried, attempts, latency, DefaultBackoff)
	}
	if n := qs.q.Len(); n != 0 {
		t.Fatalf("Len once delivered: %d", n)
	}
}
