package caddymodule

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseWebAuthnBlock(t *testing.T) {
	a, err := parseApp(`authsession {
		webauthn {
			rp_id example.com
			rp_name "Example sign-in"
			origins https://login.example.com https://example.com:8443
			user_verification required
			passwordless on
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &WebAuthnConfig{
		RPID: "example.com", RPName: "Example sign-in",
		Origins:          []string{"https://login.example.com", "https://example.com:8443"},
		UserVerification: "required", Passwordless: true,
	}
	if !reflect.DeepEqual(a.WebAuthn, want) {
		t.Errorf("got %+v", a.WebAuthn)
	}
	// Defaults: the RP id from the origin, the origin from the RP id.
	if pc := (&WebAuthnConfig{Origins: []string{"https://sso.example.org"}}).passkeyConfig(); pc.RPID != "sso.example.org" {
		t.Errorf("rp_id from origin: %q", pc.RPID)
	}
	if pc := (&WebAuthnConfig{RPID: "example.org"}).passkeyConfig(); !reflect.DeepEqual(pc.Origins, []string{"https://example.org"}) {
		t.Errorf("origins from rp_id: %v", pc.Origins)
	}
}

func TestParseWebAuthnRejections(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`webauthn`, "rp_id is required"},
		{`webauthn { rp_id example.com
			origins https://example.org
}`, "not the host of origin"},
		{`webauthn { origins http://example.com
}`, "must be https"},
		{`webauthn { rp_id 10.0.0.1
}`, "not a domain name"},
		{`webauthn { rp_id example.com
			user_verification discouraged
}`, "user_verification must be"},
		{`webauthn { rp_id example.com
			passwordless maybe
}`, "passwordless must be on or off"},
		{`webauthn { rp_id example.com
			rp_id example.org
}`, "given twice"},
		{`webauthn { rp_id example.com
			attestation direct
}`, "unrecognized webauthn option"},
		{`webauthn {
origins
}`, "wrong argument count"},
	} {
		_, err := parseApp("authsession {\n" + c.in + "\n}")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestProvisionWebAuthn(t *testing.T) {
	a := &App{WebAuthn: &WebAuthnConfig{RPID: "localhost", Origins: []string{"http://localhost:2015"}}}
	if err := a.provisionWebAuthn(); err != nil || a.passkeys == nil {
		t.Fatalf("provision: %v", err)
	}
	bad := &App{WebAuthn: &WebAuthnConfig{RPID: "example.com", Origins: []string{"https://example.net"}}}
	if err := bad.provisionWebAuthn(); err == nil || !strings.Contains(err.Error(), "not the host of origin") {
		t.Errorf("provision of a config no browser accepts: %v", err)
	}
}
