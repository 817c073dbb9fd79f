package delivery

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authsession/caddy-authsession/internal/smtptest"
)

// TestSMTPNotice: a notice is mailed with its own subject and text, not
// the code templates; a malformed one is refused before any connection.
func TestSMTPNotice(t *testing.T) {
	srv := smtptest.Start(t, "", "")
	d, err := NewSMTPDeliverer(SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: SMTPTLSNone, From: "auth@example.com",
		Subject: "Code {{.Code}}", Body: "code {{.Code}}",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Deliver(ctx, Notice("alice@example.com", "alice", "Security notice", "A passkey was added.")); err != nil {
		t.Fatal(err)
	}
	m, err := srv.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Data, "Subject: Security notice") || !strings.Contains(m.Data, "A passkey was added.") ||
		strings.Contains(m.Data, "code ") || m.To[0] != "alice@example.com" {
		t.Fatalf("mail:\n%s", m.Data)
	}
	for name, n := range map[string]Message{
		"with a code":     {Kind: KindNotice, Channel: ChannelEmail, To: "a@example.com", Subject: "s", Text: "t", Code: "123456"},
		"no text":         Notice("a@example.com", "a", "s", ""),
		"no subject":      Notice("a@example.com", "a", "", "t"),
		"subject on two":  Notice("a@example.com", "a", "s\r\nBcc: x@example.com", "t"),
		"text too long":   Notice("a@example.com", "a", "s", strings.Repeat("x", MaxNoticeText+1)),
		"not an address:": Notice("not an address", "a", "s", "t"),
	} {
		if err := d.Deliver(ctx, n); err == nil || !isPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if n := len(srv.Mails()); n != 1 {
		t.Fatalf("%d mails sent, want 1", n)
	}
}

// TestWebhookNotice: a notice reaches the webhook as kind "notice" with
// its text and no otp.
func TestWebhookNotice(t *testing.T) {
	var got map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &got)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	d, err := NewWebhookDeliverer(WebhookConfig{URL: recv.URL, Secret: "hook-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Deliver(context.Background(), Notice("a@example.com", "alice", "Security notice", "A passkey was added.")); err != nil {
		t.Fatal(err)
	}
	if got["kind"] != KindNotice || got["text"] != "A passkey was added." || got["subject"] != "Security notice" || got["otp"] != "" {
		t.Fatalf("payload %v", got)
	}
	bad := Notice("a@example.com", "alice", "s", "t")
	bad.Code = "123456"
	if err := d.Deliver(context.Background(), bad); err == nil || !isPermanent(err) {
		t.Fatal("a notice with a code was posted")
	}
}

// TestLogDelivererNotice: a notice in the log names no code and is not
// marked unsafe.
func TestLogDelivererNotice(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	if err := (LogDeliverer{Logger: zap.New(core)}).Deliver(context.Background(), Notice("a@example.com", "alice", "Security notice", "t")); err != nil {
		t.Fatal(err)
	}
	e := logs.All()
	if len(e) != 1 || e[0].ContextMap()["unsafe"] != nil || e[0].ContextMap()["otp"] != nil {
		t.Fatalf("log %v", e)
	}
}
