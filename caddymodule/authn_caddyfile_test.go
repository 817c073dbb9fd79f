package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestParseAuthnBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`authsession {
		authn {
			client app-1 cd577fe2561ebff23505db0bb006300c7cdecbd46bc0e03c449afafaca2c25bf
			client app-2 {env.APP2_SECRET_HASH}
			accept_unknown_users
			default_factors ChallengeEmail ChallengeSMS
			max_ttl 10m
		}
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	c := a.Authn
	if len(c.Clients) != 2 || c.Clients[0].ClientID != "app-1" || c.Clients[1].SecretHash != "{env.APP2_SECRET_HASH}" ||
		!c.AcceptUnknownUsers || strings.Join(c.DefaultFactors, ",") != "ChallengeEmail,ChallengeSMS" ||
		time.Duration(c.MaxTTL) != 10*time.Minute {
		t.Fatalf("parsed %+v", c)
	}
}

func TestParseAuthnRejections(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"authn {\nclient only-id\n}", "client needs"},
		{"authn {\naccept_unknown_users\naccept_unknown_users\n}", "given twice"},
		{"authn {\ndefault_factors ChallengeCarrierPigeon\n}", "unknown factor"},
		{"authn {\ndefault_factors\n}", "wrong argument count"},
		{"authn {\ncolour blue\n}", "unrecognized authn option"},
		{"authn extra", "wrong argument count"},
	} {
		d := caddyfile.NewTestDispenser("authsession {\n" + tt.in + "\n}")
		err := new(App).UnmarshalCaddyfile(d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.want)
		}
	}
}
