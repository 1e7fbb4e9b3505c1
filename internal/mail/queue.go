package mail

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrQueueFull means the queue holds as many letters as it may and did not
// take this one. Nothing was sent; the caller should say "try again later"
// rather than pretend a mail is on its way.
var ErrQueueFull = errors.New("mail: the delivery queue is full")

// ErrQueueStopped means the queue takes no more letters: it was never
// started, or its context ended (Caddy is unloading the config).
var ErrQueueStopped = errors.New("mail: the delivery queue is stopped")

// errAbandoned is why a letter still queued when the drain ran out was
// given up without an attempt.
var errAbandoned = errors.New("mail: the queue stopped before the letter could be tried")

// Defaults for a Queue's zero fields. Three attempts with a 20s backoff wait
// 10–20s, then 20–40s: a letter is given up within about a minute, well
// inside the default link lifetime (10 minutes); for a shorter one, the
// expiry check ends the retries sooner.
//
// Sixty-four workers are goroutines, not connections: the SMTP transport
// sends the letters they hand it at once over its few connections, many in
// one round trip (see SMTP.Deliver). Under load a letter waits mostly for
// round trips, each of which also waits for its goroutine to be scheduled
// behind the HTTP requests under way; with four workers, at most four
// letters went per round trip, and a flooded login form on one core got
// 400 mails a second out, against about 1,000 with sixty-four
// (docs/performance.md).
const (
	DefaultSize     = 1024
	DefaultWorkers  = 64
	DefaultAttempts = 3
	DefaultBackoff  = 20 * time.Second
	DefaultDrain    = 5 * time.Second
	DefaultDelay    = 10 * time.Millisecond
)

// dropTimeout bounds the undelivered callback of a letter given up; it gets
// a context of its own, since the queue's may have ended.
const dropTimeout = 5 * time.Second

// Sender hands one letter to the next hop and says whether it was taken: a
// *Mailer, or something wrapping one.
type Sender interface {
	Send(ctx context.Context, l Letter) error
}

// Queue delivers letters in the background, so that a caller whose answer
// must not depend on the mail server need not wait for it: the browser
// login form answers alike whether or not a mail goes out, and a slow or
// hung mail server does not hold its requests open.
//
// A worker takes up a letter Delay after it was queued, not at once: the
// request that queued it has been answered by then. Composing and sending
// a mail costs CPU, and on a small machine doing it alongside the answer
// makes the answer measurably slower (about 0.2 ms on 2 cores, see
// docs/performance.md), which would tell an address that gets a mail from
// one that does not.
//
// Letters to one recipient with one template form a line, delivered one at
// a time and in order, so that the newest login link is in the mail that
// arrives last. A line holds the letter being delivered and at most one
// more: a newer letter replaces the one waiting behind it, since a new
// login link supersedes the one before and mailing the dead one would
// only confuse its reader (and, in a flood of requests for one address,
// fill the queue). The letter replaced is neither delivered nor given up,
// and its undelivered func does not run.
//
// A letter whose delivery fails is tried again after a wait (see backoff),
// up to Attempts in all. It is given up sooner when the mail server refused
// it for good (an SMTP 5xx), or when the next attempt would come after the
// link it carries has expired (Letter.Expires after it was queued). Each
// failure is logged with the recipient's domain, never the address; a
// letter given up runs the undelivered func it was queued with, so that a
// link nobody received stops working.
//
// Start runs the queue until its context ends or Stop is called. From then
// on it takes no more letters and drains: every letter still queued, or
// waiting for a retry, gets one more attempt without waiting, for at most
// Drain in all. When Drain runs out, the attempts under way are cut off and
// every letter left is given up. Stop returns when that is over, so the
// caller can close what the undelivered funcs use only afterwards.
// Draining rather than dropping means a reload does not lose the mails of
// the people who asked a moment before; the deadline means a hung mail
// server cannot hold a reload or a shutdown for longer than Drain.
//
// A zero field but Sender means its default (Logger: none); fields must
// not change after Start.
type Queue struct {
	Sender Sender
	Logger *zap.Logger
	// Size bounds the letters held, waiting or being delivered; at it,
	// Enqueue answers ErrQueueFull.
	Size int
	// Workers is how many letters are attempted at once; they share the
	// Sender's connections to the mail server.
	Workers int
	// Attempts bounds the tries of one letter, the first included.
	Attempts int
	// Backoff is the longest wait after the first failed attempt; it
	// doubles after each further one.
	Backoff time.Duration
	// Drain bounds the delivery of what is left once the context ends.
	Drain time.Duration
	// Delay is how long after it was queued a letter is first tried; not
	// while the queue drains.
	Delay time.Duration
	// Sleep waits for d and reports true, or reports false as soon as ctx
	// ends. Tests replace it, to see the waits without taking them.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Jitter returns a random number in [0, n).
	Jitter func(n int64) int64
	// Now is the clock that link expiry is measured with.
	Now func() time.Time
	// Delivered, if set, is told of each letter the Sender took: after
	// how many attempts, and how long after it was queued (metrics).
	Delivered func(l Letter, attempts int, latency time.Duration)
	// Retried, if set, is told of each failed attempt that another will
	// follow.
	Retried func(l Letter)

	// ready holds the lines that have no worker yet.
	ready chan waitKey
	// end ends the run, as the end of Start's context does; stopping ends
	// when the run has, once the queue stopped taking letters; done is
	// closed when the workers have returned.
	end      context.CancelFunc
	stopping context.Context
	done     chan struct{}

	mu      sync.Mutex
	stopped bool
	lines   map[waitKey]*line
	// pending counts the letters held (see Size); idle is closed whenever
	// it is zero.
	pending int
	idle    chan struct{}
}

// job is a letter with what to do if it is given up.
type job struct {
	letter      Letter
	undelivered func(context.Context) error
	queued      time.Time
}

// waitKey names a line: one recipient, one template.
type waitKey struct{ to, template string }

// line is the letters held for one waitKey: head is being delivered, or
// will be next, and is never replaced; tail, if any, waits behind it.
// Both change under Queue.mu only.
type line struct {
	head, tail *job
}

// Start fills in the defaults and starts the workers; they run until ctx
// ends or Stop is called, and the queue has drained (see Queue). Call it
// once, before any Enqueue.
func (q *Queue) Start(ctx context.Context) {
	ctx, q.end = context.WithCancel(ctx)
	q.Size = orDefault(q.Size, DefaultSize)
	q.Workers = orDefault(q.Workers, DefaultWorkers)
	q.Attempts = orDefault(q.Attempts, DefaultAttempts)
	q.Backoff = orDefault(q.Backoff, DefaultBackoff)
	q.Drain = orDefault(q.Drain, DefaultDrain)
	q.Delay = orDefault(q.Delay, DefaultDelay)
	if q.Logger == nil {
		q.Logger = zap.NewNop()
	}
	if q.Sleep == nil {
		q.Sleep = sleep
	}
	if q.Jitter == nil {
		q.Jitter = rand.Int64N
	}
	if q.Now == nil {
		q.Now = time.Now
	}
	// A line is ready at most once, and there are at most Size lines.
	q.ready = make(chan waitKey, q.Size)
	q.lines = make(map[waitKey]*line)
	q.done = make(chan struct{})
	q.idle = make(chan struct{})
	close(q.idle)

	// hard is the context of every attempt: it outlives ctx by the drain,
	// and ends when the drain runs out or is over.
	hard, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	stopping, markStopping := context.WithCancel(context.WithoutCancel(ctx))
	q.stopping = stopping
	var workers sync.WaitGroup
	for range q.Workers {
		workers.Go(func() { q.work(hard) })
	}
	go func() {
		<-ctx.Done()
		q.refuse()
		markStopping()
		drained, over := context.WithCancel(context.Background())
		go func() {
			if q.Sleep(drained, q.Drain) {
				cutOff()
			}
		}()
		workers.Wait()
		over()
		cutOff()
		close(q.done)
	}()
}

// orDefault is v, or def when v is zero or less.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// sleep is the real Sleep.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Send hands l over at once, on the caller's time and context, without
// queueing: for callers whose answer promises that the mail server took
// the mail, and must report when it did not.
func (q *Queue) Send(ctx context.Context, l Letter) error {
	return q.Sender.Send(ctx, l)
}

// Enqueue takes l for background delivery and returns at once; it may
// replace a letter still waiting (see Queue). If l is given up, undelivered
// (if not nil) runs with a context of its own. A queue that cannot take l
// answers ErrQueueFull or ErrQueueStopped, and undelivered does not run:
// the caller still has l to deal with. A full queue refuses even a letter
// that would only replace another, so that Room foretells every answer.
func (q *Queue) Enqueue(l Letter, undelivered func(context.Context) error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.room(); err != nil {
		return err
	}
	j := &job{letter: l, undelivered: undelivered, queued: q.Now()}
	key := waitKey{l.To, l.Template}
	ln, ok := q.lines[key]
	switch {
	case !ok:
		q.lines[key] = &line{head: j}
		// Only Enqueue sends, under mu, after room: never blocks.
		q.ready <- key
	case ln.tail != nil:
		ln.tail = j
		return nil
	default:
		ln.tail = j
	}
	if q.pending == 0 {
		q.idle = make(chan struct{})
	}
	q.pending++
	return nil
}

// Room returns the error Enqueue would answer now, without taking a
// letter, so that a request that mails nothing can answer as one that
// would: a full queue must not tell who has an account.
func (q *Queue) Room() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.room()
}

func (q *Queue) room() error {
	switch {
	case q.lines == nil || q.stopped:
		return ErrQueueStopped
	case q.pending >= q.Size:
		return ErrQueueFull
	}
	return nil
}

// Len returns how many letters the queue holds, waiting or being
// delivered: its depth, for metrics and health.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// Flush waits until every letter taken so far has been delivered or given
// up, or until ctx ends. Tests of a whole server use it to read the mail a
// form promised.
func (q *Queue) Flush(ctx context.Context) error {
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops the queue, as the end of its context does, and returns when
// it has drained: what it held has been delivered or given up. Stopping a
// stopped queue, or one never started, returns at once.
func (q *Queue) Stop() {
	if q.done == nil {
		return
	}
	q.end()
	<-q.done
}

// refuse stops the queue taking letters. Under mu, so that no Enqueue can
// slip a line in after the workers have seen ready empty.
func (q *Queue) refuse() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	if q.pending > 0 {
		q.Logger.Info("delivering the mails still queued before stopping",
			zap.Int("mails", q.pending), zap.Duration("at_most", q.Drain))
	}
}

// finish counts a letter out.
func (q *Queue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending--
	if q.pending == 0 {
		close(q.idle)
	}
}

// work delivers lines until the queue is stopping, then what is left.
func (q *Queue) work(hard context.Context) {
	for {
		select {
		case key := <-q.ready:
			q.run(hard, key)
		case <-q.stopping.Done():
			for {
				select {
				case key := <-q.ready:
					q.run(hard, key)
				default:
					return
				}
			}
		}
	}
}

// run delivers key's line until it is empty, and removes it.
func (q *Queue) run(hard context.Context, key waitKey) {
	q.mu.Lock()
	ln := q.lines[key]
	for {
		j := *ln.head
		q.mu.Unlock()
		q.deliver(hard, j)
		q.mu.Lock()
		if ln.tail == nil {
			delete(q.lines, key)
			q.mu.Unlock()
			return
		}
		ln.head, ln.tail = ln.tail, nil
	}
}

// deliver tries j, once its Delay is over, until it is delivered or given
// up.
func (q *Queue) deliver(hard context.Context, j job) {
	defer q.finish()
	if wait := j.queued.Add(q.Delay).Sub(q.Now()); wait > 0 {
		q.Sleep(q.stopping, wait)
	}
	l := j.letter
	for attempt := 1; ; attempt++ {
		if hard.Err() != nil {
			q.giveUp(j, attempt-1, errAbandoned)
			return
		}
		err := q.Sender.Send(hard, l)
		if err == nil {
			q.Logger.Debug("mail delivered", zap.String("domain", domainOf(l.To)), zap.Int("attempt", attempt))
			if q.Delivered != nil {
				q.Delivered(l, attempt, q.Now().Sub(j.queued))
			}
			return
		}
		wait := q.backoff(attempt)
		if attempt >= q.Attempts || permanent(err) || q.stopping.Err() != nil ||
			l.Expires > 0 && q.Now().Add(wait).Sub(j.queued) >= l.Expires {
			q.giveUp(j, attempt, err)
			return
		}
		q.Logger.Warn("mail not delivered; trying again",
			zap.String("domain", domainOf(l.To)), zap.String("template", l.Template),
			zap.Int("attempt", attempt), zap.Int("attempts", q.Attempts),
			zap.Duration("retry_in", wait), zap.String("error", redact(err, l.To)))
		if q.Retried != nil {
			q.Retried(l)
		}
		// Cut short when the queue stops: the letter then gets its last
		// attempt at once.
		q.Sleep(q.stopping, wait)
	}
}

// giveUp ends j's delivery after attempts tries that ended with err.
func (q *Queue) giveUp(j job, attempts int, err error) {
	l := j.letter
	fields := []zap.Field{
		zap.String("domain", domainOf(l.To)), zap.String("template", l.Template),
		zap.Int("attempts", attempts), zap.String("error", redact(err, l.To)),
	}
	if j.undelivered != nil {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if uerr := j.undelivered(ctx); uerr != nil {
			fields = append(fields, zap.NamedError("undelivered_error", uerr))
		}
	}
	q.Logger.Error("mail given up", fields...)
}
