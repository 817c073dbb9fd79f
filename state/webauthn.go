package state

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Limits of the WebAuthn state kept per user.
const (
	// MaxPasskeys bounds the passkeys of one user.
	MaxPasskeys = 20
	// MaxPasskeyName bounds a passkey's user-given name (bytes).
	MaxPasskeyName = 64
	// MaxCeremonies bounds the ceremonies under way for one user; starting
	// one more drops the oldest.
	MaxCeremonies = 16
	// CeremonyTTL is how long a registration or assertion ceremony may
	// take: its challenge is refused after that.
	CeremonyTTL = 5 * time.Minute
)

// Errors of the passkey state.
var (
	// ErrPasskeyExists: a passkey with that credential id is registered.
	ErrPasskeyExists = errors.New("this passkey is already registered")
	// ErrTooManyPasskeys: the user holds MaxPasskeys already.
	ErrTooManyPasskeys = fmt.Errorf("at most %d passkeys per user", MaxPasskeys)
	// ErrUnknownPasskey: the user has no passkey with that credential id.
	ErrUnknownPasskey = errors.New("the passkey is not registered for this user")
	// ErrSignCount: the authenticator's signature counter did not grow,
	// a sign that the authenticator was cloned.
	ErrSignCount = errors.New("the passkey's signature counter went back (cloned authenticator?)")
	// ErrNoCeremony: no live ceremony of that id for this session.
	ErrNoCeremony = errors.New("no such ceremony under way (expired, used or of another session)")
)

// Passkey is a WebAuthn credential registered for a user.
type Passkey struct {
	// ID is the credential id given by the authenticator.
	ID []byte `json:"id"`
	// PublicKey is the credential's COSE public key.
	PublicKey []byte `json:"pub"`
	// SignCount is the last signature counter seen.
	SignCount uint32 `json:"sc,omitempty"`
	// Transports are the transports the browser reported at registration.
	Transports []string `json:"tr,omitempty"`
	// AAGUID identifies the authenticator's model.
	AAGUID []byte `json:"aag,omitempty"`
	// AttestationType is the attestation given at registration ("none").
	AttestationType string `json:"att,omitempty"`
	// UserVerified, BackupEligible and BackupState are the flags of the
	// last use.
	UserVerified   bool `json:"uv,omitempty"`
	BackupEligible bool `json:"be,omitempty"`
	BackupState    bool `json:"bs,omitempty"`
	// Name is the user's name for it.
	Name     string    `json:"name,omitempty"`
	Created  time.Time `json:"ct"`
	LastUsed time.Time `json:"lu,omitzero"`
}

// Ceremony is a WebAuthn registration or assertion under way: the data the
// relying party needs to check the answer, kept server-side until it is
// used once or expires.
type Ceremony struct {
	// Kind is "register" or "login".
	Kind string `json:"k"`
	// Binding ties the ceremony to the session that started it (a hash of
	// the session key); it must match when the ceremony is taken.
	Binding string `json:"b"`
	// Data is the relying party's session data (JSON).
	Data []byte `json:"d"`
	// Name is the passkey name chosen for a registration.
	Name    string    `json:"n,omitempty"`
	Expires time.Time `json:"exp"`
	Started time.Time `json:"st"`
}

func clonePasskeys(ps []Passkey) []Passkey {
	if ps == nil {
		return nil
	}
	out := make([]Passkey, len(ps))
	for i, p := range ps {
		p.ID = bytes.Clone(p.ID)
		p.PublicKey = bytes.Clone(p.PublicKey)
		p.AAGUID = bytes.Clone(p.AAGUID)
		p.Transports = slices.Clone(p.Transports)
		out[i] = p
	}
	return out
}

func cloneCeremonies(m map[string]Ceremony) map[string]Ceremony {
	if m == nil {
		return nil
	}
	out := make(map[string]Ceremony, len(m))
	for id, c := range m {
		c.Data = bytes.Clone(c.Data)
		out[id] = c
	}
	return out
}

// AddPasskey registers p for u. It refuses a credential id already
// registered and more than MaxPasskeys.
func (u *UserState) AddPasskey(p Passkey) error {
	if len(p.ID) == 0 || len(p.PublicKey) == 0 {
		return errors.New("a passkey needs a credential id and a public key")
	}
	if u.PasskeyIndex(p.ID) >= 0 {
		return ErrPasskeyExists
	}
	if len(u.Passkeys) >= MaxPasskeys {
		return ErrTooManyPasskeys
	}
	u.Passkeys = append(u.Passkeys, p)
	return nil
}

// PasskeyIndex returns the index of the passkey with credential id, or -1.
func (u *UserState) PasskeyIndex(id []byte) int {
	for i := range u.Passkeys {
		if bytes.Equal(u.Passkeys[i].ID, id) {
			return i
		}
	}
	return -1
}

// RemovePasskey drops the passkey with credential id and reports whether
// there was one.
func (u *UserState) RemovePasskey(id []byte) bool {
	i := u.PasskeyIndex(id)
	if i < 0 {
		return false
	}
	u.Passkeys = slices.Delete(u.Passkeys, i, i+1)
	if len(u.Passkeys) == 0 {
		u.Passkeys = nil
	}
	return true
}

// UsePasskey records a verified assertion of the passkey with credential
// id: the new signature counter and flags, and the time. A counter that
// does not grow (when either is not zero) is refused with ErrSignCount and
// nothing is recorded: the authenticator may have been cloned.
func (u *UserState) UsePasskey(id []byte, signCount uint32, uv, be, bs bool, now time.Time) error {
	i := u.PasskeyIndex(id)
	if i < 0 {
		return ErrUnknownPasskey
	}
	p := &u.Passkeys[i]
	if (signCount != 0 || p.SignCount != 0) && signCount <= p.SignCount {
		return ErrSignCount
	}
	p.SignCount = signCount
	p.UserVerified, p.BackupEligible, p.BackupState = uv, be, bs
	p.LastUsed = now
	return nil
}

// StartCeremony keeps c under id, dropping the expired ceremonies and, past
// MaxCeremonies, the oldest.
func (u *UserState) StartCeremony(id string, c Ceremony, now time.Time) {
	u.PurgeCeremonies(now)
	if u.Ceremonies == nil {
		u.Ceremonies = map[string]Ceremony{}
	}
	for len(u.Ceremonies) >= MaxCeremonies {
		oldest := ""
		for _, k := range slices.Sorted(maps.Keys(u.Ceremonies)) {
			if oldest == "" || u.Ceremonies[k].Started.Before(u.Ceremonies[oldest].Started) {
				oldest = k
			}
		}
		delete(u.Ceremonies, oldest)
	}
	c.Started = now
	if c.Expires.IsZero() {
		c.Expires = now.Add(CeremonyTTL)
	}
	u.Ceremonies[id] = c
}

// TakeCeremony removes and returns the ceremony under id if it is live at
// now, of kind and bound to binding (compared in constant time). A
// ceremony is taken once: a second take of the same id fails. Whatever the
// outcome, a ceremony found under id is dropped (a wrong binding burns it).
func (u *UserState) TakeCeremony(id, kind, binding string, now time.Time) (Ceremony, error) {
	u.PurgeCeremonies(now)
	c, ok := u.Ceremonies[id]
	if !ok {
		return Ceremony{}, ErrNoCeremony
	}
	delete(u.Ceremonies, id)
	if len(u.Ceremonies) == 0 {
		u.Ceremonies = nil
	}
	if c.Kind != kind || subtle.ConstantTimeCompare([]byte(c.Binding), []byte(binding)) != 1 {
		return Ceremony{}, ErrNoCeremony
	}
	return c, nil
}

// PurgeCeremonies drops the ceremonies expired at now and reports whether
// any was dropped.
func (u *UserState) PurgeCeremonies(now time.Time) bool {
	n := len(u.Ceremonies)
	maps.DeleteFunc(u.Ceremonies, func(_ string, c Ceremony) bool { return !now.Before(c.Expires) })
	if len(u.Ceremonies) == 0 {
		u.Ceremonies = nil
	}
	return n != len(u.Ceremonies)
}
