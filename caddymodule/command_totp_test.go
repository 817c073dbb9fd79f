package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/state"
)

// TestUserTOTPForDirectoryUsers enrols a TOTP secret for an LDAP user with
// `caddy authsession user totp --config`: the secret lands in the config's
// file store, and the app provisioned from the same config gives the user
// the secret and the TOTP factor; --remove takes it away.
func TestUserTOTPForDirectoryUsers(t *testing.T) {
	srv := ldaptest.Start(t, "")
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("AUTHSESSION_TEST_LDAP_PW", ldaptest.ServicePass)
	users := filepath.Join(dir, "users.json")
	os.WriteFile(users, []byte(`{"users":[{"id":"demo","login":"demo","mail":"demo@example.com"}]}`), 0o600)
	app := map[string]any{
		"store":      map[string]any{"module": "file", "path": filepath.Join(dir, "sessions.db")},
		"users_file": users,
		"directories": []DirectoryConfig{{
			Name: "corp", Kind: "ldap", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN,
			BindPassword: "{env.AUTHSESSION_TEST_LDAP_PW}", BaseDN: ldaptest.PeopleDN,
			TLS: &DirectoryTLS{CAFile: srv.CAFile()},
		}},
	}
	write := func(name string, app map[string]any) string {
		b, _ := json.Marshal(map[string]any{"apps": map[string]any{"authsession": app}})
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("caddy.json", app)
	var out bytes.Buffer
	if err := runUser("totp", userFlags{config: cfg, login: "bob", issuer: "corp", secret: "JBSWY3DPEHPK3PXP"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "secret: JBSWY3DPEHPK3PXP\nuri: otpauth://totp/corp:bob?") {
		t.Fatalf("output %q", out.String())
	}
	lookup := func() state.User {
		t.Helper()
		var a App
		raw, _ := json.Marshal(app)
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		a.offline = true // as the CLI provisions it
		if err := a.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		defer a.Cleanup()
		u, ok, err := a.otp.dirs.Lookup(ctx, "BOB")
		if err != nil || !ok {
			t.Fatalf("bob: %v %v", ok, err)
		}
		return u
	}
	if u := lookup(); u.TOTPSecret != "JBSWY3DPEHPK3PXP" || !u.HasFactor(state.FactorTOTP) || !u.HasFactor(state.FactorEmail) {
		t.Fatalf("bob after enrolment: %+v", u)
	}
	if err := runUser("totp", userFlags{config: cfg, login: "bob", remove: true}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if u := lookup(); u.TOTPSecret != "" || u.HasFactor(state.FactorTOTP) {
		t.Fatalf("bob after removal: %+v", u)
	}

	for name, tt := range map[string]struct {
		f    userFlags
		want string
	}{
		"unknown user":    {userFlags{config: cfg, login: "mallory"}, "in no identity store"},
		"users-file user": {userFlags{config: cfg, login: "demo"}, "use --file"},
		"file and config": {userFlags{config: cfg, file: users, login: "bob"}, "exclude each other"},
		"bad secret":      {userFlags{config: cfg, login: "bob", secret: "not base32!"}, "base32"},
		"no such config":  {userFlags{config: filepath.Join(dir, "none.json"), login: "bob"}, "none.json"},
		"memory store":    {userFlags{config: write("mem.json", map[string]any{"directories": app["directories"]}), login: "bob"}, "memory store"},
		"no directory":    {userFlags{config: write("nodir.json", map[string]any{"store": app["store"]}), login: "bob"}, "no directory"},
		"no authsession":  {userFlags{config: write("empty.json", nil), login: "bob"}, "no authsession app"},
	} {
		err := runUser("totp", tt.f, nil, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", name, err, tt.want)
		}
		if name == "unknown user" && !errors.Is(err, state.ErrUserNotFound) {
			t.Errorf("unknown user: %v is not ErrUserNotFound", err)
		}
	}
}
