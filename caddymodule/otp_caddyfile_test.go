package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseOTPBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`authsession {
		users_file /etc/caddy/users.json
		otp {
			digits 8
			lifetime 10m
			max_attempts 3
			cooldown 1m
			sends_per_hour 4
			expose_otp off
			key {env.OTP_KEY}
			totp_issuer "Example Co"
			delivery_timeout 3s
			delivery_attempts 2
			log_delivery
			smtp {
				host smtp.example.com
				port 2525
				tls tls
				username u
				password {env.SMTP_PASSWORD}
				from "Login <login@example.com>"
				subject "Code {{.Code}}"
				body "Your code: {{.Code}}"
			}
			webhook https://sms.example.com/hook {env.HOOK_SECRET}
		}
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	o := a.OTP
	if a.UsersFile != "/etc/caddy/users.json" || o.Digits != 8 || o.MaxAttempts != 3 || o.SendsPerHour != 4 ||
		o.ExposeOTP == nil || *o.ExposeOTP || o.Key != "{env.OTP_KEY}" || o.TOTPIssuer != "Example Co" ||
		o.DeliveryAttempts != 2 || !o.LogDelivery || o.Webhook.URL != "https://sms.example.com/hook" ||
		o.SMTP.Port != 2525 || o.SMTP.TLS != "tls" || o.SMTP.From != "Login <login@example.com>" ||
		o.SMTP.Subject != "Code {{.Code}}" || o.SMTP.Password != "{env.SMTP_PASSWORD}" {
		t.Fatalf("parsed %+v smtp %+v", o, o.SMTP)
	}
}

func TestParseOTPRejections(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"otp {\ndigits six\n}", "positive integer"},
		{"otp {\ndigits 6\ndigits 6\n}", "given twice"},
		{"otp {\nexpose_otp maybe\n}", "on or off"},
		{"otp {\ncolour blue\n}", "unrecognized otp option"},
		{"otp {\nwebhook https://x\n}", "webhook needs"},
		{"otp {\nsmtp {\nhost h\n}\n}", "host and from"},
		{"otp {\nsmtp {\nhost h\nfrom a@b\ntls ssl\n}\n}", "none, starttls or tls"},
		{"otp {\nsmtp {\nhost h\nfrom a@b\nhue 1\n}\n}", "unrecognized smtp option"},
		{"otp {\nlifetime 0s\n}", "positive"},
		{"otp extra", "wrong argument count"},
	} {
		d := caddyfile.NewTestDispenser("authsession {\n" + tt.in + "\n}")
		err := new(App).UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}
