package state

import (
	"context"
	"errors"
	"time"
)

// Errors returned by stores.
var (
	// ErrNotFound: no live record under that key (expired counts as absent).
	ErrNotFound = errors.New("session not found")
	// ErrExists: Create found a live record under the key already.
	ErrExists = errors.New("session already exists")
	// ErrUnavailable wraps failures of a store's backend (disk, network):
	// the caller should answer 503 or its family's equivalent and change
	// nothing.
	ErrUnavailable = errors.New("session store unavailable")
)

// Clock returns the current time. Stores and handlers take one so that tests
// can drive expiry without sleeping.
type Clock func() time.Time

// Store keeps sessions and per-user state. Every implementation enforces a
// session's lifetime on read: Get never returns a session that is not Live,
// whether or not a background sweep has removed it yet.
//
// Returned *Session and *UserState values are shared snapshots: callers must
// not modify them. Update and UpdateUser hand fn a private copy; fn may be
// called more than once (optimistic retries) and must not have side effects
// outside the record. If fn returns an error, nothing is written and Update
// returns that error.
type Store interface {
	// Get returns the live session stored under key, or ErrNotFound.
	Get(ctx context.Context, key Key) (*Session, error)
	// Create stores a new session under s.Key, or returns ErrExists.
	Create(ctx context.Context, s *Session) error
	// Update atomically applies fn to the live session under key and
	// returns the stored result. Version is incremented by the store.
	Update(ctx context.Context, key Key, fn func(*Session) error) (*Session, error)
	// Delete removes the session under key and returns what was removed,
	// or ErrNotFound.
	Delete(ctx context.Context, key Key) (*Session, error)
	// ByUser returns the live sessions of a user, oldest first.
	ByUser(ctx context.Context, userID string) ([]*Session, error)
	// Scan calls fn for every live session, in no particular order, until
	// fn returns false.
	Scan(ctx context.Context, fn func(*Session) bool) error
	// Touch records an access at the given time (LastAccessTime). It never
	// blocks on a disk or network round trip: durable stores may write it
	// later, and a touch lost in a crash costs at most an idle refresh.
	Touch(ctx context.Context, key Key, at time.Time) error

	// GetUser returns the per-user state of userID, or ErrNotFound.
	GetUser(ctx context.Context, userID string) (*UserState, error)
	// UpdateUser atomically applies fn to the user's state, creating an
	// empty one if there is none, and returns the stored result.
	UpdateUser(ctx context.Context, userID string, fn func(*UserState) error) (*UserState, error)

	// Close releases the store's resources; the store is unusable after.
	Close() error
}

// Peeker is implemented by stores that hold their sessions in this process
// (the memory store): Peek returns the session under key, live or not,
// without reading a clock or waiting on anything. The caller must check
// Live (or Authenticated) itself with its own clock; the gate does, and so
// reads the clock once per request instead of twice.
type Peeker interface {
	Peek(key Key) (*Session, bool)
}

// UserState is what the store keeps per user rather than per session:
// trusted devices, the login history and factor counters. Later features add
// fields here; durable stores persist the whole record.
type UserState struct {
	UserID  string   `json:"uid"`
	Devices []Device `json:"dev,omitempty"`
	History []Login  `json:"hist,omitempty"`
	// OTPSends are the times of the codes sent to the user in the last
	// hour (see OTPPolicy.AllowSend).
	OTPSends []time.Time `json:"os,omitempty"`
	// TOTPStep is the last TOTP time step accepted for the user; codes of
	// that step or earlier are refused as replays (see TOTPPolicy).
	TOTPStep uint64 `json:"ts,omitempty"`
	// TOTPSecret is the user's authenticator secret when their identity
	// store cannot hold it (directory and provider users).
	TOTPSecret string `json:"totp,omitempty"`
	// Passkeys are the user's WebAuthn credentials (see webauthn.go).
	Passkeys []Passkey `json:"pk,omitempty"`
	// Recovery are the SHA-256 hashes of the user's unused recovery codes
	// and when the set was made (see recovery.go).
	Recovery   []string  `json:"rc,omitempty"`
	RecoveryAt time.Time `json:"rca,omitzero"`
	// Ceremonies are the WebAuthn ceremonies under way, by ceremony id.
	Ceremonies map[string]Ceremony `json:"cer,omitempty"`
	// Attempts count the wrong answers per factor (see
	// OTPPolicy.ReserveAttempt).
	Attempts map[string]FactorAttempts `json:"fa,omitempty"`
	// Subject is the exact account name ("<provider>:<sub>") of the
	// OpenID Provider account that first signed in under this user key.
	// Keys fold letter case, a provider's subjects do not: a second
	// account whose subject differs only in case is refused rather than
	// let in as the first (see the portal's oidcAccount).
	Subject string `json:"sub,omitempty"`
	// Version counts writes, like Session.Version.
	Version uint64 `json:"v"`
}

// Device is a device registered as trusted for a user until Until.
type Device struct {
	ID    string    `json:"id"`
	Added time.Time `json:"added"`
	Until time.Time `json:"until"`
}

// Login is one entry of a user's login history.
type Login struct {
	Time              time.Time `json:"t"`
	ClientIP          string    `json:"ip,omitempty"`
	DeviceID          string    `json:"dev,omitempty"`
	ClientApplication string    `json:"app,omitempty"`
}

// Clone returns a deep copy of u.
func (u *UserState) Clone() *UserState {
	c := *u
	c.Devices = append([]Device(nil), u.Devices...)
	c.History = append([]Login(nil), u.History...)
	c.OTPSends = append([]time.Time(nil), u.OTPSends...)
	c.Passkeys = clonePasskeys(u.Passkeys)
	c.Recovery = append([]string(nil), u.Recovery...)
	c.Ceremonies = cloneCeremonies(u.Ceremonies)
	if u.Attempts != nil {
		c.Attempts = make(map[string]FactorAttempts, len(u.Attempts))
		for f, a := range u.Attempts {
			a.Times = append([]time.Time(nil), a.Times...)
			c.Attempts[f] = a
		}
	}
	return &c
}
