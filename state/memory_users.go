package state

import "time"

// UserStateRetention is how long the memory store keeps the per-user state
// of a user who holds no session, after its last write: long enough for
// everything recorded around a login (OTP sends are counted over an hour,
// TOTP steps are refused for a few periods), after which the state of a
// user who has gone away is dropped (its login history with it). A trusted
// device that is still valid, a factor still blocked, a registered factor
// or a bound provider account keeps the state whatever its age.
const UserStateRetention = time.Hour

// userEntry is a user's state and when it was last written (store clock).
type userEntry struct {
	u       *UserState
	written time.Time
}

// sweepUsers drops the per-user states that nothing needs any longer: the
// user holds no session, the state was last written more than
// UserStateRetention ago, and it holds no valid trusted device, no live
// factor block, no registered factor (passkey, recovery code, TOTP
// secret) and no OpenID Provider account bound to the key (Subject).
// Without it the map would only grow: one entry per user ever seen.
func (m *Memory) sweepUsers() {
	now := m.now()
	m.umu.Lock()
	defer m.umu.Unlock()
	for id, e := range m.users {
		if now.Sub(e.written) < UserStateRetention || holdsDevice(e.u, now) || holdsBlock(e.u, now) || holdsFactors(e.u) || e.u.Subject != "" {
			continue
		}
		if !m.byUser.has(hashUser(id)) {
			delete(m.users, id)
		}
	}
}

// holdsFactors reports whether u holds factors the user registered
// (passkeys, recovery codes, the TOTP secret of a user whose identity
// store cannot hold it): those are kept for good.
func holdsFactors(u *UserState) bool {
	return len(u.Passkeys) > 0 || len(u.Recovery) > 0 || u.TOTPSecret != ""
}

// holdsBlock reports whether one of u's factors is still blocked.
func holdsBlock(u *UserState, now time.Time) bool {
	for _, a := range u.Attempts {
		if now.Before(a.BlockedUntil) {
			return true
		}
	}
	return false
}

func holdsDevice(u *UserState, now time.Time) bool {
	for _, d := range u.Devices {
		if now.Before(d.Until) {
			return true
		}
	}
	return false
}
