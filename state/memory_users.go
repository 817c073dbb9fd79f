package state

import "time"

// UserStateRetention is how long the memory store keeps the per-user state
// of a user who holds no session, after its last write: long enough for
// everything recorded around a login (OTP sends are counted over an hour,
// TOTP steps are refused for a few periods), after which the state of a
// user who has gone away is dropped. A trusted device that is still valid
// keeps the state whatever its age.
const UserStateRetention = time.Hour

// userEntry is a user's state and when it was last written (store clock).
type userEntry struct {
	u       *UserState
	written time.Time
}

// sweepUsers drops the per-user states that nothing needs any longer: the
// user holds no session, the state was last written more than
// UserStateRetention ago and none of its trusted devices is still valid.
// Without it the map would only grow: one entry per user ever seen.
func (m *Memory) sweepUsers() {
	now := m.now()
	m.umu.Lock()
	defer m.umu.Unlock()
	for id, e := range m.users {
		if now.Sub(e.written) < UserStateRetention || holdsDevice(e.u, now) {
			continue
		}
		m.imu.Lock()
		_, indexed := m.byUser[id]
		m.imu.Unlock()
		if !indexed {
			delete(m.users, id)
		}
	}
}

func holdsDevice(u *UserState, now time.Time) bool {
	for _, d := range u.Devices {
		if now.Before(d.Until) {
			return true
		}
	}
	return false
}
