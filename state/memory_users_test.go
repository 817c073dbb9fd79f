package state

import (
	"context"
	"testing"
	"time"
)

// TestMemoryDropsIdleUserStates: the per-user map shrinks with the
// sessions. The state of a user whose sessions are gone is dropped once it
// is older than UserStateRetention, unless a trusted device is still valid
// or a session remains.
func TestMemoryDropsIdleUserStates(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	login := func(user string) {
		if _, err := m.UpdateUser(ctx, user, func(u *UserState) error {
			u.History = append(u.History, Login{Time: clk.Now()})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"gone", "device", "session", "blocked"} {
		login(u)
	}
	if _, err := m.UpdateUser(ctx, "blocked", func(u *UserState) error {
		u.Attempts = map[string]FactorAttempts{"ChallengeOMATOTP": {BlockedUntil: clk.Now().Add(24 * time.Hour)}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateUser(ctx, "device", func(u *UserState) error {
		u.Devices = append(u.Devices, Device{ID: "d1", Added: clk.Now(), Until: clk.Now().Add(30 * 24 * time.Hour)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	create(t, m, clk, "session", 8*time.Hour, 0)
	id, _ := create(t, m, clk, "gone", 8*time.Hour, 0)
	if _, err := m.Delete(ctx, KeyOf(id)); err != nil {
		t.Fatal(err)
	}

	sweep := func() {
		m.sweepSessions()
		m.sweepUsers()
	}
	sweep()
	if _, err := m.GetUser(ctx, "gone"); err != nil {
		t.Fatalf("state dropped before UserStateRetention: %v", err)
	}
	clk.Advance(UserStateRetention + time.Minute)
	sweep()
	if _, err := m.GetUser(ctx, "gone"); err == nil {
		t.Error("the state of a user without sessions is kept forever")
	}
	for _, u := range []string{"device", "session", "blocked"} {
		if _, err := m.GetUser(ctx, u); err != nil {
			t.Errorf("state of %q dropped: %v", u, err)
		}
	}
	m.umu.Lock()
	n := len(m.users)
	m.umu.Unlock()
	if n != 3 {
		t.Errorf("%d user states held, want 3", n)
	}
}

// TestMemoryKeepsIdleUserStatesThatHoldSomething: an idle user's state is
// kept for good when it holds what no other store has.
//
//   - A directory or provider user's TOTP secret lives in their per-user
//     state (their identity store cannot hold it), so it is kept, as
//     passkeys are. It used to be dropped an hour after the user's last
//     session, and with it the factor: their next sign-in went without it (a
//     provider's if_registered) or could not pass it.
//   - A provider user's state records which provider account (Subject, in
//     its exact letter case) owns the user key, and the portal refuses any
//     other account whose subject folds to the same key. It used to be
//     dropped like any other: the binding went with it, and the next account
//     to sign in under the key, say "corp:alice" after "corp:Alice", took it
//     over, with the first one's factors and identity.
func TestMemoryKeepsIdleUserStatesThatHoldSomething(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*UserState)
		kept func(*UserState) bool
	}{
		{"totp secret", func(u *UserState) { u.TOTPSecret = "JBSWY3DPEHPK3PXP" }, func(u *UserState) bool { return u.TOTPSecret == "JBSWY3DPEHPK3PXP" }},
		{"provider account", func(u *UserState) { u.Subject = "corp:Alice" }, func(u *UserState) bool { return u.Subject == "corp:Alice" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			m := newTestMemory(t, clk)
			ctx := context.Background()
			if _, err := m.UpdateUser(ctx, "corp:alice", func(u *UserState) error {
				tc.set(u)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			clk.Advance(UserStateRetention + time.Minute)
			m.sweepUsers()
			u, err := m.GetUser(ctx, "corp:alice")
			if err != nil || !tc.kept(u) {
				t.Fatalf("an idle user's state: %+v, %v", u, err)
			}
		})
	}
}
