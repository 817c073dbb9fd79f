package handlers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/webauthntest"
	"github.com/authsession/caddy-authsession/state"
)

const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:8443"
)

func testPasskeys(t *testing.T, uv string) *Passkeys {
	t.Helper()
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, Origins: []string{testOrigin}, UserVerification: uv})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// registerPasskey registers the software authenticator a for the user
// under key in u, through a real registration ceremony.
func registerPasskey(t *testing.T, p *Passkeys, key string, u *state.UserState, a *webauthntest.Authenticator, now time.Time) state.Passkey {
	t.Helper()
	opts, c, err := p.BeginRegistration(key, key, u, "test key", "bind")
	if err != nil {
		t.Fatal(err)
	}
	u.StartCeremony("reg", c, now)
	answer, err := a.Register(opts)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := p.FinishRegistration(key, key, u, "reg", "bind", answer, now)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return pk
}

// login runs one assertion ceremony with the answer made by answer from
// the request options.
func login(t *testing.T, p *Passkeys, key string, u *state.UserState, now time.Time, answer func(opts []byte) []byte) error {
	t.Helper()
	opts, c, err := p.BeginLogin(key, key, u, "bind")
	if err != nil {
		t.Fatal(err)
	}
	u.StartCeremony("cer", c, now)
	pa, err := ParseAssertion(answer(opts))
	if err != nil {
		return err
	}
	_, err = p.FinishLogin(key, u, "cer", "bind", pa, now)
	return err
}

func TestPasskeyCeremonies(t *testing.T) {
	now := time.Now()
	p := testPasskeys(t, "required")
	u := &state.UserState{UserID: "alice"}
	a := webauthntest.New(testOrigin, testRPID)
	pk := registerPasskey(t, p, "alice", u, a, now)
	if pk.Name != "test key" || len(u.Passkeys) != 1 || string(a.UserHandle) != "alice" || pk.AttestationType != "none" {
		t.Fatalf("registered %+v (handle %q)", pk, a.UserHandle)
	}
	assert := func(a *webauthntest.Authenticator) func([]byte) []byte {
		return func(opts []byte) []byte {
			out, err := a.Assert(opts)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	if err := login(t, p, "alice", u, now, assert(a)); err != nil {
		t.Fatalf("right assertion refused: %v", err)
	}
	if u.Passkeys[0].SignCount != a.SignCount || u.Passkeys[0].LastUsed.IsZero() {
		t.Errorf("use not recorded: %+v", u.Passkeys[0])
	}

	cases := map[string]struct {
		answer func([]byte) []byte
		want   error
	}{
		"wrong origin": {func(o []byte) []byte {
			b := a.Clone()
			b.Origin = "http://localhost:9999"
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"wrong rp id": {func(o []byte) []byte {
			b := a.Clone()
			b.RPID = "example.com"
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"wrong signature": {func(o []byte) []byte {
			b := webauthntest.New(testOrigin, testRPID) // another key, same id
			b.ID, b.UserHandle, b.SignCount = a.ID, a.UserHandle, a.SignCount+5
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"other challenge": {func([]byte) []byte {
			return a.Clone().AssertChallenge("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		}, ErrPasskeyAssertion},
		"not user verified": {func(o []byte) []byte {
			b := a.Clone()
			b.Flags = webauthntest.FlagUserPresent
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"not user present": {func(o []byte) []byte {
			b := a.Clone()
			b.Flags = webauthntest.FlagUserVerified
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"unknown credential": {assert(webauthntest.New(testOrigin, testRPID)), ErrPasskeyAssertion},
		"another user's handle": {func(o []byte) []byte {
			b := a.Clone()
			b.UserHandle = []byte("bob")
			return assert(b)(o)
		}, ErrPasskeyAssertion},
		"counter went back": {func(o []byte) []byte {
			b := a.Clone()
			b.SignCount -= 2
			return assert(b)(o)
		}, state.ErrSignCount},
		"not json": {func([]byte) []byte { return []byte(`{"id":`) }, ErrPasskeyAssertion},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := u.Passkeys[0]
			err := login(t, p, "alice", u, now, c.answer)
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if u.Passkeys[0].SignCount != before.SignCount {
				t.Error("a refused assertion moved the counter")
			}
			if u.Ceremonies != nil && c.want != ErrPasskeyAssertion {
				t.Error("the ceremony outlived its answer")
			}
		})
	}

	// A replay: the same answer to the same ceremony twice.
	opts, c, err := p.BeginLogin("alice", "alice", u, "bind")
	if err != nil {
		t.Fatal(err)
	}
	u.StartCeremony("cer", c, now)
	answer := assert(a)(opts)
	pa, _ := ParseAssertion(answer)
	if _, err := p.FinishLogin("alice", u, "cer", "bind", pa, now); err != nil {
		t.Fatal(err)
	}
	pa, _ = ParseAssertion(answer)
	if _, err := p.FinishLogin("alice", u, "cer", "bind", pa, now); !errors.Is(err, state.ErrNoCeremony) {
		t.Errorf("replayed answer: %v", err)
	}
	// Another session's ceremony.
	opts, c, _ = p.BeginLogin("alice", "alice", u, "bind")
	u.StartCeremony("cer", c, now)
	pa, _ = ParseAssertion(assert(a)(opts))
	if _, err := p.FinishLogin("alice", u, "cer", "other", pa, now); !errors.Is(err, state.ErrNoCeremony) {
		t.Errorf("another session's ceremony: %v", err)
	}
	// An expired one.
	opts, c, _ = p.BeginLogin("alice", "alice", u, "bind")
	u.StartCeremony("cer", c, now)
	pa, _ = ParseAssertion(assert(a)(opts))
	if _, err := p.FinishLogin("alice", u, "cer", "bind", pa, now.Add(state.CeremonyTTL)); !errors.Is(err, state.ErrNoCeremony) {
		t.Errorf("expired ceremony: %v", err)
	}
	// The options are WebAuthn JSON: base64url challenge, the RP id, the
	// user's credential, the user verification policy.
	var o map[string]any
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	if ch, _ := o["challenge"].(string); len(ch) < 22 || strings.ContainsAny(ch, "+/=") || o["rpId"] != testRPID || o["userVerification"] != "required" {
		t.Errorf("options: %s", opts)
	}
	if ac, _ := o["allowCredentials"].([]any); len(ac) != 1 {
		t.Errorf("allowCredentials: %s", opts)
	}
	// Registering the same authenticator twice is refused.
	if _, _, err := p.BeginRegistration("alice", "alice", u, "again", "bind"); err != nil {
		t.Fatal(err)
	}
	opts2, c2, _ := p.BeginRegistration("alice", "alice", u, "again", "bind")
	u.StartCeremony("reg", c2, now)
	ans, _ := a.Register(opts2)
	if _, err := p.FinishRegistration("alice", "alice", u, "reg", "bind", ans, now); !errors.Is(err, state.ErrPasskeyExists) {
		t.Errorf("second registration of one credential: %v", err)
	}
}

// TestPasskeyPreferredVerification: with user_verification preferred an
// assertion without UV passes; without UP it never does.
func TestPasskeyPreferredVerification(t *testing.T) {
	now := time.Now()
	p := testPasskeys(t, "")
	u := &state.UserState{}
	a := webauthntest.New(testOrigin, testRPID)
	registerPasskey(t, p, "bob", u, a, now)
	a.Flags = webauthntest.FlagUserPresent
	if err := login(t, p, "bob", u, now, func(o []byte) []byte { b, _ := a.Assert(o); return b }); err != nil {
		t.Errorf("preferred UV, assertion without UV: %v", err)
	}
	a.Flags = 0
	if err := login(t, p, "bob", u, now, func(o []byte) []byte { b, _ := a.Assert(o); return b }); !errors.Is(err, ErrPasskeyAssertion) {
		t.Errorf("assertion without UP: %v", err)
	}
}

func TestPasskeyConfigCheck(t *testing.T) {
	for _, c := range []struct {
		cfg PasskeyConfig
		bad string
	}{
		{PasskeyConfig{RPID: "example.com", Origins: []string{"https://login.example.com", "https://example.com:8443"}}, ""},
		{PasskeyConfig{RPID: "localhost", Origins: []string{"http://localhost:2015"}, UserVerification: "required"}, ""},
		{PasskeyConfig{Origins: []string{"https://example.com"}}, "rp_id is required"},
		{PasskeyConfig{RPID: "example.com"}, "at least one origin"},
		{PasskeyConfig{RPID: "example.com", Origins: []string{"http://example.com"}}, "must be https"},
		{PasskeyConfig{RPID: "example.com", Origins: []string{"https://example.org"}}, "not the host of origin"},
		{PasskeyConfig{RPID: "example.com", Origins: []string{"https://badexample.com"}}, "not the host of origin"},
		{PasskeyConfig{RPID: "login.example.com", Origins: []string{"https://example.com"}}, "not the host of origin"},
		{PasskeyConfig{RPID: "127.0.0.1", Origins: []string{"http://127.0.0.1:80"}}, "not a domain name"},
		{PasskeyConfig{RPID: "example.com:443", Origins: []string{"https://example.com"}}, "not a domain name"},
		{PasskeyConfig{RPID: "example.com", Origins: []string{"https://example.com/login"}}, "not scheme://host"},
		{PasskeyConfig{RPID: "example.com", Origins: []string{"https://example.com"}, UserVerification: "discouraged"}, "user_verification"},
	} {
		_, err := NewPasskeys(c.cfg)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.bad)
		}
	}
}
