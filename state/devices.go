package state

import (
	"crypto/subtle"
	"strings"
	"time"
)

// MaxDevices bounds the trusted devices kept per user; registering one
// more drops the oldest.
const MaxDevices = 50

// TrustDevice registers device id as trusted until until. It drops the
// devices that have expired at now and an earlier entry of the same id,
// and keeps at most MaxDevices, the most recently added.
func (u *UserState) TrustDevice(id string, now, until time.Time) {
	kept := make([]Device, 0, len(u.Devices)+1)
	for _, d := range u.Devices {
		if d.ID != id && now.Before(d.Until) {
			kept = append(kept, d)
		}
	}
	kept = append(kept, Device{ID: id, Added: now, Until: until})
	if over := len(kept) - MaxDevices; over > 0 {
		kept = kept[over:]
	}
	u.Devices = kept
}

// Trusts reports whether device id is trusted at now. The ids are compared
// in constant time (they may be derived from a secret the client holds).
func (u *UserState) Trusts(id string, now time.Time) bool {
	found := 0
	for _, d := range u.Devices {
		if now.Before(d.Until) {
			found |= subtle.ConstantTimeCompare([]byte(d.ID), []byte(id))
		}
	}
	return found == 1
}

// ForgetDevices drops the devices whose id starts with prefix and reports
// whether any was dropped.
func (u *UserState) ForgetDevices(prefix string) bool {
	kept := u.Devices[:0:0]
	for _, d := range u.Devices {
		if !strings.HasPrefix(d.ID, prefix) {
			kept = append(kept, d)
		}
	}
	dropped := len(kept) != len(u.Devices)
	u.Devices = kept
	return dropped
}
