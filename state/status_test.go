package state

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// expectedTransitions is the state machine written out by hand, one row per
// origin, columns in the order of Statuses: pending identification, pending
// verification, authenticated, failed, error, missing registration,
// challenge blocked. It is deliberately not derived from the code.
var expectedTransitions = map[Status]string{
	StatusPendingIdentification: "1111111",
	StatusPendingVerification:   "0111111",
	StatusAuthenticated:         "0111101",
	StatusFailed:                "0111111",
	StatusError:                 "0111111",
	StatusMissingRegistration:   "0111111",
	StatusChallengeBlocked:      "0000001",
}

func TestStatusesAreTheSevenWireValues(t *testing.T) {
	want := []string{
		"pending identification", "pending verification", "authenticated", "failed",
		"error", "missing registration", "challenge blocked",
	}
	if len(Statuses) != len(want) {
		t.Fatalf("Statuses has %d values, want %d", len(Statuses), len(want))
	}
	for i, s := range Statuses {
		if string(s) != want[i] {
			t.Errorf("Statuses[%d] = %q, want %q", i, s, want[i])
		}
		got, err := ParseStatus(want[i])
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", want[i], got, err)
		}
	}
}

func TestParseStatusRejectsUnknown(t *testing.T) {
	for _, in := range []string{"", "Authenticated", "authenticated ", "blocked", "0"} {
		_, err := ParseStatus(in)
		if err == nil {
			t.Errorf("ParseStatus(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), "pending identification") || !strings.Contains(err.Error(), "challenge blocked") {
			t.Errorf("ParseStatus(%q) error does not list the allowed values: %v", in, err)
		}
	}
}

func TestCanTransitionEveryPair(t *testing.T) {
	if len(expectedTransitions) != len(Statuses) {
		t.Fatalf("expected table has %d rows for %d statuses", len(expectedTransitions), len(Statuses))
	}
	for _, from := range Statuses {
		row := expectedTransitions[from]
		for j, to := range Statuses {
			want := row[j] == '1'
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range Statuses {
		if CanTransition("bogus", s) || CanTransition(s, "bogus") {
			t.Errorf("an unknown status may transition to or from %q", s)
		}
	}
}

// sessionIn returns a live session whose status is from (a block, if any,
// lasting 15 minutes from now).
func sessionIn(t *testing.T, from Status, now time.Time) *Session {
	t.Helper()
	s := NewSession(NewID(), nil, now.Add(-time.Hour), 8*time.Hour, 0)
	s.Status = from
	if from == StatusChallengeBlocked {
		s.BlockedUntil = now.Add(15 * time.Minute)
	}
	if from == StatusAuthenticated {
		s.AuthTime = now.Add(-time.Hour)
		s.Factors = []string{"otp"}
	}
	return s
}

func TestSetStatusEveryPair(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, from := range Statuses {
		for j, to := range Statuses {
			allowed := expectedTransitions[from][j] == '1'
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				s := sessionIn(t, from, now)
				before := s.Clone()
				err := s.SetStatus(to, now, "why", 10*time.Minute)
				if !allowed {
					if err == nil {
						t.Fatalf("SetStatus allowed a forbidden transition")
					}
					if !equalSessions(s, before) {
						t.Fatalf("refused SetStatus changed the session")
					}
					if from == StatusChallengeBlocked {
						var be *BlockedError
						if !errors.As(err, &be) || !be.Until.Equal(before.BlockedUntil) {
							t.Fatalf("error = %v, want a BlockedError until %v", err, before.BlockedUntil)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("SetStatus refused an allowed transition: %v", err)
				}
				if s.Status != to || s.StatusReason != "why" || !s.UpdateTime.Equal(now) {
					t.Fatalf("after SetStatus: status %q reason %q updated %v", s.Status, s.StatusReason, s.UpdateTime)
				}
				switch to {
				case StatusChallengeBlocked:
					if want := now.Add(10 * time.Minute); !s.BlockedUntil.Equal(want) {
						t.Fatalf("BlockedUntil = %v, want %v", s.BlockedUntil, want)
					}
				default:
					if !s.BlockedUntil.IsZero() {
						t.Fatalf("BlockedUntil = %v, want zero", s.BlockedUntil)
					}
				}
				switch {
				case to == StatusAuthenticated && from == StatusAuthenticated:
					if !s.AuthTime.Equal(before.AuthTime) || len(s.Factors) != 1 {
						t.Fatalf("re-authenticating lost AuthTime/Factors: %v %v", s.AuthTime, s.Factors)
					}
				case to == StatusAuthenticated:
					if !s.AuthTime.Equal(now) {
						t.Fatalf("AuthTime = %v, want %v", s.AuthTime, now)
					}
				default:
					if !s.AuthTime.IsZero() || s.Factors != nil {
						t.Fatalf("leaving authenticated kept AuthTime %v / Factors %v", s.AuthTime, s.Factors)
					}
				}
			})
		}
	}
}

func TestChallengeBlockedIsStickyUntilExpiry(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := NewSession(NewID(), nil, t0, 8*time.Hour, 0)
	if err := s.SetStatus(StatusPendingVerification, t0, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(StatusChallengeBlocked, t0, "too_many_attempts", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	until := t0.Add(15 * time.Minute)

	steps := []struct {
		at   time.Duration
		want Status
	}{
		{0, StatusChallengeBlocked},
		{time.Minute, StatusChallengeBlocked},
		{15*time.Minute - time.Nanosecond, StatusChallengeBlocked},
		{15 * time.Minute, StatusPendingVerification},
		{time.Hour, StatusPendingVerification},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		if got := s.EffectiveStatus(now); got != st.want {
			t.Errorf("EffectiveStatus at +%v = %q, want %q", st.at, got, st.want)
		}
		if s.Authenticated(now) {
			t.Errorf("a blocked session counts as authenticated at +%v", st.at)
		}
	}

	// While blocked, every way out is refused, even to authenticated.
	for _, to := range Statuses {
		if to == StatusChallengeBlocked {
			continue
		}
		c := s.Clone()
		err := c.SetStatus(to, t0.Add(14*time.Minute), "", 0)
		var be *BlockedError
		if !errors.As(err, &be) || !be.Until.Equal(until) {
			t.Errorf("SetStatus(%q) while blocked: %v, want BlockedError until %v", to, err, until)
		}
		if c.Status != StatusChallengeBlocked {
			t.Errorf("refused SetStatus changed the status to %q", c.Status)
		}
	}
	if err := (&BlockedError{Until: until}).Error(); !strings.Contains(err, "2026-11-22T10:15:00Z") {
		t.Errorf("BlockedError message %q does not say until when", err)
	}

	// Once the block has run out the session behaves as pending verification.
	if err := s.SetStatus(StatusAuthenticated, until, "", 0); err != nil {
		t.Fatalf("authenticating after the block ran out: %v", err)
	}
	if !s.BlockedUntil.IsZero() || !s.Authenticated(until) || !s.AuthTime.Equal(until) {
		t.Fatalf("after the block: status %q until %v auth %v", s.Status, s.BlockedUntil, s.AuthTime)
	}
}

func TestBlockAgainWhileBlockedExtendsTheBlock(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := sessionIn(t, StatusPendingVerification, t0)
	if err := s.SetStatus(StatusChallengeBlocked, t0, "", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(StatusChallengeBlocked, t0.Add(10*time.Minute), "", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(25 * time.Minute); !s.BlockedUntil.Equal(want) {
		t.Fatalf("BlockedUntil = %v, want %v", s.BlockedUntil, want)
	}
}

func TestBlockNeedsPositiveDuration(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, -time.Minute} {
		s := sessionIn(t, StatusPendingVerification, now)
		before := s.Clone()
		if err := s.SetStatus(StatusChallengeBlocked, now, "", d); err == nil {
			t.Errorf("block for %v accepted", d)
		}
		if !equalSessions(s, before) {
			t.Errorf("refused block for %v changed the session", d)
		}
	}
}
