package caddymodule

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestPortalDirectiveEveryOption(t *testing.T) {
	h, err := parseDirective(`authsession portal {
		prefix /login
		templates /etc/authsession/pages
		title "Example Corp sign-in"
		logo /static/logo.svg
		max_failures 5
		failure_window 10m
		trust_device 7d
	}`)
	if err != nil {
		t.Fatal(err)
	}
	p := h.(*Portal)
	want := Portal{
		Prefix: "/login", Templates: "/etc/authsession/pages", Title: "Example Corp sign-in",
		Logo: "/static/logo.svg", MaxFailures: 5, FailureWindow: caddy.Duration(10 * time.Minute),
		TrustDevice: caddy.Duration(7 * 24 * time.Hour),
	}
	if *p != want {
		t.Fatalf("got %+v, want %+v", *p, want)
	}
	h, err = parseDirective("authsession portal {\ntrust_device off\n}")
	if err != nil || h.(*Portal).TrustDevice >= 0 {
		t.Fatalf("trust_device off: %+v, %v", h, err)
	}
	h, err = parseDirective("authsession portal")
	if err != nil || *h.(*Portal) != (Portal{}) {
		t.Fatalf("bare directive: %+v, %v", h, err)
	}
}

func TestPortalDirectiveRejections(t *testing.T) {
	for _, tt := range []rejection{
		{"argument", "authsession portal /auth", "'/auth'"},
		{"unknown option", "authsession portal {\nskin dark\n}", `"skin"`},
		{"prefix twice", "authsession portal {\nprefix /a\nprefix /b\n}", "prefix given twice"},
		{"prefix missing", "authsession portal {\nprefix\n}", "'prefix'"},
		{"max_failures bad", "authsession portal {\nmax_failures many\n}", `"many"`},
		{"max_failures zero", "authsession portal {\nmax_failures 0\n}", `"0"`},
		{"failure_window bad", "authsession portal {\nfailure_window soon\n}", `"soon"`},
		{"trust_device bad", "authsession portal {\ntrust_device never\n}", `"never"`},
		{"trust_device zero", "authsession portal {\ntrust_device 0s\n}", `"0s"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDirective(tt.input)
			assertRejected(t, err, tt.want)
		})
	}
	if err := (&Portal{Prefix: "auth"}).Validate(); err == nil {
		t.Fatal("relative prefix accepted")
	}
}

// TestCaddyfileExamplePortalBeforeGate: the demo configuration serves the
// sign-in pages at the gate's login_url, ahead of the gate.
func TestCaddyfileExamplePortalBeforeGate(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := adapt(t, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP map[string]any `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var hs []string
	collectHandlers(cfg.Apps.HTTP, &hs)
	portal, gate := indexOf(hs, "authsession_portal"), indexOf(hs, "authsession_gate")
	if portal < 0 || gate < 0 || portal > gate {
		t.Fatalf("handlers %v: want authsession_portal before authsession_gate", hs)
	}
	if !strings.Contains(string(raw), "login_url /auth/login") || !strings.Contains(string(raw), "prefix /auth") {
		t.Fatal("the gate's login_url and the portal's prefix no longer match")
	}
}
