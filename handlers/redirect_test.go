package handlers

import (
	"net/url"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

func TestSafeRedirect(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"/", true},
		{"/app", true},
		{"/app/page?x=1&next=%2F%2Fevil.example", true},
		{"/app#frag", true},
		{"/%2F%2Fevil.example", true}, // a path on this origin, not a host
		{"/%5Cevil.example", true},
		{"", false},
		{"app", false},
		{"./app", false},
		{"//evil.example", false},
		{"//evil.example/app", false},
		{"///evil.example", false},
		{"/\\evil.example", false},
		{"\\\\evil.example", false},
		{"/app\\..\\..\\evil", false},
		{"http://evil.example", false},
		{"https://evil.example/app", false},
		{"HTTP://evil.example", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"/\t/evil.example", false},
		{"/\n/evil.example", false},
		{"/\r\nLocation: http://evil.example", false},
		{"/\x00", false},
		{"/\x7f", false},
		{" /app", false},
		{"/%", false}, // not a valid URL
		{"/\x1b[31m", false},
	}
	for _, tt := range tests {
		if got := SafeRedirect(tt.target); got != tt.ok {
			t.Errorf("SafeRedirect(%q) = %v, want %v", tt.target, got, tt.ok)
		}
	}
}

func TestLoginRedirect(t *testing.T) {
	tests := []struct {
		login, target, want string
	}{
		{"/auth/login", "/app?x=1", "/auth/login?redirect=%2Fapp%3Fx%3D1"},
		{"/auth/login", "//evil.example", "/auth/login"},
		{"/auth/login", "http://evil.example/", "/auth/login"},
		{"/auth/login?lang=fr", "/a", "/auth/login?lang=fr&redirect=%2Fa"},
		{"/auth/login?redirect=%2Fevil", "/a", "/auth/login?redirect=%2Fa"},
		{"https://sso.example.com/login", "/a", "https://sso.example.com/login?redirect=%2Fa"},
	}
	for _, tt := range tests {
		got := LoginRedirect(tt.login, tt.target)
		if got != tt.want {
			t.Errorf("LoginRedirect(%q, %q) = %q, want %q", tt.login, tt.target, got, tt.want)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		if r := u.Query().Get("redirect"); r != "" && !SafeRedirect(r) {
			t.Errorf("LoginRedirect(%q, %q) carries an unsafe redirect %q", tt.login, tt.target, r)
		}
	}
}

func TestFieldValue(t *testing.T) {
	auth := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := &state.Session{
		UserID: "alice", LoginName: "alice.smith", GroupName: "staff",
		Status: state.StatusAuthenticated, IDStoreName: "LDAP", AuthTime: auth,
		Factors: []string{"ChallengeEmail", "ChallengeOMATOTP"}, Index: "idx",
		UserAttributes: map[string]string{"mail": "alice@example.com"},
	}
	tests := map[string]string{
		"user_id":       "alice",
		"login":         "alice.smith",
		"group":         "staff",
		"status":        "authenticated",
		"id_store":      "LDAP",
		"auth_time":     "2026-11-22T10:00:00Z",
		"factors":       "ChallengeEmail,ChallengeOMATOTP",
		"session_index": "idx",
		"attr.mail":     "alice@example.com",
		"attr.phone":    "",
	}
	for f, want := range tests {
		if !ValidField(f) {
			t.Errorf("ValidField(%q) = false", f)
		}
		if got := FieldValue(s, f); got != want {
			t.Errorf("FieldValue(%q) = %q, want %q", f, got, want)
		}
	}
	s.LoginName = ""
	if got := FieldValue(s, "login"); got != "alice" {
		t.Errorf("login falls back to the user id: got %q", got)
	}
	for _, f := range []string{"", "attr.", "id", "session_id", "sealed", "USER_ID", "password"} {
		if ValidField(f) {
			t.Errorf("ValidField(%q) = true", f)
		}
		if got := FieldValue(s, f); got != "" {
			t.Errorf("FieldValue(%q) = %q", f, got)
		}
	}
}
