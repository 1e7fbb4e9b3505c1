package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes for an SMTP connection.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS; required, never optional
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no encryption: loopback relays only
)

// SMTP delivers messages to one SMTP server, one connection per message.
type SMTP struct {
	Addr     string
	TLS      string
	Username string
	Password string
	// DialTimeout bounds connecting (and the TLS handshake); Timeout bounds
	// the whole exchange after that.
	DialTimeout time.Duration
	Timeout     time.Duration
	// TLSConfig, if set, replaces the default verification (tests use it
	// to trust their own CA).
	TLSConfig *tls.Config
}

// Deliver implements Transport.
func (s *SMTP) Deliver(ctx context.Context, from, to string, msg []byte) error {
	c, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
	}
	defer c.Close()
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return fmt.Errorf("mail: authenticating to %s as %s: %w", s.Addr, s.Username, err)
		}
	}
	if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("mail: sending through %s: %w", s.Addr, err)
	}
	// The message is accepted once DATA is; a failed QUIT loses nothing.
	_ = c.Quit()
	return nil
}

// Check connects as a delivery would (TLS as configured, EHLO, AUTH) and
// says goodbye without sending anything, so that a wrong address, port, TLS
// mode or password shows before anyone tries to log in.
func (s *SMTP) Check(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("mail: connecting to %s: %w", s.Addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("mail: greeting %s: %w", s.Addr, err)
	}
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return fmt.Errorf("mail: authenticating to %s as %s: %w", s.Addr, s.Username, err)
		}
	}
	return c.Quit()
}

func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, err
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
	var conn net.Conn
	if s.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(dctx, "tcp", s.Addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(dctx, "tcp", s.Addr)
	}
	if err != nil {
		return nil, err
	}
	// go-smtp sets a deadline per command; clamping them bounds the whole
	// exchange, so a server that stalls mid-way cannot hold a login open.
	limit := time.Now().Add(s.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(limit) {
		limit = d
	}
	dc := &deadlineConn{Conn: conn, limit: limit}
	// Deadlines do not end with ctx: closing the connection does, so that
	// a queue that stops can cut off an exchange with a hung server.
	dc.release = context.AfterFunc(ctx, func() { _ = dc.Conn.Close() })
	conn = dc
	_ = conn.SetDeadline(limit)

	switch s.TLS {
	case TLSStartTLS:
		// NewClientStartTLS fails when the server does not offer STARTTLS:
		// we never fall back to sending in the clear.
		return smtp.NewClientStartTLS(conn, tlsConfig)
	case TLSImplicit, TLSNone:
		return smtp.NewClient(conn), nil
	default:
		conn.Close()
		return nil, fmt.Errorf("unknown tls mode %q", s.TLS)
	}
}

// deadlineConn never lets a deadline run past limit, and is closed when
// the context it was dialled with ends.
type deadlineConn struct {
	net.Conn
	limit time.Time
	// release stops watching the context.
	release func() bool
}

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
