package mail

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// maxBatch bounds the messages one exchange carries. Each is a few
// kilobytes, so a batch stays well within what the socket buffers hold
// while the server reads it; and the answers, a few dozen bytes a command,
// within what the server can write before the client reads them.
const maxBatch = 32

// message is one Deliver's message, waiting for a connection or in an
// exchange.
type message struct {
	ctx      context.Context
	from, to string
	msg      []byte
	// done receives the outcome, once.
	done chan error
	// sent is set, under the pool's lock, when an exchange takes it.
	sent bool
}

// Deliver implements Transport. The server's refusal comes back wrapped,
// as the *smtp.SMTPError it is, so that the queue can tell one for good
// (see permanent); so does errNoSMTPUTF8.
//
// Messages delivered at once share the connections: while every one of
// the MaxConns connections is in an exchange, messages wait, and the next
// exchange takes all that wait, up to maxBatch, to a server that offers
// PIPELINING and CHUNKING, in one round trip (see send). Under load,
// round trips, not connections, are what a message waits for (see
// pipeline.go), so the mails per second grow with the messages waiting,
// and a handful of connections serve many workers: mail servers bound the
// connections one client may hold at once, some to as few as three.
func (s *SMTP) Deliver(ctx context.Context, from, to string, msg []byte) error {
	// A delivery that is over must not take an idle connection, only for
	// its context to close it.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
	}
	m := &message{ctx: ctx, from: from, to: to, msg: msg, done: make(chan error, 1)}
	slots := s.pool.slotsOf(orDefault(s.MaxConns, DefaultMaxConns))
	s.pool.wait(m)
	for {
		select {
		case err := <-m.done:
			return err
		case slots <- struct{}{}:
			s.sendWaiting()
			if s.pool.taken(m) {
				// By this exchange or another: its outcome comes through
				// done, within Timeout. Taking slots meanwhile would only
				// spin, finding nothing to send.
				return <-m.done
			}
		case <-ctx.Done():
			if s.pool.withdraw(m) {
				return fmt.Errorf("mail: connecting to %s: %w", s.Addr, ctx.Err())
			}
			// In an exchange already, which ends within Timeout, or as
			// soon as no message's context goes on: whether the server
			// took m is known then, and is what Deliver must say.
			return <-m.done
		}
	}
}

// sendWaiting sends the messages that wait, in one exchange on one
// connection, and gives back the slot its caller took for it.
func (s *SMTP) sendWaiting() {
	defer s.pool.release()
	first := s.pool.next(1)
	if len(first) == 0 {
		return
	}
	m := first[0]
	if err := m.ctx.Err(); err != nil {
		m.done <- fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
		return
	}
	c, checked, err := s.get(m.ctx)
	if err != nil {
		m.done <- err
		return
	}
	batch := first
	if c.pipelining && c.chunking {
		batch = append(batch, s.pool.next(maxBatch-1)...)
	}
	batch = s.sendable(c, batch)
	if len(batch) == 0 {
		s.put(c)
		return
	}
	ctx := m.ctx
	if len(batch) > 1 {
		var stop func()
		ctx, stop = together(batch)
		defer stop()
		// get watched m's context; the exchange is all of theirs.
		c.raw.unwatch()
		c.raw.watch(ctx)
		c.raw.within(ctx, s.Timeout)
	}
	errs, gone := c.send(batch)
	if gone && !checked && ctx.Err() == nil {
		// The connection was reused without a NOOP, and was gone: as
		// after a failed NOOP, a new one takes its place, once.
		c.close()
		if c, err = s.connect(ctx); err != nil {
			for _, m := range batch {
				m.done <- err
			}
			return
		}
		errs, _ = c.send(batch)
	}
	// The connection goes back, or is closed, before any sender hears:
	// one that hears and ends its context must not close it.
	if errors.Join(errs...) != nil {
		// Whatever the exchange left the connection in, it is no state to
		// start the next message from.
		c.close()
	} else {
		s.put(c)
	}
	for i, m := range batch {
		if errs[i] != nil {
			m.done <- fmt.Errorf("mail: sending through %s: %w", s.Addr, errs[i])
		} else {
			m.done <- nil
		}
	}
}

// sendable answers the messages of batch that c cannot carry, and returns
// the others: one whose context has ended (taken from the waiting ones by
// this exchange, not by its own Deliver), one that needs SMTPUTF8 where the
// server does not offer it, or one with an address that would break its
// command's line.
func (s *SMTP) sendable(c *conn, batch []*message) []*message {
	kept := batch[:0]
	for _, m := range batch {
		switch {
		case m.ctx.Err() != nil:
			m.done <- fmt.Errorf("mail: connecting to %s: %w", s.Addr, m.ctx.Err())
		case (!isASCII(m.from) || !isASCII(m.to)) && !c.smtpUTF8:
			// go-smtp would refuse too, but with an error that says
			// nothing of whether it lasts.
			m.done <- fmt.Errorf("mail: sending through %s: %w", s.Addr, errNoSMTPUTF8)
		case !validLine(m.from) || !validLine(m.to):
			m.done <- fmt.Errorf("mail: sending through %s: %w", s.Addr, errLine)
		default:
			kept = append(kept, m)
		}
	}
	return kept
}

// together is a context that ends when the context of every message in
// batch has ended, with the latest of their deadlines: one exchange carries
// them all, and must not be cut off while one of them still waits for it.
func together(batch []*message) (context.Context, func()) {
	var ctx context.Context
	var cancel context.CancelFunc
	if latest, ok := latestDeadline(batch); ok {
		ctx, cancel = context.WithDeadline(context.Background(), latest)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, m := range batch {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// latestDeadline is the latest deadline of the contexts of batch, unless
// one of them has none.
func latestDeadline(batch []*message) (time.Time, bool) {
	var latest time.Time
	for _, m := range batch {
		d, ok := m.ctx.Deadline()
		if !ok {
			return time.Time{}, false
		}
		if d.After(latest) {
			latest = d
		}
	}
	return latest, true
}
