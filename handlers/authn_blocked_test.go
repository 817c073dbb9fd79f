package handlers

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// blockFactor gives wrong answers to factor of alice on a challenge of its
// own until the user's factor is blocked; it returns that session's answer.
func (f *authnFixture) blockFactor(factor string) authnAnswer {
	f.t.Helper()
	a := f.start("alice")
	st, b := f.put(initReq(a.CorrelationID, a.Nonce, factor))
	if st != 200 {
		f.t.Fatalf("Init %s: %d %+v", factor, st, b)
	}
	code, n := f.lastCode().Code, b.Nonce
	for range f.a.OTP.MaxAttempts {
		st, c := f.put(validateReq(a.CorrelationID, n, wrongOf(code)))
		if c.Status.Status == "challenge blocked" {
			return a
		}
		if st != 200 {
			f.t.Fatalf("wrong answer: %d %+v", st, c)
		}
		n = c.Nonce
	}
	f.t.Fatalf("%s was not blocked after %d wrong answers", factor, f.a.OTP.MaxAttempts)
	return a
}

func (f *authnFixture) sentCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func (f *authnFixture) sends(user string) []time.Time {
	f.t.Helper()
	u, err := f.store.GetUser(context.Background(), user)
	if err != nil {
		return nil
	}
	return u.OTPSends
}

// TestAuthnInitOnBlockedFactorSendsNothing: an Init (first or again) of a
// code factor that is blocked, for the user or for the session, is refused
// with 1009 "challenge blocked" and Retry-After before any code is made:
// nothing is delivered, no send is counted and the session is unchanged.
func TestAuthnInitOnBlockedFactorSendsNothing(t *testing.T) {
	for _, factor := range []string{state.FactorEmail, state.FactorSMS} {
		t.Run(factor, func(t *testing.T) {
			f := newAuthnFixture(t)
			// A challenge of the user's, started before the block, whose
			// code is sent again after it (a resend).
			other := f.start("alice")
			if st, b := f.put(initReq(other.CorrelationID, other.Nonce, factor)); st != 200 {
				t.Fatalf("Init before the block: %d %+v", st, b)
			}
			blocked := f.blockFactor(factor)
			f.clk.Advance(time.Minute) // past the resend cooldown
			fresh := f.start("alice")

			refused := func(name string, a authnAnswer, nonce string) {
				t.Helper()
				before := *f.session(a.SessionID)
				sent, sends := f.sentCount(), len(f.sends("alice"))
				w := f.do("PUT", mustJSON(initReq(a.CorrelationID, nonce, factor)))
				got := readAuthn(t, w)
				if w.Code != 400 || got.Status.Code != authnCodeBlocked || got.Status.Status != "challenge blocked" ||
					got.Status.Message != state.ReasonTooManyAttempts {
					t.Fatalf("%s: %d %s", name, w.Code, w.Body)
				}
				if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra <= 0 {
					t.Errorf("%s: Retry-After %q", name, w.Header().Get("Retry-After"))
				}
				if n := f.sentCount(); n != sent {
					t.Errorf("%s: %d code(s) delivered", name, n-sent)
				}
				if n := len(f.sends("alice")); n != sends {
					t.Errorf("%s: %d send(s) counted", name, n-sends)
				}
				after := f.session(a.SessionID)
				if after.Version != before.Version || after.Status != before.Status {
					t.Errorf("%s: the session changed: version %d → %d, status %q → %q",
						name, before.Version, after.Version, before.Status, after.Status)
				}
			}
			refused("new challenge", fresh, fresh.Nonce)
			refused("resend", other, "")
			refused("blocked session", blocked, "")

			// Another factor of the user is not blocked.
			if st, b := f.put(initReq(fresh.CorrelationID, fresh.Nonce, state.FactorTOTP)); st != 200 {
				t.Fatalf("Init of TOTP: %d %+v", st, b)
			}
			// Once the block ends the factor works again.
			f.clk.Advance(f.a.OTP.BlockFor)
			sent := f.sentCount()
			later := f.start("alice")
			st, b := f.put(initReq(later.CorrelationID, later.Nonce, factor))
			if st != 200 || f.sentCount() != sent+1 {
				t.Fatalf("Init after the block: %d %+v, %d sent", st, b, f.sentCount()-sent)
			}
		})
	}
}

// TestAuthnInitOnBlockedTOTP: once wrong TOTP answers have blocked the
// factor for the user, an Init of it on a new challenge is refused as a
// code factor's is (1009, Retry-After, the session unchanged) instead of
// opening a challenge whose every answer would be refused; other factors
// stay open, and the factor works again once the block ends.
func TestAuthnInitOnBlockedTOTP(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("alice")
	st, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorTOTP))
	if st != 200 {
		t.Fatalf("Init: %d %+v", st, b)
	}
	n, blocked := b.Nonce, false
	for range f.a.OTP.MaxAttempts {
		st, c := f.put(validateReq(a.CorrelationID, n, wrongOf(f.totpCode())))
		if c.Status.Status == "challenge blocked" {
			blocked = true
			break
		}
		if st != 200 {
			t.Fatalf("wrong answer: %d %+v", st, c)
		}
		n = c.Nonce
	}
	if !blocked {
		t.Fatalf("TOTP was not blocked after %d wrong answers", f.a.OTP.MaxAttempts)
	}

	fresh := f.start("alice")
	before := *f.session(fresh.SessionID)
	w := f.do("PUT", mustJSON(initReq(fresh.CorrelationID, fresh.Nonce, state.FactorTOTP)))
	got := readAuthn(t, w)
	if w.Code != 400 || got.Status.Code != authnCodeBlocked || got.Status.Status != "challenge blocked" ||
		got.Status.Message != state.ReasonTooManyAttempts {
		t.Fatalf("Init of a blocked TOTP: %d %s", w.Code, w.Body)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if after := f.session(fresh.SessionID); after.Version != before.Version || after.Status != before.Status {
		t.Errorf("the session changed: version %d → %d, status %q → %q",
			before.Version, after.Version, before.Status, after.Status)
	}
	// Another factor of the user is not blocked (the refused Init left
	// the nonce as it was).
	if st, b := f.put(initReq(fresh.CorrelationID, fresh.Nonce, state.FactorEmail)); st != 200 {
		t.Fatalf("Init of ChallengeEmail: %d %+v", st, b)
	}
	// Once the block ends TOTP works again.
	f.clk.Advance(f.a.OTP.BlockFor)
	later := f.start("alice")
	st, b = f.put(initReq(later.CorrelationID, later.Nonce, state.FactorTOTP))
	if st != 200 {
		t.Fatalf("Init after the block: %d %+v", st, b)
	}
	if st, c := f.put(validateReq(later.CorrelationID, b.Nonce, f.totpCode())); st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("right code after the block: %d %+v", st, c)
	}
}
