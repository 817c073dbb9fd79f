package state

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// FactorTOTP is the factor key of authenticator-app codes (RFC 6238), as the
// challenge API spells it.
const FactorTOTP = "ChallengeOMATOTP"

// TOTPPolicy holds the parameters of time-based codes (RFC 6238). The
// defaults are those every authenticator app understands.
type TOTPPolicy struct {
	// Issuer names the service in authenticator apps. Default: authsession.
	Issuer string
	// Period is the length of a time step. Default: 30s.
	Period time.Duration
	// Skew is the number of steps accepted before and after the current
	// one, for clock drift. Default: 1. Negative: none.
	Skew int
	// Digits is the length of a code. Default: 6.
	Digits int
}

// Defaults returns p with every zero field set to its default.
func (p TOTPPolicy) Defaults() TOTPPolicy {
	if p.Issuer == "" {
		p.Issuer = "authsession"
	}
	if p.Period == 0 {
		p.Period = 30 * time.Second
	}
	if p.Skew == 0 {
		p.Skew = 1
	}
	if p.Skew < 0 {
		p.Skew = 0
	}
	if p.Digits == 0 {
		p.Digits = 6
	}
	return p
}

// Validate reports a policy that cannot work.
func (p TOTPPolicy) Validate() error {
	switch {
	case p.Period < time.Second || p.Period%time.Second != 0:
		return fmt.Errorf("totp period must be a whole number of seconds, got %v", p.Period)
	case p.Digits != 6 && p.Digits != 8:
		return fmt.Errorf("totp digits must be 6 or 8, got %d", p.Digits)
	case p.Skew > 10:
		return fmt.Errorf("totp skew must be at most 10 steps, got %d", p.Skew)
	}
	return nil
}

// TOTPResult is the outcome of Check.
type TOTPResult int

// The outcomes of Check.
const (
	// TOTPOK: the code is right and was not used before.
	TOTPOK TOTPResult = iota
	// TOTPWrong: the code matches no step within the skew.
	TOTPWrong
	// TOTPReplay: the code is right but its step (or a later one) was
	// already accepted for this user.
	TOTPReplay
)

func (r TOTPResult) String() string {
	switch r {
	case TOTPOK:
		return "ok"
	case TOTPWrong:
		return "wrong"
	case TOTPReplay:
		return "replay"
	}
	return fmt.Sprintf("TOTPResult(%d)", int(r))
}

// ErrBadTOTPSecret is returned for a secret that is not base32.
var ErrBadTOTPSecret = errors.New("totp secret is not valid base32")

func (p TOTPPolicy) opts() hotp.ValidateOpts {
	d := otp.DigitsSix
	if p.Digits == 8 {
		d = otp.DigitsEight
	}
	return hotp.ValidateOpts{Digits: d, Algorithm: otp.AlgorithmSHA1}
}

// step returns the time step of t.
func (p TOTPPolicy) step(t time.Time) int64 {
	return t.Unix() / int64(p.Period/time.Second)
}

// Check verifies code against secret at now, allowing Skew steps either
// side. A code whose step is not later than the last one accepted for the
// user (u.TOTPStep) is a replay; an accepted code records its step in u.
// Every candidate is compared in constant time. Call it inside
// Store.UpdateUser so that two concurrent uses of one code cannot both pass.
func (p TOTPPolicy) Check(u *UserState, secret, code string, now time.Time) (TOTPResult, error) {
	secret, err := NormalizeTOTPSecret(secret)
	if err != nil {
		return TOTPWrong, err
	}
	cur := p.step(now)
	matched := int64(-1)
	for d := -p.Skew; d <= p.Skew; d++ {
		s := cur + int64(d)
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), p.opts())
		if err != nil {
			return TOTPWrong, ErrBadTOTPSecret
		}
		if equalCode(want, code) {
			matched = s
		}
	}
	if matched < 0 {
		return TOTPWrong, nil
	}
	if uint64(matched) <= u.TOTPStep {
		return TOTPReplay, nil
	}
	u.TOTPStep = uint64(matched)
	return TOTPOK, nil
}

// Code returns the code of secret at t, for tests and tools.
func (p TOTPPolicy) Code(secret string, t time.Time) (string, error) {
	secret, err := NormalizeTOTPSecret(secret)
	if err != nil {
		return "", err
	}
	c, err := hotp.GenerateCodeCustom(secret, uint64(p.step(t)), p.opts())
	if err != nil {
		return "", ErrBadTOTPSecret
	}
	return c, nil
}

// DecodeTOTPSecret decodes a base32 secret as authenticator apps show it:
// any letter case, spaces ignored, padding optional. It must hold at least
// 10 bytes (80 bits).
func DecodeTOTPSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(secret), " ", ""))
	s = strings.TrimRight(s, "=")
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, ErrBadTOTPSecret
	}
	if len(b) < 10 {
		return nil, fmt.Errorf("totp secret must hold at least 80 bits, got %d", len(b)*8)
	}
	return b, nil
}

// NormalizeTOTPSecret returns secret in canonical form (upper case base32
// without spaces or padding), or an error if it is not a usable secret.
func NormalizeTOTPSecret(secret string) (string, error) {
	b, err := DecodeTOTPSecret(secret)
	if err != nil {
		return "", err
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// TOTPEnrollment is what a user needs to set up an authenticator app.
type TOTPEnrollment struct {
	// Secret is the base32 secret (no padding).
	Secret string
	// URI is the otpauth:// URI that apps import.
	URI string
	// PNG is a QR code of URI.
	PNG []byte
}

// QRSize is the width and height in pixels of enrolment QR codes.
const QRSize = 256

// Enroll returns the enrolment of account: for secret if it is not empty,
// else for a fresh 160-bit secret from crypto/rand.
func (p TOTPPolicy) Enroll(account, secret string) (*TOTPEnrollment, error) {
	if account == "" {
		return nil, errors.New("totp enrolment needs an account name")
	}
	opts := totp.GenerateOpts{
		Issuer:      p.Issuer,
		AccountName: account,
		Period:      uint(p.Period / time.Second),
		Digits:      p.opts().Digits,
		Algorithm:   otp.AlgorithmSHA1,
	}
	if secret != "" {
		b, err := DecodeTOTPSecret(secret)
		if err != nil {
			return nil, err
		}
		opts.Secret = b
	}
	key, err := totp.Generate(opts)
	if err != nil {
		return nil, fmt.Errorf("generating totp key: %w", err)
	}
	img, err := key.Image(QRSize, QRSize)
	if err != nil {
		return nil, fmt.Errorf("drawing totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding totp qr code: %w", err)
	}
	return &TOTPEnrollment{Secret: key.Secret(), URI: key.URL(), PNG: buf.Bytes()}, nil
}
