package caddymodule

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
)

// TestDirectoryIssueAttributesLine parses the attributes line of the
// directories issue exactly as written, provisions it against a real slapd
// (its memberof overlay filling memberOf) and finds alice with her group
// from memberOf and her display name from cn.
func TestDirectoryIssueAttributesLine(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d := caddyfile.NewTestDispenser(`authsession {
		directory corp ldap {
			url ` + srv.URL() + `
			bind_dn "` + ldaptest.ServiceDN + `"
			bind_password ` + ldaptest.ServicePass + `
			base_dn "` + ldaptest.PeopleDN + `"
			attributes { id uid  login uid  mail mail  phone mobile  group memberOf  name cn }
			tls {
				ca_file ` + srv.CAFile() + `
			}
			timeout 3s
		}
	}`)
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	a.IDStoreName, a.logger = "UserIdentityStore1", zap.NewNop()
	if err := a.provisionOTP(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	defer a.cleanupOTP()
	u, ok, err := a.otp.dirs.Lookup(context.Background(), "alice")
	if err != nil || !ok || u.ID != "alice" || u.Login != "alice" || u.Group != "ops" || u.Name != "Alice Example" ||
		u.Mail != "alice@example.com" || u.Phone != "+15550001111" || u.Store != "corp" {
		t.Fatalf("alice = %+v, %v, %v", u, ok, err)
	}
}
