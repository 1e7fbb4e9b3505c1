// Package testsmtp runs a real SMTP server (go-smtp) on loopback for tests:
// it speaks STARTTLS or implicit TLS with a certificate of its own, checks
// AUTH PLAIN, and keeps every message it accepts. It counts the connections
// and TLS handshakes clients make, can hang up on them, and can refuse to
// be greeted twice on one, so that tests can see how a client reuses its
// connections.
package testsmtp

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailgate/caddy-mailgate/internal/testcert"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte
	// Auth is the username the client authenticated as, if any.
	Auth string
}

// Options choose how the server behaves.
type Options struct {
	// TLS is "starttls", "tls" or "none", as in mail.SMTP.
	TLS string
	// Username and Password, if set, are required (AUTH PLAIN).
	Username, Password string
	// RejectRcpt makes every RCPT fail with a permanent error; RejectTo,
	// every RCPT to this address.
	RejectRcpt bool
	RejectTo   string
	// FailFirst makes the first FailFirst RCPTs fail with a temporary
	// error (451), as a server that is briefly unwell: a sender that
	// retries gets its mail through afterwards.
	FailFirst int
	// OneHello makes the server refuse, with a 503, an EHLO or HELO on a
	// connection that was greeted already, as some servers do. It needs
	// TLS "none" (see oneHello).
	OneHello bool
	// Without names extensions, such as PIPELINING or CHUNKING, that the
	// server leaves out of its answer to EHLO, as a server without them
	// would: go-smtp's server offers both, and takes pipelined commands
	// whether or not it offered them. It needs TLS "none" (see without);
	// SIZE and AUTH, which end the answer, cannot be left out.
	Without []string
	// Hold, if not nil, stalls every session at MAIL until it is closed,
	// as a hung server, or lets one MAIL through for each value sent on
	// it; Server.Held tells a test when a session stalls.
	Hold <-chan struct{}
}

// Settle, if set, runs at the start of every Messages call. A test whose
// server sends mail in the background sets it to wait until what was
// queued has been handed over, so that Messages holds the mail the test
// just asked for.
var Settle func()

// Server is a running test server.
type Server struct {
	Addr string
	// RootCAs trusts the server's certificate, and CertPEM is that
	// certificate, for a client configured with a CA file.
	RootCAs *x509.CertPool
	CertPEM []byte

	opts   Options
	srv    *smtp.Server
	held   chan struct{}
	closed chan struct{}
	mu     sync.Mutex
	msgs   []Message
	// failed counts the RCPTs failed for FailFirst.
	failed int
	// accepted and handshakes count connections and TLS handshakes; open
	// holds the connections not closed yet, for HangUp.
	accepted, handshakes int
	open                 map[*conn]struct{}
	// hellos are the names clients greeted the server with.
	hellos []string
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if (opts.OneHello || opts.Without != nil) && opts.TLS != "none" {
		t.Fatal("testsmtp: OneHello and Without need TLS none")
	}
	s := &Server{opts: opts, held: make(chan struct{}, 64), closed: make(chan struct{}, 64), open: map[*conn]struct{}{}}
	cert := testcert.New(t)
	s.RootCAs, s.CertPEM = cert.Roots, cert.CertPEM
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.AllowInsecureAuth = opts.TLS == "none"
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		// Called once per handshake; nil keeps this config.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.handshakes++
			return nil, nil
		},
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Counted below TLS, so that HangUp can close a connection whatever
	// its state.
	var ln net.Listener = &listener{Listener: tcp, srv: s}
	switch opts.TLS {
	case "tls":
		ln = tls.NewListener(ln, tlsConfig)
	case "starttls":
		s.srv.TLSConfig = tlsConfig
	}
	s.Addr = ln.Addr().String()
	go s.srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Messages returns the messages accepted so far, after Settle.
func (s *Server) Messages() []Message {
	if Settle != nil {
		Settle()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Held receives once for each session that Options.Hold stalls, as it
// stalls.
func (s *Server) Held() <-chan struct{} {
	return s.held
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Handshakes returns how many TLS handshakes clients have started, with
// STARTTLS or implicit TLS.
func (s *Server) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// Hellos returns the names clients greeted the server with (EHLO or
// HELO) as they opened a session, in order. STARTTLS ends a session: a
// client that uses it greets twice, before and after.
func (s *Server) Hellos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hellos...)
}

// Closed receives once for each connection that closes, by either side,
// as it closes.
func (s *Server) Closed() <-chan struct{} {
	return s.closed
}

// HangUp closes every open connection, without a word, as a server that
// restarts or drops the connections idle past its limit: a client learns
// of it at its next command.
func (s *Server) HangUp() {
	s.mu.Lock()
	open := make([]*conn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// listener counts and tracks the connections it accepts.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, srv: l.srv}
	l.srv.mu.Lock()
	defer l.srv.mu.Unlock()
	l.srv.accepted++
	l.srv.open[c] = struct{}{}
	var served net.Conn = c
	if l.srv.opts.Without != nil {
		served = &without{Conn: served, exts: l.srv.opts.Without}
	}
	if l.srv.opts.OneHello {
		served = &oneHello{Conn: served, r: bufio.NewReader(served)}
	}
	return served, nil
}

// conn is an accepted connection that leaves Server.open when it closes.
type conn struct {
	net.Conn
	srv  *Server
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.open, c)
		c.srv.mu.Unlock()
		select {
		case c.srv.closed <- struct{}{}:
		default: // nobody is counting that many
		}
	})
	return err
}

// NewSession implements smtp.Backend. go-smtp calls it at the greeting
// that opens a session, with the client's name known.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.hellos = append(s.hellos, c.Hostname())
	s.mu.Unlock()
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv  *Server
	conn *smtp.Conn
	auth string
	msg  Message
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.srv.opts.Username || pass != s.srv.opts.Password {
			return errors.New("invalid credentials")
		}
		s.auth = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.opts.Username != "" && s.auth == "" {
		return smtp.ErrAuthRequired
	}
	if _, isTLS := s.conn.TLSConnectionState(); !isTLS && s.srv.opts.TLS != "none" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "TLS required"}
	}
	if hold := s.srv.opts.Hold; hold != nil {
		select {
		case s.srv.held <- struct{}{}:
		default: // nobody is counting that many
		}
		<-hold
	}
	s.msg = Message{From: from, Auth: s.auth}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.RejectRcpt || to == s.srv.opts.RejectTo && to != "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.srv.mu.Lock()
	fail := s.srv.failed < s.srv.opts.FailFirst
	if fail {
		s.srv.failed++
	}
	s.srv.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = b
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }
