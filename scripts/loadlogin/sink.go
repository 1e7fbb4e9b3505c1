package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is the mail server Caddy delivers to: go-smtp with STARTTLS and
// AUTH PLAIN, as a real relay would ask for, so that a login's mail costs
// Caddy what it costs in production. It keeps no message: it takes the
// login link out of each one and hands it to whoever waits for mail to that
// address.
type sink struct {
	addr string
	// caPEM is the certificate Caddy must trust (its smtp ca_file).
	caPEM []byte
	// linkPrefix is how every login link begins: the site's base URL and
	// the link page's path.
	linkPrefix []byte
	user, pass string

	srv *smtp.Server
	// waiting maps an address to the channel its next link goes to.
	waiting sync.Map
	// mails counts the messages accepted; noLink those without a link.
	mails, noLink atomic.Int64
}

// startSink starts a sink on a free loopback port.
func startSink(linkPrefix, user, pass string) (*sink, error) {
	cert, caPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s := &sink{caPEM: caPEM, linkPrefix: []byte(linkPrefix), user: user, pass: pass}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	go s.srv.Serve(ln) //nolint:errcheck // ends with close
	return s, nil
}

func (s *sink) close() { _ = s.srv.Close() }

// expect registers ch for the next link mailed to addr: the caller
// registers before it asks for the mail, so that no mail can come first.
func (s *sink) expect(addr string, ch chan string) { s.waiting.Store(addr, ch) }

// forget drops a registration whose mail never came.
func (s *sink) forget(addr string) { s.waiting.Delete(addr) }

// NewSession implements smtp.Backend.
func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }

type sinkSession struct {
	sink *sink
	auth bool
	to   string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.sink.user || pass != ss.sink.pass {
			return errors.New("invalid credentials")
		}
		ss.auth = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if !ss.auth {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = to
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.sink.deliver(ss.to, data)
	return nil
}

func (ss *sinkSession) Reset()        { ss.to = "" }
func (ss *sinkSession) Logout() error { return nil }

// deliver counts a message and hands its link to the one waiting for it.
func (s *sink) deliver(to string, data []byte) {
	s.mails.Add(1)
	link := findLink(data, s.linkPrefix)
	if link == "" {
		s.noLink.Add(1)
		return
	}
	if ch, ok := s.waiting.LoadAndDelete(to); ok {
		ch.(chan string) <- link
	}
}

// findLink returns the first link in data that starts with prefix, as its
// reader would see it: the text part comes first, and is quoted-printable
// (the link's "=" is "=3D", and a long link is broken with soft line
// breaks). The prefix itself has nothing to encode.
func findLink(data, prefix []byte) string {
	i := bytes.Index(data, prefix)
	if i < 0 {
		return ""
	}
	r := bufio.NewReader(quotedprintable.NewReader(bytes.NewReader(data[i:])))
	var link []byte
	for {
		b, err := r.ReadByte()
		if err != nil || bytes.IndexByte([]byte(" \t\r\n\"<>"), b) >= 0 {
			return string(link)
		}
		link = append(link, b)
	}
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "loadlogin sink"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
