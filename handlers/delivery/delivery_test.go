package delivery

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authsession/caddy-authsession/internal/smtptest"
	"github.com/authsession/caddy-authsession/internal/testkit"
)

var codeRE = regexp.MustCompile(`one-time code is ([0-9]+)`)

func testMessage() Message {
	return Message{
		Channel: ChannelEmail, To: "alice@example.com", Login: "alice", Code: "428135",
		ExpiresAt: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC),
	}
}

func TestSMTPDeliverer(t *testing.T) {
	srv := smtptest.Start(t, "mailer", "s3cret")
	d, err := NewSMTPDeliverer(SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: SMTPTLSNone, Username: "mailer", Password: "s3cret",
		From: "Auth <auth@example.com>", Subject: "Code for {{.Login}}",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAsync(d, AsyncOptions{Backoff: 10 * time.Millisecond}, nil)
	defer a.Close()
	if err := a.Deliver(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := srv.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "auth@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" || m.User != "mailer" {
		t.Fatalf("envelope %+v", m)
	}
	got := codeRE.FindStringSubmatch(m.Data)
	if got == nil || got[1] != "428135" {
		t.Fatalf("no code in mail:\n%s", m.Data)
	}
	if !strings.Contains(m.Data, "Subject: Code for alice") || !strings.Contains(m.Data, "2026-03-01T12:05:00Z") {
		t.Fatalf("subject or expiry missing:\n%s", m.Data)
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	srv := smtptest.Start(t, "mailer", "s3cret")
	d, err := NewSMTPDeliverer(SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: SMTPTLSNone,
		Username: "mailer", Password: "wrong-password", From: "auth@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Deliver(context.Background(), testMessage())
	if err == nil {
		t.Fatal("delivery with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "428135") {
		t.Fatalf("error leaks a secret: %v", err)
	}
	if len(srv.Mails()) != 0 {
		t.Fatal("mail accepted without authentication")
	}
}

func TestSMTPDownFailsFast(t *testing.T) {
	d, err := NewSMTPDeliverer(SMTPConfig{Host: "127.0.0.1", Port: testkit.FreePort(), TLS: SMTPTLSNone, From: "auth@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	// Wait is long: the answer must come from the failed attempts, not
	// from the wait running out.
	a := NewAsync(d, AsyncOptions{Attempts: 3, Backoff: 5 * time.Millisecond, Wait: time.Minute}, zap.New(core))
	defer a.Close()
	err = a.Deliver(context.Background(), testMessage())
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrTimeout) {
		t.Fatalf("error = %v, want a delivery failure", err)
	}
	if n := logs.FilterMessage("otp delivery attempt failed").Len(); n != 3 {
		t.Fatalf("%d attempts logged, want 3", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "428135") || (f.Interface != nil && strings.Contains(errString(f.Interface), "428135")) {
				t.Fatalf("code logged: %v", e)
			}
		}
	}
}

func errString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return ""
}

// TestSMTPHangingServerDoesNotBlock: a server that accepts connections and
// never speaks costs the caller at most Wait; Close ends the background try.
func TestSMTPHangingServerDoesNotBlock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { ; <-stop; c.Close() })
		}
	}()
	defer func() { close(stop); l.Close(); conns.Wait() }()
	d, err := NewSMTPDeliverer(SMTPConfig{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port,
		TLS: SMTPTLSNone, From: "auth@example.com", Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAsync(d, AsyncOptions{Attempts: 1, AttemptTimeout: time.Minute, Wait: 50 * time.Millisecond}, nil)
	err = a.Deliver(context.Background(), testMessage())
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrFailed) {
		t.Fatalf("error = %v, want a delivery timeout", err)
	}
	a.Close() // cancels the attempt; returns only once it has ended
}

func TestSMTPConfigErrors(t *testing.T) {
	for _, cfg := range []SMTPConfig{
		{From: "a@example.com"},
		{Host: "h"},
		{Host: "h", From: "not an address"},
		{Host: "h", From: "a@example.com", TLS: "ssl"},
		{Host: "h", From: "a@example.com", Port: 70000},
		{Host: "h", From: "a@example.com", Body: "{{.Code"},
		{Host: "h", From: "a@example.com", Subject: "{{.Nope}}"},
	} {
		if _, err := NewSMTPDeliverer(cfg); err == nil {
			t.Errorf("NewSMTPDeliverer(%+v) accepted", cfg)
		}
	}
	d, err := NewSMTPDeliverer(SMTPConfig{Host: "h", From: "a@example.com", TLS: SMTPTLSImplicit})
	if err != nil || d.cfg.Port != 465 {
		t.Fatalf("tls default port: %v %v", d, err)
	}
	err = d.Deliver(context.Background(), Message{To: "not an address", Code: "1"})
	if err == nil || !isPermanent(err) {
		t.Fatalf("bad destination: %v", err)
	}
}

func TestWebhookDeliverer(t *testing.T) {
	var calls atomic.Int32
	var got WebhookPayload
	status := http.StatusNoContent
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		want := Sign([]byte("hook-secret"), body)
		if !hmac.Equal([]byte(r.Header.Get(SignatureHeader)), []byte(want)) || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	defer recv.Close()

	d, err := NewWebhookDeliverer(WebhookConfig{URL: recv.URL + "/sms", Secret: "hook-secret"})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAsync(Router{SMS: d}, AsyncOptions{Attempts: 3, Backoff: time.Millisecond}, nil)
	defer a.Close()
	m := testMessage()
	m.Channel, m.To = ChannelSMS, "+15555550100"
	if err := a.Deliver(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.OTP != "428135" || got.To != "+15555550100" || got.Channel != ChannelSMS || !got.ExpiresAt.Equal(m.ExpiresAt) {
		t.Fatalf("payload %+v", got)
	}

	// A wrong secret is refused by the receiver: permanent, one call.
	bad, _ := NewWebhookDeliverer(WebhookConfig{URL: recv.URL, Secret: "other"})
	calls.Store(0)
	ab := NewAsync(bad, AsyncOptions{Attempts: 3, Backoff: time.Millisecond}, nil)
	defer ab.Close()
	if err := ab.Deliver(context.Background(), m); !errors.Is(err, ErrFailed) || calls.Load() != 1 {
		t.Fatalf("wrong secret: %v after %d calls", err, calls.Load())
	}

	// A 5xx is retried up to Attempts.
	status = http.StatusBadGateway
	calls.Store(0)
	if err := a.Deliver(context.Background(), m); !errors.Is(err, ErrFailed) || calls.Load() != 3 {
		t.Fatalf("5xx: %v after %d calls", err, calls.Load())
	}
}

func TestWebhookErrorsHideURL(t *testing.T) {
	url := "http://127.0.0.1:" + strconv.Itoa(testkit.FreePort()) + "/hook/TOKEN-abc123"
	d, err := NewWebhookDeliverer(WebhookConfig{URL: url, Secret: "x"})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Deliver(context.Background(), testMessage())
	if err == nil || strings.Contains(err.Error(), "TOKEN-abc123") {
		t.Fatalf("error = %v", err)
	}
	for _, cfg := range []WebhookConfig{{URL: "ftp://x/TOKEN", Secret: "x"}, {URL: "http://x"}, {URL: "::", Secret: "x"}} {
		_, err := NewWebhookDeliverer(cfg)
		if err == nil || strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("NewWebhookDeliverer(%+v): %v", cfg, err)
		}
	}
}

func TestRouterMissingChannelIsPermanent(t *testing.T) {
	var n atomic.Int32
	counting := delivererFunc(func(context.Context, Message) error { n.Add(1); return nil })
	r := Router{Email: counting}
	if !r.Has(ChannelEmail) || r.Has(ChannelSMS) || r.Has("fax") {
		t.Fatal("Has")
	}
	a := NewAsync(r, AsyncOptions{Attempts: 5, Backoff: time.Millisecond}, nil)
	defer a.Close()
	m := testMessage()
	m.Channel = ChannelSMS
	if err := a.Deliver(context.Background(), m); !errors.Is(err, ErrNoChannel) || !errors.Is(err, ErrFailed) {
		t.Fatalf("error = %v", err)
	}
	if err := a.Deliver(context.Background(), testMessage()); err != nil || n.Load() != 1 {
		t.Fatalf("email: %v, %d calls", err, n.Load())
	}
}

func TestAsyncCallerContext(t *testing.T) {
	block := make(chan struct{})
	d := delivererFunc(func(ctx context.Context, _ Message) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	a := NewAsync(d, AsyncOptions{Attempts: 1, Wait: time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Deliver(ctx, testMessage()); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrFailed) {
		t.Fatalf("error = %v", err)
	}
	close(block)
	a.Close()
}

type delivererFunc func(context.Context, Message) error

func (f delivererFunc) Deliver(ctx context.Context, m Message) error { return f(ctx, m) }

func TestLogDeliverer(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	if err := (LogDeliverer{Logger: zap.New(core)}).Deliver(context.Background(), testMessage()); err != nil {
		t.Fatal(err)
	}
	es := logs.All()
	if len(es) != 1 || es[0].Level != zapcore.WarnLevel {
		t.Fatalf("entries %+v", es)
	}
	f := es[0].ContextMap()
	if f["otp"] != "428135" || f["unsafe"] != true {
		t.Fatalf("fields %v", f)
	}
}
