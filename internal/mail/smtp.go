package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes for an SMTP connection.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS; required, never optional
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no encryption: loopback relays only
)

// SMTP delivers messages to one SMTP server. It keeps the connections it
// opens and reuses them (see pool.go): a message on a reused connection
// costs neither a TCP nor a TLS handshake nor an AUTH, at most a NOOP.
// Fields must not change after the first Deliver; Close ends the reuse.
type SMTP struct {
	Addr     string
	TLS      string
	Username string
	Password string
	// DialTimeout bounds connecting (and the TLS handshake), or making
	// sure that a reused connection still answers; Timeout bounds the rest
	// of the exchange of each message.
	DialTimeout time.Duration
	Timeout     time.Duration
	// MaxConns bounds the connections open at once, which the messages
	// delivered at once share (see Deliver); 0 means DefaultMaxConns.
	MaxConns int
	// IdleTimeout is how long a connection may wait for its next message:
	// one that waited longer is closed rather than reused. 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Now is the clock that idle time is measured with; nil means
	// time.Now. Tests set it, to age connections without waiting.
	Now func() time.Time
	// TLSConfig, if set, replaces the default verification: its RootCAs
	// trust a private CA, for this server only.
	TLSConfig *tls.Config
	// LocalName is the name the server is greeted with (EHLO), before
	// STARTTLS too; empty means localhost. Some servers refuse a client
	// that calls itself localhost.
	LocalName string

	pool pool
}

// errNoSMTPUTF8 is why a message to or from an address that is not ASCII
// cannot go through a server that does not offer SMTPUTF8 (RFC 6531): the
// address can only be sent with it, and the server will not offer it on a
// later attempt either.
var errNoSMTPUTF8 = errors.New("an address is not ASCII and the mail server does not offer SMTPUTF8")

// isASCII reports whether s is ASCII, as an address must be for a server
// that does not offer SMTPUTF8.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Check connects as a delivery would (TLS as configured, EHLO, AUTH) and
// says goodbye without sending anything, so that a wrong address, port, TLS
// mode or password shows before anyone tries to log in. It uses a
// connection of its own, never one of the pool's: what it checks is that a
// new one can be made.
func (s *SMTP) Check(ctx context.Context) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	return c.client.Quit()
}

// connect opens a connection for a delivery: dialled, with TLS as
// configured, greeted and authenticated. The greeting is explicit, not
// left to go-smtp's first command, so that a failed one is a failed
// connection, and the server's extensions are known before a message is.
func (s *SMTP) connect(ctx context.Context) (*conn, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.client.Hello(s.localName()); err != nil {
		c.close()
		return nil, fmt.Errorf("mail: greeting %s: %w", s.Addr, err)
	}
	if s.Username != "" {
		if err := c.client.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			c.close()
			return nil, fmt.Errorf("mail: authenticating to %s as %s: %w", s.Addr, s.Username, err)
		}
	}
	// Known once greeted; after STARTTLS, what the server offered in the
	// clear no longer counts, and this is the greeting through TLS.
	c.pipelining, _ = c.client.Extension("PIPELINING")
	c.chunking, _ = c.client.Extension("CHUNKING")
	c.eightBit, _ = c.client.Extension("8BITMIME")
	c.smtpUTF8, _ = c.client.Extension("SMTPUTF8")
	return c, nil
}

// localName is the name the server is greeted with.
func (s *SMTP) localName() string {
	if s.LocalName == "" {
		return "localhost"
	}
	return s.LocalName
}

// dial connects, with TLS as configured, for one exchange within ctx (see
// deadlineConn.watch). Its errors name what failed: connecting, STARTTLS
// or the TLS handshake.
func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
	}
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = host
	}
	tlsConfig.MinVersion = tls.VersionTLS12

	dctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
	}
	dc := &deadlineConn{Conn: nc, release: stopNothing}
	dc.watch(ctx)
	dc.within(ctx, s.Timeout)

	var sc net.Conn
	switch s.TLS {
	case TLSStartTLS:
		// startTLS fails when the server does not offer STARTTLS: we never
		// fall back to sending in the clear.
		sc, err = s.startTLS(ctx, dc, tlsConfig)
	case TLSImplicit:
		sc, err = s.handshake(ctx, dc, tlsConfig)
	case TLSNone:
		sc = dc
	default:
		err = fmt.Errorf("mail: unknown tls mode %q", s.TLS)
	}
	if err != nil {
		dc.Close()
		return nil, err
	}
	return &conn{client: smtp.NewClient(sc), raw: dc, text: textproto.NewConn(sc)}, nil
}

// handshake secures nc with TLS, within DialTimeout, at once rather than
// at its first read or write: a certificate that is not trusted for the
// server is then reported as such, not as the failure of whichever command
// came first.
func (s *SMTP) handshake(ctx context.Context, nc net.Conn, config *tls.Config) (*tls.Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	tc := tls.Client(nc, config)
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("mail: TLS handshake with %s: %w", s.Addr, err)
	}
	return tc, nil
}

// deadlineConn never lets a deadline run past limit, and is closed when
// the context of the exchange under way ends. A pooled connection lives
// through many exchanges: each sets its own limit and context.
type deadlineConn struct {
	net.Conn
	limit time.Time
	// release stops watching the context of the exchange under way.
	release func() bool
}

// watch closes the connection if ctx ends before unwatch: deadlines do
// not end with ctx, and closing is what cuts off an exchange with a hung
// server when a queue stops.
func (c *deadlineConn) watch(ctx context.Context) {
	c.release = context.AfterFunc(ctx, func() { _ = c.Conn.Close() })
}

// unwatch stops watching the context of the exchange that ended, so that a
// context that is over neither closes the connection while it waits in
// the pool nor keeps it referenced. It reports false if the context ended
// first and closed the connection.
func (c *deadlineConn) unwatch() bool {
	ok := c.release()
	c.release = stopNothing
	return ok
}

// within limits what follows to d from now, or to ctx's deadline if that
// comes first. go-smtp sets a deadline per command; clamping them bounds
// the whole exchange, so that a server that stalls mid-way cannot hold a
// login open.
func (c *deadlineConn) within(ctx context.Context, d time.Duration) {
	c.limit = time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(c.limit) {
		c.limit = dl
	}
	_ = c.Conn.SetDeadline(c.limit)
}

// stopNothing is the release of a connection no context watches.
func stopNothing() bool { return false }

// Close implements net.Conn; it also stops watching the context, which
// would otherwise keep the connection referenced as long as it lives.
func (c *deadlineConn) Close() error {
	c.release()
	return c.Conn.Close()
}

func (c *deadlineConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}
func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}
