package handlers

import (
	"crypto/sha256"
	"net/http/httptest"
	"testing"
)

func TestBasicAuth(t *testing.T) {
	a := testAuth()
	tests := []struct {
		name, user, pass string
		set, ok          bool
	}{
		{"good", apiUser, apiPass, true, true},
		{"good again (cached)", apiUser, apiPass, true, true},
		{"wrong password after a good one", apiUser, apiPass + "x", true, false},
		{"password prefix", apiUser, apiPass[:5], true, false},
		{"unknown user with a known password", "root", apiPass, true, false},
		{"user name case", "Admin", apiPass, true, false},
		{"no header", "", "", false, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.set {
			r.SetBasicAuth(tt.user, tt.pass)
		}
		user, ok := a.Check(r)
		if ok != tt.ok || ok && user != tt.user || !ok && user != "" {
			t.Errorf("%s: Check = %q, %v", tt.name, user, ok)
		}
	}
	if a.Empty() || !NewBasicAuth(nil).Empty() || !(*BasicAuth)(nil).Empty() {
		t.Error("Empty is wrong")
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(apiUser, apiPass)
	if _, ok := NewBasicAuth(nil).Check(r); ok {
		t.Error("a checker with no users accepted a request")
	}
}

func TestBearerAuth(t *testing.T) {
	b := NewBearerAuth([][32]byte{sha256.Sum256([]byte("demo-token")), sha256.Sum256([]byte("other"))})
	for h, want := range map[string]bool{
		"Bearer demo-token":   true,
		"bearer demo-token":   true,
		"Bearer other":        true,
		"Bearer  demo-token ": true,
		"Bearer demo-tokenx":  false,
		"Bearer demo":         false,
		"Basic demo-token":    false,
		"demo-token":          false,
		"Bearer ":             false,
		"":                    false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := b.Check(r); got != want {
			t.Errorf("Authorization %q: %v, want %v", h, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer demo-token")
	if NewBearerAuth(nil).Check(r) || !NewBearerAuth(nil).Empty() {
		t.Error("a checker with no tokens accepted a request")
	}
}
