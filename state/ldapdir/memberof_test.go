package ldapdir_test

import (
	"context"
	"testing"

	"github.com/authsession/caddy-authsession/internal/ldaptest"
)

// TestGroupFromMemberOfAndName maps the attributes (group memberOf,
// name cn) on a real slapd whose memberof overlay fills memberOf: alice is
// in ops from the start; bob joins ops by a live modify and has the group
// once the cache (none here) lets the directory ask again.
func TestGroupFromMemberOfAndName(t *testing.T) {
	srv := ldaptest.Start(t, "")
	cfg := config(srv)
	cfg.GroupFilter, cfg.GroupBaseDN = "", ""
	cfg.Attributes.Group, cfg.Attributes.Name = "memberOf", "cn"
	d := open(t, cfg)
	ctx := context.Background()
	u, ok, err := d.Lookup(ctx, "alice")
	if err != nil || !ok || u.Group != "ops" || u.Name != "Alice Example" {
		t.Fatalf("alice = %+v, %v, %v; want group ops (from memberOf), name Alice Example", u, ok, err)
	}
	u, ok, err = d.Lookup(ctx, "bob")
	if err != nil || !ok || u.Group != "" || u.Name != "Bob Example" {
		t.Fatalf("bob before joining = %+v, %v, %v; want no group, name Bob Example", u, ok, err)
	}
	srv.AddMember("cn=ops,"+ldaptest.GroupsDN, "uid=bob,"+ldaptest.PeopleDN)
	u, ok, err = d.Lookup(ctx, "bob")
	if err != nil || !ok || u.Group != "ops" {
		t.Fatalf("bob after joining = %+v, %v, %v; want group ops", u, ok, err)
	}
	// Without the name attribute configured, no name is read.
	cfg.Attributes.Name = ""
	u, ok, err = open(t, cfg).Lookup(ctx, "alice")
	if err != nil || !ok || u.Name != "" {
		t.Fatalf("alice without a name attribute = %+v, %v, %v; want no name", u, ok, err)
	}
}
