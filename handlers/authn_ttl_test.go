package handlers

import (
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// TestAuthnTTLIsAtLeastAsAsked: times are whole seconds on the wire and in
// the store, so a challenge started late in a second with timeToLiveInSec
// 1 used to end at the next whole second, a few milliseconds later. It now
// lasts at least the seconds asked for, and at most one more.
func TestAuthnTTLIsAtLeastAsAsked(t *testing.T) {
	f := newAuthnFixture(t)
	f.clk.Advance(999 * time.Millisecond)
	w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"userInfo":{"userId":"alice","groups":["Default"]},"timeToLiveInSec":1}`)
	if w.Code != 200 {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	a := readAuthn(t, w)
	f.clk.Advance(900 * time.Millisecond) // 0.9 s of the 1 s asked for
	code, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
	if code != 200 {
		t.Fatalf("Init 0.9 s into a 1 s challenge: %d %+v", code, b)
	}
	f.clk.Advance(1200 * time.Millisecond) // 2.1 s in: past 1 s and the rounding second
	code, c := f.put(validateReq(a.CorrelationID, b.Nonce, f.lastCode().Code))
	if code != 400 || c.Status.Code != authnCodeExpired {
		t.Fatalf("Validate 2.1 s into a 1 s challenge: %d %+v, want 400 %s", code, c, authnCodeExpired)
	}
}
