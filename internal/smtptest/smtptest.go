// Package smtptest runs a real SMTP server on a free loopback port for
// tests: it accepts every message (optionally only after PLAIN
// authentication) and hands the messages to the test.
package smtptest

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the server received.
type Mail struct {
	From string
	To   []string
	// Data is the raw message: headers and body.
	Data string
	// User is the authenticated username, if any.
	User string
}

// Server is a running test SMTP server.
type Server struct {
	// Host and Port are where it listens (127.0.0.1 and a free port).
	Host string
	Port int

	srv      *smtp.Server
	username string
	password string

	mu    sync.Mutex
	mails []Mail
	ch    chan Mail
}

// Start starts a server; t.Cleanup stops it. With a non-empty username the
// server offers PLAIN authentication and refuses mail without it.
func Start(t testing.TB, username, password string) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s := &Server{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port,
		username: username, password: password, ch: make(chan Mail, 64),
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	go func() { _ = s.srv.Serve(l) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Mails returns the messages received so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Next waits for the next message, at most until ctx ends.
func (s *Server) Next(ctx context.Context) (Mail, error) {
	select {
	case m := <-s.ch:
		return m, nil
	case <-ctx.Done():
		return Mail{}, errors.New("smtptest: no mail received")
	}
}

// Close stops the server: later connections are refused.
func (s *Server) Close() error { return s.srv.Close() }

type session struct {
	s    *Server
	user string
	mail Mail
}

func (se *session) AuthMechanisms() []string {
	if se.s.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != se.s.username || password != se.s.password {
			return errors.New("invalid username or password")
		}
		se.user = username
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.username != "" && se.user == "" {
		return smtp.ErrAuthRequired
	}
	se.mail = Mail{From: from, User: se.user}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.mail.To = append(se.mail.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.mail.Data = string(b)
	se.s.mu.Lock()
	se.s.mails = append(se.s.mails, se.mail)
	se.s.mu.Unlock()
	select {
	case se.s.ch <- se.mail:
	default:
	}
	return nil
}

func (se *session) Reset()        { se.mail = Mail{} }
func (se *session) Logout() error { return nil }

var _ smtp.AuthSession = (*session)(nil)
