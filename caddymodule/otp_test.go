package caddymodule

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
)

func TestProvisionOTP(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"users":[{"id":"a"}]}`), 0o600)
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"users":[{"id":"a","login":"a","mail":"a@example.com"}]}`), 0o600)
	tests := []struct {
		name  string
		users string
		otp   OTPConfig
		want  string
	}{
		{"missing users file", filepath.Join(dir, "none.json"), OTPConfig{Key: key}, "none.json"},
		{"bad users file", bad, OTPConfig{Key: key}, "bad.json"},
		{"digits", "", OTPConfig{Key: key, Digits: 3}, "digits"},
		{"bad key", "", OTPConfig{Key: "nope"}, "otp key"},
		{"smtp tls", "", OTPConfig{Key: key, SMTP: &SMTPConfig{Host: "h", From: "a@b.c", TLS: "ssl"}}, "tls mode"},
		{"webhook secret", "", OTPConfig{Key: key, Webhook: &WebhookConfig{URL: "https://x"}}, "secret"},
		{"ok", good, OTPConfig{Key: key, Lifetime: caddy.Duration(time.Minute), LogDelivery: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{UsersFile: tt.users, OTP: &tt.otp, logger: zap.NewNop(), BlockDuration: caddy.Duration(time.Minute)}
			err := a.provisionOTP(caddy.NewReplacer())
			defer a.cleanupOTP()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !a.otp.expose || a.otp.policy.Lifetime != time.Minute || a.otp.policy.BlockFor != time.Minute ||
					a.otp.users.Len() != 1 || a.otp.async == nil {
					t.Fatalf("runtime %+v", a.otp)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
