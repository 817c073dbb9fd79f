package state

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reasons recorded with a status change by the OTP engine; they are the
// challenge API's challengeResultReason values.
const (
	ReasonTooManyAttempts = "too_many_attempts"
)

// FactorOTP is the factor recorded in Session.Factors when a one-time code
// is passed and the challenge names no factor of its own.
const FactorOTP = "otp"

// OTPPolicy holds the rules of one-time codes sent by mail, webhook or handed
// to a trusted caller. Its methods are pure functions of the record they are
// given, the time and the policy, so they can run inside Store.Update and
// Store.UpdateUser callbacks (which may be retried).
type OTPPolicy struct {
	// Digits is the length of a code. Default: 6.
	Digits int
	// Lifetime is how long a code may be used. Default: 5m.
	Lifetime time.Duration
	// MaxAttempts is the number of wrong answers after which the session is
	// "challenge blocked". Default: 5.
	MaxAttempts int
	// BlockFor is how long that block lasts. Default: 15m.
	BlockFor time.Duration
	// Cooldown is the minimum time between two codes for one challenge.
	// Default: 30s.
	Cooldown time.Duration
	// SendsPerHour bounds the codes sent to one user in any hour.
	// Default: 10.
	SendsPerHour int
}

// OTP policy defaults.
const (
	DefaultOTPDigits       = 6
	DefaultOTPLifetime     = 5 * time.Minute
	DefaultOTPMaxAttempts  = 5
	DefaultOTPBlockFor     = 15 * time.Minute
	DefaultOTPCooldown     = 30 * time.Second
	DefaultOTPSendsPerHour = 10
)

// MinOTPDigits and MaxOTPDigits bound OTPPolicy.Digits.
const (
	MinOTPDigits = 4
	MaxOTPDigits = 10
)

// Defaults returns p with every zero field set to its default.
func (p OTPPolicy) Defaults() OTPPolicy {
	if p.Digits == 0 {
		p.Digits = DefaultOTPDigits
	}
	if p.Lifetime == 0 {
		p.Lifetime = DefaultOTPLifetime
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultOTPMaxAttempts
	}
	if p.BlockFor == 0 {
		p.BlockFor = DefaultOTPBlockFor
	}
	if p.Cooldown == 0 {
		p.Cooldown = DefaultOTPCooldown
	}
	if p.SendsPerHour == 0 {
		p.SendsPerHour = DefaultOTPSendsPerHour
	}
	return p
}

// Validate reports a policy that cannot work.
func (p OTPPolicy) Validate() error {
	switch {
	case p.Digits < MinOTPDigits || p.Digits > MaxOTPDigits:
		return fmt.Errorf("otp digits must be between %d and %d, got %d", MinOTPDigits, MaxOTPDigits, p.Digits)
	case p.Lifetime <= 0:
		return fmt.Errorf("otp lifetime must be positive")
	case p.MaxAttempts <= 0:
		return fmt.Errorf("otp max attempts must be positive")
	case p.BlockFor <= 0:
		return fmt.Errorf("otp block duration must be positive")
	case p.Cooldown < 0:
		return fmt.Errorf("otp cool-down must not be negative")
	case p.SendsPerHour < 0:
		return fmt.Errorf("otp sends per hour must not be negative")
	}
	return nil
}

// OTPResult is the outcome of checking an answer.
type OTPResult int

// The outcomes of Verify.
const (
	// OTPOK: the answer was right; the session is authenticated.
	OTPOK OTPResult = iota
	// OTPWrong: the answer was wrong and counted as an attempt.
	OTPWrong
	// OTPExpired: the code's lifetime has passed; the answer was not checked.
	OTPExpired
	// OTPUsed: the code was already used.
	OTPUsed
	// OTPBlocked: the session is "challenge blocked" (possibly by this very
	// answer, which was wrong and the last one allowed).
	OTPBlocked
	// OTPNone: no code was issued for this session (or it was burned by a
	// block); the answer was not checked.
	OTPNone
)

var otpResultNames = [...]string{"ok", "wrong", "expired", "used", "blocked", "none"}

func (r OTPResult) String() string {
	if r >= 0 && int(r) < len(otpResultNames) {
		return otpResultNames[r]
	}
	return fmt.Sprintf("OTPResult(%d)", int(r))
}

// Errors of Issue and AllowSend.
var (
	// ErrOTPCooldown: a code was issued for this challenge less than the
	// cool-down ago. Returned wrapped in a *RetryError.
	ErrOTPCooldown = errors.New("otp requested again too soon")
	// ErrOTPSendLimit: the user has reached the hourly send limit. Returned
	// wrapped in a *RetryError.
	ErrOTPSendLimit = errors.New("otp send limit reached for this user")
)

// RetryError says when a refused request may be tried again.
type RetryError struct {
	Err   error
	After time.Time
}

func (e *RetryError) Error() string {
	return e.Err.Error() + ", retry after " + e.After.UTC().Format(time.RFC3339)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Issue makes a fresh code for the session's challenge, creating the
// challenge if there is none, and keeps only its keyed hash. It resets the
// attempt counter (a new code deserves a new count) and refuses while the
// session is blocked (*BlockedError) or within the cool-down of the previous
// code (*RetryError wrapping ErrOTPCooldown). key is the server's OTP key.
func (p OTPPolicy) Issue(s *Session, key []byte, now time.Time) (code string, expiresAt time.Time, err error) {
	if s.EffectiveStatus(now) == StatusChallengeBlocked {
		return "", time.Time{}, &BlockedError{Until: s.BlockedUntil}
	}
	if len(key) == 0 {
		return "", time.Time{}, errors.New("otp key is empty")
	}
	ch := s.Challenge
	if ch == nil {
		ch = &Challenge{}
		s.Challenge = ch
	}
	if !ch.OTPIssued.IsZero() && p.Cooldown > 0 {
		if next := ch.OTPIssued.Add(p.Cooldown); now.Before(next) {
			return "", time.Time{}, &RetryError{Err: ErrOTPCooldown, After: next}
		}
	}
	code = NewOTP(p.Digits)
	ch.AnswerHash = OTPHash(key, s.Key, code)
	ch.OTPIssued = now
	ch.OTPExpiry = now.Add(p.Lifetime)
	ch.OTPUsed = false
	ch.Attempts = 0
	s.UpdateTime = now
	return code, ch.OTPExpiry, nil
}

// HasLiveOTP reports whether the session holds an unused code that has not
// expired at now.
func (s *Session) HasLiveOTP(now time.Time) bool {
	ch := s.Challenge
	return ch != nil && len(ch.AnswerHash) > 0 && !ch.OTPUsed && now.Before(ch.OTPExpiry)
}

// Verify checks answer against the session's code. A right answer marks the
// code used and authenticates the session (recording the challenge's factor,
// or FactorOTP); a wrong one counts as an attempt (see Fail). An expired,
// used or absent code is reported without counting. The comparison of
// hashes is constant-time.
func (p OTPPolicy) Verify(s *Session, key []byte, answer string, now time.Time) OTPResult {
	if s.EffectiveStatus(now) == StatusChallengeBlocked {
		return OTPBlocked
	}
	ch := s.Challenge
	if ch == nil || len(ch.AnswerHash) == 0 {
		return OTPNone
	}
	if ch.OTPUsed {
		return OTPUsed
	}
	if !now.Before(ch.OTPExpiry) {
		return OTPExpired
	}
	if len(answer) != p.Digits || !hmac.Equal(OTPHash(key, s.Key, answer), ch.AnswerHash) {
		return p.Fail(s, now)
	}
	ch.OTPUsed = true
	factor := ch.Factor
	if factor == "" {
		factor = FactorOTP
	}
	if err := p.Pass(s, factor, now); err != nil {
		// Only a block can refuse the move, and that was checked above.
		return OTPBlocked
	}
	return OTPOK
}

// Fail counts a wrong answer (or any failure that counts as an attempt, such
// as a stale nonce) on the session's challenge. When the count reaches
// MaxAttempts the code is burned and the session becomes "challenge
// blocked" for BlockFor with reason too_many_attempts; Fail then returns
// OTPBlocked, otherwise OTPWrong.
func (p OTPPolicy) Fail(s *Session, now time.Time) OTPResult {
	if s.EffectiveStatus(now) == StatusChallengeBlocked {
		return OTPBlocked
	}
	if s.Challenge == nil {
		s.Challenge = &Challenge{}
	}
	ch := s.Challenge
	ch.Attempts++
	s.UpdateTime = now
	if ch.Attempts < p.MaxAttempts {
		return OTPWrong
	}
	ch.AnswerHash = nil
	ch.OTPUsed = false
	ch.Attempts = 0
	if err := s.SetStatus(StatusChallengeBlocked, now, ReasonTooManyAttempts, p.BlockFor); err != nil {
		return OTPWrong
	}
	return OTPBlocked
}

// Pass authenticates the session with factor at now, recording the factor
// once in Session.Factors.
func (p OTPPolicy) Pass(s *Session, factor string, now time.Time) error {
	if err := s.SetStatus(StatusAuthenticated, now, "", 0); err != nil {
		return err
	}
	if s.Challenge != nil {
		s.Challenge.Attempts = 0
	}
	if slices.Contains(s.Factors, factor) {
		return nil
	}
	s.Factors = append(s.Factors, factor)
	return nil
}

// AllowSend checks the user's hourly send limit at now and, if a code may be
// sent, records the send. Call it inside Store.UpdateUser before delivering.
// It forgets sends older than an hour. A refusal is a *RetryError wrapping
// ErrOTPSendLimit; u is then unchanged.
func (p OTPPolicy) AllowSend(u *UserState, now time.Time) error {
	cut := now.Add(-time.Hour)
	kept := u.OTPSends[:0:0]
	for _, t := range u.OTPSends {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	if p.SendsPerHour > 0 && len(kept) >= p.SendsPerHour {
		return &RetryError{Err: ErrOTPSendLimit, After: kept[len(kept)-p.SendsPerHour].Add(time.Hour)}
	}
	u.OTPSends = append(kept, now)
	return nil
}

// OTPHash is the keyed hash under which a code is stored: HMAC-SHA256 over
// the session's key and the code, so a stored hash is bound to its session.
func OTPHash(key []byte, sk Key, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(sk[:])
	m.Write([]byte(code))
	return m.Sum(nil)
}

// NewOTP returns a code of digits decimal digits from crypto/rand, uniformly
// distributed: 64-bit samples at or above the largest multiple of 10^digits
// are rejected, so there is no modulo bias. digits must be 1..18.
func NewOTP(digits int) string {
	if digits < 1 || digits > 18 {
		panic(fmt.Sprintf("authsession: otp digits out of range: %d", digits))
	}
	mod := uint64(1)
	for range digits {
		mod *= 10
	}
	limit := ^uint64(0) - ^uint64(0)%mod // a multiple of mod
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("authsession: crypto/rand failed: " + err.Error())
		}
		v := binary.BigEndian.Uint64(b[:])
		if v < limit {
			return fmt.Sprintf("%0*d", digits, v%mod)
		}
	}
}

// equalCode compares two codes in constant time.
func equalCode(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
