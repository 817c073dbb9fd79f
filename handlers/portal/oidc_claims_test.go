package portal

import (
	"net/http"
	"testing"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/internal/oidctest"
)

// TestOIDCIDTokenClaimChecks: ID tokens the real provider signs with its
// own key but whose azp or nonce is wrong are refused (401, no session,
// login_failed with the check's reason); the same provider's unchanged
// token signs in.
func TestOIDCIDTokenClaimChecks(t *testing.T) {
	f := newOIDCFixture(t, nil)
	for _, c := range []struct {
		name, reason string
		o            oidctest.IDTokenOverride
	}{
		// Several audiences, and the authorized party is another client.
		{"azp of another client", "azp", oidctest.IDTokenOverride{ExtraAudience: "other-client", AZP: "other-client"}},
		// One audience (ours), but an azp naming another client.
		{"azp not ours, one audience", "azp", oidctest.IDTokenOverride{AZP: "other-client"}},
		// A nonce that is not the one bound to this browser's sign-in.
		{"nonce of another sign-in", "nonce", oidctest.IDTokenOverride{Nonce: "a-nonce-this-browser-never-sent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := f.browser(t)
			o := c.o
			f.op.OverrideIDTokens(&o)
			resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
			f.op.OverrideIDTokens(nil)
			wantStatus(t, resp, http.StatusUnauthorized, b.page)
			f.noSession(t, b)
			if ev, ok := f.events.find(handlers.EventLoginFailed, c.reason); !ok || ev.Family != "oidc" {
				t.Fatalf("no login_failed event with reason %q (%+v)", c.reason, ev)
			}
		})
	}
	// Several audiences with azp our client id is a valid token: the
	// knob itself leaves a token the relying party accepts.
	b := f.browser(t)
	f.op.OverrideIDTokens(&oidctest.IDTokenOverride{ExtraAudience: "other-client", AZP: f.op.ClientID})
	resp := b.abs(http.MethodGet, f.atProvider(b, alice, ""), nil)
	f.op.OverrideIDTokens(nil)
	wantStatus(t, resp, http.StatusSeeOther, b.page)
	f.session(t, b)
}
