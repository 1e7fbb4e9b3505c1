package mail

import (
	"context"
	"io"
	"net/textproto"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Defaults for an SMTP's zero fields.
//
// Four connections carry what the queue's workers deliver at once (see
// Deliver): to a server that offers PIPELINING and CHUNKING, the messages
// that wait go together, one round trip for many, so a few connections
// carry thousands of mails a second (BenchmarkSMTP), and stay far below the
// connections per client a mail server allows (some allow three).
//
// Thirty seconds idle is well below what servers wait for a client's next
// command (RFC 5321 asks for 5 minutes; Postfix waits 300s, 10s when under
// stress), so a connection is mostly closed by us, with a QUIT, and seldom
// found dead. When it is, the NOOP before reuse finds out, or the first
// answer to a connection reused without one (see uncheckedReuse), and a new
// connection takes its place.
const (
	DefaultMaxConns    = 4
	DefaultIdleTimeout = 30 * time.Second
)

// quitTimeout bounds the goodbye to a connection closed while idle: a hung
// server must not hold Close.
const quitTimeout = 2 * time.Second

// Interface guards.
var (
	_ Transport = (*SMTP)(nil)
	_ io.Closer = (*SMTP)(nil)
)

// pool holds an SMTP's connections, and the messages waiting for one. An
// exchange holds one of MaxConns slots while it has a connection, and
// dials a new one only when none is idle, so that no more than MaxConns
// are ever open: each is either in an exchange or idle.
//
// The idle ones are reused last in, first out: at a steady trickle of mail
// the same connection serves it all, and the others age out and close,
// instead of all being kept barely alive in turn.
type pool struct {
	mu sync.Mutex
	// slots holds a token for each exchange under way; made at first use,
	// MaxConns long.
	slots chan struct{}
	// waiting is the messages that no exchange has taken yet, the longest
	// waiting first (see Deliver).
	waiting []*message
	// idle is the connections waiting for a message, the most recently
	// used last.
	idle   []*conn
	closed bool
}

// conn is one connection to the server, greeted and authenticated.
type conn struct {
	client *smtp.Client
	raw    *deadlineConn
	// text speaks on the connection go-smtp speaks on (after TLS), for the
	// pipelined exchange of a message (see send), which go-smtp's client
	// does not make. Both read only whole answers to their own commands,
	// so neither leaves the other's answer in its buffer.
	text *textproto.Conn
	// What the server offers, from its answer to EHLO.
	pipelining, chunking, eightBit, smtpUTF8 bool
	// idleSince is when it went back to the pool.
	idleSince time.Time
}

// uncheckedReuse is how long after its last message a connection to a
// server that offers PIPELINING is reused without a NOOP first. Under load
// connections are idle for microseconds, and the NOOP's round trip would
// cost as much as the whole pipelined message. Within a second neither a
// server's idle limit nor a firewall's ends a connection; a server that
// restarts meanwhile is found out by the first answer, and the messages go
// on a new connection then (see send), as they would have after a failed
// NOOP.
const uncheckedReuse = time.Second

// get returns a connection for the messages of one exchange, ready for
// MAIL and watched by ctx with a fresh Timeout: an idle one that still
// answers, else a new one. checked is false for an idle one reused without
// a NOOP (see uncheckedReuse), which sendWaiting replaces if it turns out
// to be gone. The caller holds a slot, and hands the connection back with
// put, or closes it.
func (s *SMTP) get(ctx context.Context) (c *conn, checked bool, err error) {
	if c := s.takeIdle(); c != nil {
		if c.pipelining && s.now().Sub(c.idleSince) < uncheckedReuse {
			c.raw.watch(ctx)
			c.raw.within(ctx, s.Timeout)
			return c, false, nil
		}
		if err := s.reuse(ctx, c); err == nil {
			return c, true, nil
		}
		// The server hung up while c waited (at its idle limit, or in a
		// restart), or will not go on with it. That is no failed delivery,
		// and no refusal of this message: a new connection takes its
		// place, once.
		c.close()
	}
	c, err = s.connect(ctx)
	return c, true, err
}

// reuse makes sure that an idle connection still answers, within ctx,
// before a message goes on it. A NOOP asks, and nothing more is needed:
// the end of the last message's DATA ended its transaction, so MAIL may
// follow at once. Not a RSET: go-smtp's Reset makes the next command greet
// the server again, and a server may refuse a second EHLO on a connection
// (RFC 5321, 4.1.4), which would then come back as the refusal of the
// message, for good.
//
// The NOOP stands in for connecting and gets DialTimeout, not Timeout: a
// connection that a firewall forgot answers nothing at all, and should not
// cost a whole exchange's time before a new one is dialled.
func (s *SMTP) reuse(ctx context.Context, c *conn) error {
	c.raw.watch(ctx)
	c.raw.within(ctx, s.DialTimeout)
	if err := c.client.Noop(); err != nil {
		return err
	}
	c.raw.within(ctx, s.Timeout)
	return nil
}

// put hands back the connection of an exchange that went through: to the
// idle ones, or closed if the pool was closed meanwhile, or if the
// exchange's context ended and closed it.
func (s *SMTP) put(c *conn) {
	if !c.raw.unwatch() {
		c.close()
		return
	}
	if !s.pool.push(c, s.now) {
		c.quit()
	}
}

// takeIdle returns the most recently used idle connection, unless it has
// waited longer than IdleTimeout; those that have are closed.
func (s *SMTP) takeIdle() *conn {
	expired, c := s.pool.take(s.now(), orDefault(s.IdleTimeout, DefaultIdleTimeout))
	for _, old := range expired {
		// In the background: the delivery need not wait for goodbyes.
		go old.quit()
	}
	return c
}

// Close ends the reuse of connections: it says goodbye on the idle ones,
// and each connection in a delivery closes when its message is through,
// without Close waiting for it. Safe while deliveries run. Deliver still
// works afterwards, each time on a connection of its own, so that a mail
// sent while Caddy unloads a config is not lost to the pool's end.
func (s *SMTP) Close() error {
	var wg sync.WaitGroup
	for _, c := range s.pool.close() {
		wg.Go(c.quit)
	}
	wg.Wait()
	return nil
}

func (s *SMTP) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// slotsOf returns the slots, one for each exchange under way, made n long
// at first use. An exchange holds one while it has a connection, so no
// more than n are ever open: each is in an exchange or idle.
func (p *pool) slotsOf(n int) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots == nil {
		p.slots = make(chan struct{}, n)
	}
	return p.slots
}

// release gives back an exchange's slot, after its connection went back or
// was closed.
func (p *pool) release() {
	<-p.slots
}

// wait adds m to the messages waiting for a connection.
func (p *pool) wait(m *message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = append(p.waiting, m)
}

// withdraw takes m out of the waiting messages, and reports false if an
// exchange had taken it already.
func (p *pool) withdraw(m *message) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.sent {
		return false
	}
	p.waiting = slices.DeleteFunc(p.waiting, func(w *message) bool { return w == m })
	return true
}

// taken reports whether an exchange has taken m.
func (p *pool) taken(m *message) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return m.sent
}

// next takes up to n of the waiting messages, the longest waiting first.
func (p *pool) next(n int) []*message {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.waiting))
	taken := slices.Clone(p.waiting[:n])
	for _, m := range taken {
		m.sent = true
	}
	p.waiting = slices.Delete(p.waiting, 0, n)
	return taken
}

// push adds c to the idle connections, as of now, unless the pool is
// closed.
func (p *pool) push(c *conn, now func() time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	// Under the lock, so that idle is in the order of idleSince.
	c.idleSince = now()
	p.idle = append(p.idle, c)
	return true
}

// take removes and returns the idle connections that have waited longer
// than limit at now, and the most recent of the others, if any.
func (p *pool) take(now time.Time, limit time.Duration) (expired []*conn, c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// idle is in the order of idleSince: the expired ones lead.
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) > limit {
		n++
	}
	expired = append(expired, p.idle[:n]...)
	kept := copy(p.idle, p.idle[n:])
	if kept > 0 {
		kept--
		c = p.idle[kept]
	}
	// The slots past kept must not hold on to connections that left.
	clear(p.idle[kept:])
	p.idle = p.idle[:kept]
	return expired, c
}

// close marks the pool closed and returns the idle connections, for the
// caller to close.
func (p *pool) close() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	return idle
}

// quit says goodbye and closes, within quitTimeout.
func (c *conn) quit() {
	c.raw.within(context.Background(), quitTimeout)
	if c.client.Quit() != nil {
		c.close()
	}
}

// close closes without a word: after an error, or when the server is gone.
func (c *conn) close() {
	_ = c.client.Close()
}
