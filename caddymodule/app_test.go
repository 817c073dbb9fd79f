package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestDecodeKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := decodeKey(enc.EncodeToString(key))
		if err != nil || string(got) != string(key) {
			t.Errorf("decodeKey(%s) = %x, %v", enc.EncodeToString(key), got, err)
		}
	}
	for in, want := range map[string]string{
		base64.StdEncoding.EncodeToString(key[:16]): "32 bytes, got 16",
		"not base64 at all!":                        "not base64",
		"":                                          "32 bytes, got 0",
	} {
		_, err := decodeKey(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeKey(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestBasicUsers(t *testing.T) {
	t.Setenv("AUTHSESSION_TEST_HASH", testHash)
	repl := caddy.NewReplacer()
	a := &App{APIUsers: []APIUser{{Username: "admin", PasswordHash: "{env.AUTHSESSION_TEST_HASH}"}}}
	users, err := a.basicUsers(repl)
	if err != nil || string(users["admin"]) != testHash {
		t.Fatalf("basicUsers = %v, %v", users, err)
	}
	for name, tt := range map[string]struct {
		users []APIUser
		want  string
	}{
		"not bcrypt": {[]APIUser{{Username: "admin", PasswordHash: "admin-password"}}, "not a bcrypt hash"},
		"unset env":  {[]APIUser{{Username: "admin", PasswordHash: "{env.AUTHSESSION_TEST_UNSET}"}}, "not a bcrypt hash"},
		"empty name": {[]APIUser{{Username: "", PasswordHash: testHash}}, "username is empty"},
		"duplicate":  {[]APIUser{{Username: "a", PasswordHash: testHash}, {Username: "a", PasswordHash: testHash}}, `"a" configured twice`},
	} {
		_, err := (&App{APIUsers: tt.users}).basicUsers(repl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "admin-password") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestTokenHashes(t *testing.T) {
	t.Setenv("AUTHSESSION_TEST_TOKEN", "demo-token")
	repl := caddy.NewReplacer()
	sum := sha256.Sum256([]byte("demo-token"))
	a := &App{APITokens: []APIToken{{Token: "{env.AUTHSESSION_TEST_TOKEN}"}, {SHA256: strings.Repeat("ab", 32)}}}
	hashes, err := a.tokenHashes(repl)
	if err != nil || len(hashes) != 2 || hashes[0] != sum || hashes[1][0] != 0xab {
		t.Fatalf("tokenHashes = %x, %v", hashes, err)
	}
	for name, tt := range map[string]struct {
		tok  APIToken
		want string
	}{
		"both":       {APIToken{Token: "demo-token", SHA256: strings.Repeat("ab", 32)}, "not both"},
		"neither":    {APIToken{}, "sha256 or token is required"},
		"short hash": {APIToken{SHA256: "abcd"}, "64 hex digits"},
		"not hex":    {APIToken{SHA256: strings.Repeat("zz", 32)}, "64 hex digits"},
		"unset env":  {APIToken{Token: "{env.AUTHSESSION_TEST_UNSET}"}, "token is empty"},
	} {
		_, err := (&App{APITokens: []APIToken{tt.tok}}).tokenHashes(repl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "demo-token") {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
	}
}

func TestAppDefaultsAndValidate(t *testing.T) {
	a := new(App)
	a.setDefaults()
	if a.SessionLifetime != caddy.Duration(8*60*60*1e9) || a.IdleTimeout != caddy.Duration(30*60*1e9) ||
		a.TouchInterval != caddy.Duration(60*1e9) || a.BlockDuration != caddy.Duration(15*60*1e9) ||
		a.StoreTimeout != caddy.Duration(5*1e9) || a.IDStoreName != "UserIdentityStore1" ||
		a.Cookie.Name != "authsession" || a.Cookie.Path != "/" || a.Cookie.Insecure {
		t.Fatalf("defaults: %+v %+v", a, a.Cookie)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a b", "a;b", "a=b", "a,b"} {
		b := &App{Cookie: &CookieConfig{Name: name}}
		b.setDefaults()
		if err := b.Validate(); err == nil {
			t.Errorf("cookie name %q accepted", name)
		}
	}
	// JSON configs get the same __Host- / __Secure- checks as the Caddyfile.
	for _, c := range []CookieConfig{
		{Name: "__Host-sid", Insecure: true},
		{Name: "__Host-sid", Domain: "example.com"},
		{Name: "__Host-sid", Path: "/app"},
		{Name: "__Secure-sid", Insecure: true},
	} {
		b := &App{Cookie: &c}
		b.setDefaults()
		if err := b.Validate(); err == nil {
			t.Errorf("cookie %+v accepted", c)
		}
	}
	ok := &App{Cookie: &CookieConfig{Name: "__Host-sid"}}
	ok.setDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("__Host-sid refused: %v", err)
	}
	off := &App{IdleTimeout: -1}
	off.setDefaults()
	if off.IdleTimeout != -1 {
		t.Errorf("idle_timeout off became %v", off.IdleTimeout)
	}
}
