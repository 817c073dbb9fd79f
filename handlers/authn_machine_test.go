package handlers

import (
	"fmt"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// flowState is a challenge brought to one state of the flow: its
// correlationId, latest nonce, session id and the right answer (if any).
type flowState struct {
	cid, nonce, sid, answer string
}

// TestAuthnStateMachine drives every operation in every state of a
// challenge and checks the answer's status code and the session's status.
func TestAuthnStateMachine(t *testing.T) {
	const (
		pv     = state.StatusPendingVerification
		auth   = state.StatusAuthenticated
		failed = state.StatusFailed
		errSt  = state.StatusError
		block  = state.StatusChallengeBlocked
	)
	// setups bring a fresh fixture to a state.
	setups := []struct {
		name string
		fn   func(f *authnFixture) flowState
	}{
		{"started", func(f *authnFixture) flowState {
			a := f.start("alice")
			return flowState{a.CorrelationID, a.Nonce, a.SessionID, "123456"}
		}},
		{"email sent", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
			return flowState{a.CorrelationID, b.Nonce, a.SessionID, f.lastCode().Code}
		}},
		{"fido2 started", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorFIDO2))
			return flowState{a.CorrelationID, b.Nonce, a.SessionID, "assertion"}
		}},
		{"validated", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
			code := f.lastCode().Code
			_, c := f.put(validateReq(a.CorrelationID, b.Nonce, code))
			return flowState{a.CorrelationID, c.Nonce, a.SessionID, code}
		}},
		{"finalized", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorFIDO2))
			_, c := f.put(finalizeReq(a.CorrelationID, b.Nonce, "Success", ""))
			return flowState{a.CorrelationID, c.Nonce, a.SessionID, "x"}
		}},
		{"blocked", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
			code, n := f.lastCode().Code, b.Nonce
			for range f.a.OTP.MaxAttempts - 1 {
				_, c := f.put(validateReq(a.CorrelationID, n, wrongOf(code)))
				n = c.Nonce
			}
			if st, _ := f.put(validateReq(a.CorrelationID, n, wrongOf(code))); st != 400 {
				t.Fatalf("last wrong answer: %d", st)
			}
			return flowState{a.CorrelationID, n, a.SessionID, code}
		}},
		{"expired", func(f *authnFixture) flowState {
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
			f.clk.Advance(defaultAuthnTTL + time.Second)
			return flowState{a.CorrelationID, b.Nonce, a.SessionID, f.lastCode().Code}
		}},
	}
	ops := []struct {
		name string
		req  func(fs flowState) map[string]any
	}{
		{"Init TOTP", func(fs flowState) map[string]any { return initReq(fs.cid, fs.nonce, state.FactorTOTP) }},
		{"Validate right", func(fs flowState) map[string]any { return validateReq(fs.cid, fs.nonce, fs.answer) }},
		{"Validate wrong", func(fs flowState) map[string]any { return validateReq(fs.cid, fs.nonce, wrongOf(fs.answer)) }},
		{"Finalize Success", func(fs flowState) map[string]any { return finalizeReq(fs.cid, fs.nonce, "Success", "") }},
		{"Finalize Failure", func(fs flowState) map[string]any {
			return finalizeReq(fs.cid, fs.nonce, "Failure", "user_abandoned")
		}},
		{"Finalize Error", func(fs flowState) map[string]any { return finalizeReq(fs.cid, fs.nonce, "Error", "") }},
	}
	type want struct {
		code int
		st   state.Status
	}
	// expect[setup][op]
	expect := map[string][]want{
		"started":       {{200, pv}, {400, pv}, {400, pv}, {400, pv}, {400, pv}, {400, pv}},
		"email sent":    {{200, pv}, {200, auth}, {200, pv}, {400, pv}, {200, failed}, {200, errSt}},
		"fido2 started": {{200, pv}, {400, pv}, {400, pv}, {200, auth}, {200, failed}, {200, errSt}},
		"validated":     {{200, pv}, {400, auth}, {400, auth}, {200, auth}, {200, failed}, {200, errSt}},
		"finalized":     {{400, auth}, {400, auth}, {400, auth}, {400, auth}, {400, auth}, {400, auth}},
		"blocked":       {{400, block}, {400, block}, {400, block}, {400, block}, {400, block}, {400, block}},
		"expired":       {{400, pv}, {400, pv}, {400, pv}, {400, pv}, {400, pv}, {400, pv}},
	}
	for _, su := range setups {
		for i, op := range ops {
			w := expect[su.name][i]
			t.Run(fmt.Sprintf("%s/%s", su.name, op.name), func(t *testing.T) {
				f := newAuthnFixture(t)
				fs := su.fn(f)
				before := f.session(fs.sid)
				code, ans := f.put(op.req(fs))
				if code != w.code {
					t.Fatalf("answer %d, want %d: %+v", code, w.code, ans.Status)
				}
				if st := f.session(fs.sid).EffectiveStatus(f.clk.Now()); st != w.st {
					t.Fatalf("session status %q, want %q", st, w.st)
				}
				if ans.Status.Status != string(w.st) && code == 200 {
					t.Fatalf("answer status %q, want %q", ans.Status.Status, w.st)
				}
				switch {
				case code == 200 && (ans.Nonce == "" || ans.Nonce == fs.nonce || ans.Status.Code != "0"):
					t.Fatalf("a 200 must carry a fresh nonce and code 0: %+v", ans)
				case code != 200 && (ans.Status.Code == "0" || ans.Status.Message == "" || ans.Nonce != ""):
					t.Fatalf("an error must carry a non-zero code, a message and no nonce: %+v", ans)
				case code == 400 && w.st != block:
					// Every refusal counts as an attempt.
					after := f.session(fs.sid)
					if after.Challenge.Attempts != before.Challenge.Attempts+1 {
						t.Fatalf("attempts %d → %d, want +1", before.Challenge.Attempts, after.Challenge.Attempts)
					}
				}
			})
		}
	}
}
