package caddymodule

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
)

// TestDirectoryIssueAttributesLine parses the attributes of the
// directories issue on one line, provisions them against a real slapd (its
// memberof overlay filling memberOf) and finds alice with her group from
// memberOf and her display name from cn. The issue wrote them as a block on
// one line, "attributes { id uid ... }", which Caddy's Caddyfile parser
// refuses before any module sees it; the one-line form is the same pairs as
// arguments, and the test checks Caddy refuses the other, so the docs say
// so.
func TestDirectoryIssueAttributesLine(t *testing.T) {
	oneLineBlock := "{\n\tauthsession {\n\t\tdirectory corp ldap {\n\t\t\turl ldap://127.0.0.1:1\n" +
		"\t\t\tattributes { id uid  login uid  mail mail  phone mobile  group memberOf  name cn }\n\t\t}\n\t}\n}\n:80 {\n\trespond ok\n}\n"
	if _, _, err := (caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}).Adapt([]byte(oneLineBlock), nil); err == nil ||
		!strings.Contains(err.Error(), "after '{' on same line") {
		t.Fatalf("Caddy's parser took a one-line block (the docs say it does not): %v", err)
	}
	srv := ldaptest.Start(t, "")
	d := caddyfile.NewTestDispenser(`authsession {
		directory corp ldap {
			url ` + srv.URL() + `
			bind_dn "` + ldaptest.ServiceDN + `"
			bind_password ` + ldaptest.ServicePass + `
			base_dn "` + ldaptest.PeopleDN + `"
			attributes id uid  login uid  mail mail  phone mobile  group memberOf  name cn
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
