package state

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Session is the one record that every API family reads and writes. Stores
// hand out *Session values that are shared and must be treated as read-only;
// changes go through Store.Update, which works on a private copy.
//
// The JSON tags are the persisted form used by durable stores (see Encode).
type Session struct {
	// Key is the SHA-256 of the session id; the id itself is never stored
	// in the clear.
	Key Key `json:"key"`

	// The fields the gate reads on every request follow the Key, so that
	// a snapshot costs it two or three cache lines rather than five.

	Status Status `json:"st"`
	// ExpiryTime is the absolute end of the session's life.
	ExpiryTime     time.Time `json:"et"`
	LastAccessTime time.Time `json:"at"`
	// IdleTimeout ends the session when LastAccessTime is older than it;
	// zero disables the idle check. It is fixed at creation, so a change of
	// configuration applies to new sessions only.
	IdleTimeout time.Duration `json:"idle,omitempty"`
	UserID      string        `json:"uid,omitempty"`
	LoginName   string        `json:"login,omitempty"`

	// SealedID is the id sealed with AES-GCM (see Sealer), kept so that an
	// answer can return the id of a session the caller did not name.
	SealedID []byte `json:"sid,omitempty"`
	// Index is OAM's sessionIndex: a short random id distinct from the id.
	Index string `json:"idx,omitempty"`

	GroupName       string            `json:"group,omitempty"`
	IDStoreName     string            `json:"ids,omitempty"`
	ClientIP        string            `json:"ip,omitempty"`
	IsImpersonating bool              `json:"imp,omitempty"`
	UserAttributes  map[string]string `json:"attrs,omitempty"`

	CreateTime time.Time `json:"ct"`
	UpdateTime time.Time `json:"ut"`
	// BlockedUntil ends a "challenge blocked" status.
	BlockedUntil time.Time `json:"bu,omitzero"`
	// StatusReason is the reason recorded with the last status change
	// (e.g. a challenge's too_many_attempts).
	StatusReason string `json:"sr,omitempty"`

	// Raw risk-analyzer values, echoed back by fetch.
	AuthenticationStatus *int   `json:"ras,omitempty"`
	ClientType           *int   `json:"rct,omitempty"`
	ClientApplication    string `json:"rca,omitempty"`
	ClientVersion        string `json:"rcv,omitempty"`
	ExternalDeviceID     string `json:"rdev,omitempty"`
	// Fingerprints are the browser fingerprints the risk analyzer's
	// create reported (fpList), echoed back by fetch. Records written
	// before the field existed read as having none.
	Fingerprints []Fingerprint `json:"rfp,omitempty"`

	// AuthTime is when the session last became authenticated; Factors the
	// factors passed to get there.
	AuthTime time.Time `json:"aut,omitzero"`
	Factors  []string  `json:"fac,omitempty"`

	// Challenge is the active challenge transaction, if any.
	Challenge *Challenge `json:"ch,omitempty"`

	// Version counts the writes to this record; stores use it for
	// optimistic concurrency.
	Version uint64 `json:"v"`
}

// Fingerprint is one entry of the risk analyzer's fpList: a cookie, the
// fingerprint the client computed, and the cookie's type.
type Fingerprint struct {
	Cookie      string `json:"c,omitempty"`
	Fingerprint string `json:"f,omitempty"`
	CookieType  string `json:"t,omitempty"`
}

// Challenge is the challenge transaction attached to a session. Secrets
// (nonce, answer) are kept only as hashes.
type Challenge struct {
	CorrelationID string    `json:"cid"`
	Factor        string    `json:"f,omitempty"`
	NonceHash     []byte    `json:"nh,omitempty"`
	AnswerHash    []byte    `json:"ah,omitempty"`
	Expiry        time.Time `json:"exp"`
	Attempts      int       `json:"att,omitempty"`
	Closed        bool      `json:"cl,omitempty"`
	// OTPIssued and OTPExpiry bound the one-time code whose keyed hash is
	// AnswerHash; OTPUsed marks it spent (see OTPPolicy).
	OTPIssued time.Time `json:"oi,omitzero"`
	OTPExpiry time.Time `json:"oe,omitzero"`
	OTPUsed   bool      `json:"ou,omitempty"`
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	c := *s
	c.SealedID = slices.Clone(s.SealedID)
	c.UserAttributes = maps.Clone(s.UserAttributes)
	c.Factors = slices.Clone(s.Factors)
	c.Fingerprints = slices.Clone(s.Fingerprints)
	if s.AuthenticationStatus != nil {
		v := *s.AuthenticationStatus
		c.AuthenticationStatus = &v
	}
	if s.ClientType != nil {
		v := *s.ClientType
		c.ClientType = &v
	}
	if s.Challenge != nil {
		ch := *s.Challenge
		ch.NonceHash = slices.Clone(ch.NonceHash)
		ch.AnswerHash = slices.Clone(ch.AnswerHash)
		c.Challenge = &ch
	}
	return &c
}

// Live reports whether the session is usable at now: before its absolute
// expiry and, if it has an idle timeout, accessed within it.
func (s *Session) Live(now time.Time) bool {
	if !now.Before(s.ExpiryTime) {
		return false
	}
	if s.IdleTimeout > 0 && Elapsed(now, s.LastAccessTime, s.IdleTimeout) {
		return false
	}
	return true
}

// Deadline returns the instant at which the session stops being live if it
// is not accessed again: the earlier of its expiry and its idle end.
func (s *Session) Deadline() time.Time {
	if s.IdleTimeout > 0 {
		if idle := s.LastAccessTime.Add(s.IdleTimeout); idle.Before(s.ExpiryTime) {
			return idle
		}
	}
	return s.ExpiryTime
}

// EffectiveStatus returns the status as seen at now: a block that has run out
// reads as "pending verification".
func (s *Session) EffectiveStatus(now time.Time) Status {
	if s.Status == StatusChallengeBlocked && !now.Before(s.BlockedUntil) {
		return StatusPendingVerification
	}
	return s.Status
}

// Authenticated reports whether the session passes the gate at now.
func (s *Session) Authenticated(now time.Time) bool {
	return s.Status == StatusAuthenticated && s.Live(now)
}

// BlockedError is returned when a transition is refused because the session
// is in a "challenge blocked" status that has not yet run out.
type BlockedError struct{ Until time.Time }

func (e *BlockedError) Error() string {
	return "session is challenge blocked until " + e.Until.UTC().Format(time.RFC3339)
}

// ErrTransition is what SetStatus returns for a change the status machine
// does not allow.
var ErrTransition = errors.New("status cannot change")

// SetStatus moves the session to status to at now, following the state
// machine. Moving to "challenge blocked" requires blockFor > 0. Moving to
// "authenticated" records AuthTime. A refused transition leaves s unchanged.
func (s *Session) SetStatus(to Status, now time.Time, reason string, blockFor time.Duration) error {
	from := s.EffectiveStatus(now)
	if from == StatusChallengeBlocked && to != StatusChallengeBlocked {
		return &BlockedError{Until: s.BlockedUntil}
	}
	if !CanTransition(from, to) {
		return fmt.Errorf("%w from %q to %q", ErrTransition, from, to)
	}
	if to == StatusChallengeBlocked {
		if blockFor <= 0 {
			return fmt.Errorf("a block needs a positive duration")
		}
		s.BlockedUntil = now.Add(blockFor)
	} else {
		s.BlockedUntil = time.Time{}
	}
	if to == StatusAuthenticated && (s.Status != StatusAuthenticated || s.AuthTime.IsZero()) {
		s.AuthTime = now
	}
	if to != StatusAuthenticated {
		s.AuthTime = time.Time{}
		s.Factors = nil
	}
	s.Status = to
	s.StatusReason = reason
	s.UpdateTime = now
	return nil
}

// NewSession returns a session for id created at now, with an absolute
// lifetime and an idle timeout (zero: none), in status "pending
// identification". The id is kept only as its Key and, if sealer is not nil,
// sealed.
func NewSession(id string, sealer *Sealer, now time.Time, lifetime, idle time.Duration) *Session {
	s := &Session{
		Key:            KeyOf(id),
		Index:          NewIndex(),
		CreateTime:     now,
		UpdateTime:     now,
		LastAccessTime: now,
		ExpiryTime:     now.Add(lifetime),
		IdleTimeout:    idle,
		Status:         StatusPendingIdentification,
	}
	if sealer != nil {
		s.SealedID = sealer.Seal(id)
	}
	return s
}
