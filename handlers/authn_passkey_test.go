package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/internal/webauthntest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// events keeps the events emitted.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) Emit(_ context.Context, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) reasons(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		if ev.Name == name {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// passkeyFixture is the challenge flow with passkeys on, on the store of
// the given kind, and a software authenticator registered for alice.
type passkeyFixture struct {
	*authnFixture
	auth   *webauthntest.Authenticator
	events *events
}

func newPasskeyFixture(t *testing.T, kind string) *passkeyFixture {
	t.Helper()
	f := newAuthnFixture(t)
	var st state.Store = f.store
	switch kind {
	case "file":
		fs, err := filestore.Open(filestore.Options{Path: filepath.Join(t.TempDir(), "s.db"), Now: f.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fs.Close() })
		st = fs
	case "redis":
		rs, err := redisstore.New(redisstore.Options{Addrs: []string{redistest.Start(t).Addr()}, Timeout: 5 * time.Second, Now: f.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		st = rs
	}
	f.a.Env.Store = st
	ev := &events{}
	f.a.Env.Events = ev
	p, err := NewPasskeys(PasskeyConfig{RPID: testRPID, Origins: []string{testOrigin}, UserVerification: "required"})
	if err != nil {
		t.Fatal(err)
	}
	f.a.Passkeys = p
	f.a.OTP.MaxAttempts = 8 // room for every kind of wrong answer below
	a := webauthntest.New(testOrigin, testRPID)
	if _, err := st.UpdateUser(t.Context(), "alice", func(u *state.UserState) error {
		registerPasskey(t, p, "alice", u, a, f.clk.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return &passkeyFixture{authnFixture: f, auth: a, events: ev}
}

// initFIDO2 runs POST and Init of ChallengeFIDO2 for alice and returns the
// correlationId, the nonce and the request options.
func (f *passkeyFixture) initFIDO2() (cid, nonce string, opts []byte) {
	f.t.Helper()
	start := f.start("alice")
	code, ans, raw := f.putRaw(initReq(start.CorrelationID, start.Nonce, state.FactorFIDO2))
	if code != 200 {
		f.t.Fatalf("Init: %d %+v", code, ans.Status)
	}
	var r struct {
		InitContext struct {
			ChallengeInfo []struct {
				Factor        string `json:"factor"`
				FactorContext struct {
					ChallengeAttrMap []struct {
						Key   string `json:"key"`
						Value struct {
							Value string `json:"value"`
						} `json:"value"`
					} `json:"challengeAttrMap"`
				} `json:"factorContext"`
			} `json:"challengeInfo"`
		} `json:"initContext"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || len(r.InitContext.ChallengeInfo) != 1 {
		f.t.Fatalf("Init answer: %v %s", err, raw)
	}
	for _, kv := range r.InitContext.ChallengeInfo[0].FactorContext.ChallengeAttrMap {
		if kv.Key == passkeyAttrOptions {
			opts = []byte(kv.Value.Value)
		}
	}
	if opts == nil {
		f.t.Fatalf("no %s in %s", passkeyAttrOptions, raw)
	}
	return start.CorrelationID, ans.Nonce, opts
}

func (f *passkeyFixture) putRaw(fields map[string]any) (int, authnAnswer, []byte) {
	f.t.Helper()
	b, _ := json.Marshal(fields)
	w := f.do("PUT", string(b))
	return w.Code, readAuthn(f.t, w), w.Body.Bytes()
}

// session returns the stored session of an answer's sessionId.
func (f *passkeyFixture) session(id string) *state.Session {
	f.t.Helper()
	s, err := f.a.Env.Store.Get(f.t.Context(), state.KeyOf(id))
	if err != nil {
		f.t.Fatalf("session: %v", err)
	}
	return s
}

func (f *passkeyFixture) attempts() int {
	f.t.Helper()
	u, err := f.a.Env.Store.GetUser(f.t.Context(), "alice")
	if err != nil {
		f.t.Fatal(err)
	}
	return len(u.Attempts[state.FactorFIDO2].Times)
}

func (f *passkeyFixture) signCount() uint32 {
	f.t.Helper()
	u, err := f.a.Env.Store.GetUser(f.t.Context(), "alice")
	if err != nil {
		f.t.Fatal(err)
	}
	return u.Passkeys[0].SignCount
}

func TestAuthnPasskeyEveryStore(t *testing.T) {
	for _, kind := range []string{"memory", "file", "redis"} {
		t.Run(kind, func(t *testing.T) { testAuthnPasskey(t, kind) })
	}
}

func testAuthnPasskey(t *testing.T, kind string) {
	f := newPasskeyFixture(t, kind)

	// POST lists FIDO2 as a passkey for alice; bob (no passkey) keeps
	// today's factors.
	start := f.start("alice")
	i := -1
	for j, c := range start.InitContext.ChallengeInfo {
		if c.Factor == state.FactorFIDO2 {
			i = j
		}
	}
	if i < 0 || start.InitContext.ChallengeInfo[i].FactorContext.Prompts[0].Value != "passkey" {
		t.Fatalf("POST for alice: %+v", start.InitContext)
	}
	for _, c := range f.start("bob").InitContext.ChallengeInfo {
		if c.Factor == state.FactorFIDO2 {
			t.Error("bob, without passkeys, is offered FIDO2")
		}
	}

	// The whole flow: POST → Init (options) → Validate (assertion).
	cid, nonce, opts := f.initFIDO2()
	answer, err := f.auth.Assert(opts)
	if err != nil {
		t.Fatal(err)
	}
	code, ans := f.put(validateReq(cid, nonce, string(answer)))
	if code != 200 || ans.Status.Status != string(state.StatusAuthenticated) {
		t.Fatalf("Validate of a right assertion: %d %+v", code, ans.Status)
	}
	if s := f.session(ans.SessionID); s.Status != state.StatusAuthenticated {
		t.Errorf("session %s", s.Status)
	}
	if f.signCount() != f.auth.SignCount {
		t.Errorf("counter %d stored, authenticator at %d", f.signCount(), f.auth.SignCount)
	}

	// Refused answers: each counts as a failed attempt and leaves the
	// session pending.
	refused := map[string]func(opts []byte) []byte{
		"wrong signature": func(o []byte) []byte {
			b := webauthntest.New(testOrigin, testRPID)
			b.ID, b.UserHandle, b.SignCount = f.auth.ID, f.auth.UserHandle, f.auth.SignCount+10
			out, _ := b.Assert(o)
			return out
		},
		"wrong origin": func(o []byte) []byte {
			b := f.auth.Clone()
			b.Origin = "https://evil.example"
			out, _ := b.Assert(o)
			return out
		},
		"lower sign count": func(o []byte) []byte {
			b := f.auth.Clone()
			b.SignCount = f.signCount() - 1 // signs with the stored count again
			out, _ := b.Assert(o)
			return out
		},
		"another challenge": func([]byte) []byte {
			return f.auth.Clone().AssertChallenge("c2lnbmVkIGZvciBhbm90aGVyIGNoYWxsZW5nZQ")
		},
		"not a credential": func([]byte) []byte { return []byte(`{"id":"x"}`) },
	}
	want := 0
	for name, answer := range refused {
		cid, nonce, opts := f.initFIDO2()
		before := f.signCount()
		code, ans := f.put(validateReq(cid, nonce, string(answer(opts))))
		want++
		if code != 200 || ans.Status.Message != "wrong_answer" || ans.Status.Status != string(state.StatusPendingVerification) {
			t.Errorf("%s: %d %+v", name, code, ans.Status)
		}
		if got := f.attempts(); got != want {
			t.Errorf("%s: %d attempts counted, want %d", name, got, want)
		}
		if f.signCount() != before {
			t.Errorf("%s moved the stored counter", name)
		}
	}
	if r := f.events.reasons(EventLoginFailed); len(r) != want || !slices.Contains(r, "cloned_authenticator") {
		t.Errorf("login_failed events: %v", r)
	}

	// A replayed assertion: the challenge was spent by the first answer.
	cid, nonce, opts = f.initFIDO2()
	answer, _ = f.auth.Assert(opts)
	code, ans = f.put(validateReq(cid, nonce, string(answer)))
	if code != 200 || ans.Status.Status != string(state.StatusAuthenticated) {
		t.Fatalf("right assertion: %d %+v", code, ans.Status)
	}
	if f.attempts() != 0 {
		t.Error("a right answer did not clear the count")
	}
	cid2, nonce2, _ := f.initFIDO2()
	code, ans = f.put(validateReq(cid2, nonce2, string(answer)))
	if code != 200 || ans.Status.Message != "wrong_answer" || f.attempts() != 1 {
		t.Errorf("replayed assertion on a new challenge: %d %+v, %d attempts", code, ans.Status, f.attempts())
	}
	// The same assertion again on its own (already used) challenge: the
	// nonce moved on and the ceremony is spent.
	code, ans = f.put(validateReq(cid2, ans.Nonce, string(answer)))
	if code == 200 && ans.Status.Status == string(state.StatusAuthenticated) {
		t.Error("a replayed assertion authenticated")
	}

	// Finalize Success cannot stand in for a Validate of a local passkey.
	cid, nonce, _ = f.initFIDO2()
	if code, ans := f.put(finalizeReq(cid, nonce, resultSuccess, "")); code != 400 || !strings.Contains(ans.Status.Message, "passive") {
		t.Errorf("Finalize Success without Validate: %d %+v", code, ans.Status)
	}

	// Enough wrong answers block the factor for the user.
	early, earlyNonce, earlyOpts := f.initFIDO2() // a challenge started before the block
	for range f.a.OTP.MaxAttempts + 1 {
		cid, nonce, opts := f.initFIDO2()
		b := f.auth.Clone()
		b.Origin = "https://evil.example"
		bad, _ := b.Assert(opts)
		code, ans = f.put(validateReq(cid, nonce, string(bad)))
		if ans.Status.Status == string(state.StatusChallengeBlocked) {
			break
		}
	}
	if ans.Status.Status != string(state.StatusChallengeBlocked) {
		t.Fatalf("wrong assertions never blocked: %d %+v", code, ans.Status)
	}
	// While blocked, a new challenge is refused at its Init: 1009, no
	// ceremony begun, the session as it was.
	late := f.start("alice")
	before := *f.session(late.SessionID)
	code, ans, raw := f.putRaw(initReq(late.CorrelationID, late.Nonce, state.FactorFIDO2))
	if code != 400 || ans.Status.Code != authnCodeBlocked || ans.Status.Status != string(state.StatusChallengeBlocked) ||
		ans.Status.Message != state.ReasonTooManyAttempts || bytes.Contains(raw, []byte(passkeyAttrOptions)) {
		t.Errorf("Init of a blocked FIDO2 factor: %d %s", code, raw)
	}
	if after := f.session(late.SessionID); after.Version != before.Version || after.Status != before.Status {
		t.Errorf("the refused Init changed the session: version %d → %d, status %q → %q",
			before.Version, after.Version, before.Status, after.Status)
	}
	// And a challenge started before the block does not check even a
	// right assertion.
	good, _ := f.auth.Assert(earlyOpts)
	if _, ans := f.put(validateReq(early, earlyNonce, string(good))); ans.Status.Status != string(state.StatusChallengeBlocked) {
		t.Errorf("a blocked factor still checked an answer: %+v", ans.Status)
	}
}

// TestAuthnPasskeyOffKeepsFIDO2External: without a webauthn block, or for
// a user without passkeys, FIDO2 stays an external factor (Finalize).
func TestAuthnPasskeyOffKeepsFIDO2External(t *testing.T) {
	f := newAuthnFixture(t)
	start := f.start("alice")
	code, ans := f.put(initReq(start.CorrelationID, start.Nonce, state.FactorFIDO2))
	if code != 200 || ans.InitContext != nil {
		t.Fatalf("Init: %d %+v", code, ans)
	}
	if code, a := f.put(validateReq(start.CorrelationID, ans.Nonce, "{}")); code != 400 || a.Status.Code != authnCodeNotPassive {
		t.Errorf("Validate of external FIDO2: %d %+v", code, a.Status)
	}
	start = f.start("alice")
	_, ans = f.put(initReq(start.CorrelationID, start.Nonce, state.FactorFIDO2))
	if code, a := f.put(finalizeReq(start.CorrelationID, ans.Nonce, resultSuccess, "")); code != 200 || a.Status.Status != string(state.StatusAuthenticated) {
		t.Errorf("Finalize Success of external FIDO2: %d %+v", code, a.Status)
	}
}

// userStatesDown is a store that cannot read users' states (their
// passkeys among them) while sessions still work.
type userStatesDown struct{ state.Store }

func (userStatesDown) GetUser(context.Context, string) (*state.UserState, error) {
	return nil, state.ErrUnavailable
}

// TestAuthnPasskeyStoreErrorFailsClosed: when the store cannot say
// whether a user has passkeys here, the challenge API answers 503; it used
// to count none, which made ChallengeFIDO2 an external factor that a
// Finalize with Success authenticated without any assertion.
func TestAuthnPasskeyStoreErrorFailsClosed(t *testing.T) {
	f := newPasskeyFixture(t, "memory")
	cid, nonce, opts := f.initFIDO2()
	st := f.a.Env.Store
	f.a.Env.Store = userStatesDown{st}
	code, ans, raw := f.putRaw(finalizeReq(cid, nonce, "Success", ""))
	if code != http.StatusServiceUnavailable || ans.Status.Code != authnCodeStore {
		t.Fatalf("Finalize Success while passkeys cannot be read: %d %s", code, raw)
	}
	if w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"userInfo":{"userId":"alice","groups":["Default"]}}`); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST while passkeys cannot be read: %d %s", w.Code, w.Body)
	}
	// Back up: the challenge is where it was, and Success still needs the
	// assertion.
	f.a.Env.Store = st
	if code, ans := f.put(finalizeReq(cid, nonce, "Success", "")); code != http.StatusBadRequest || ans.Status.Code != authnCodeOutOfOrder {
		t.Fatalf("Finalize Success without an assertion: %d %+v", code, ans.Status)
	}
	answer, err := f.auth.Assert(opts)
	if err != nil {
		t.Fatal(err)
	}
	if code, ans := f.put(validateReq(cid, nonce, string(answer))); code != 200 || ans.Status.Status != string(state.StatusAuthenticated) {
		t.Fatalf("Validate after the outage: %d %+v", code, ans.Status)
	}
}
