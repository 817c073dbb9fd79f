package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// WithStoredTOTP returns d with the TOTP secrets that st keeps for its
// users (UserState.TOTPSecret, under the user's canonical key, their id):
// for identity stores that cannot hold one, such as an LDAP directory. A
// user of d with no secret of their own gets the stored one and the
// ChallengeOMATOTP factor. A store that cannot answer makes the lookup
// fail (ErrUnavailable), never "no TOTP".
func WithStoredTOTP(d Directory, st Store) Directory {
	return storedTOTP{d: d, st: st}
}

type storedTOTP struct {
	d  Directory
	st Store
}

func (s storedTOTP) Name() string { return s.d.Name() }

func (s storedTOTP) Lookup(ctx context.Context, idOrLogin string) (User, bool, error) {
	u, ok, err := s.d.Lookup(ctx, idOrLogin)
	if err != nil || !ok {
		return u, ok, err
	}
	return s.fill(ctx, u)
}

func (s storedTOTP) CheckPassword(ctx context.Context, login, password string) (User, bool, error) {
	u, ok, err := s.d.CheckPassword(ctx, login, password)
	if err != nil || !ok {
		return u, ok, err
	}
	return s.fill(ctx, u)
}

func (s storedTOTP) fill(ctx context.Context, u User) (User, bool, error) {
	if u.TOTPSecret != "" {
		return u, true, nil
	}
	us, err := s.st.GetUser(ctx, u.ID)
	if errors.Is(err, ErrNotFound) {
		return u, true, nil
	}
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return User{}, false, err
	}
	if us.TOTPSecret != "" {
		u.TOTPSecret = us.TOTPSecret
		if !u.HasFactor(FactorTOTP) {
			u.Factors = append(slices.Clone(u.Factors), FactorTOTP)
		}
	}
	return u, true, nil
}

// SetStoredTOTP keeps secret (a base32 TOTP secret; "" removes it) as the
// TOTP secret of the user keyed key in st. The replay guard stays: a code
// of a time step already used is refused with the new secret too.
func SetStoredTOTP(ctx context.Context, st Store, key, secret string) error {
	if secret != "" {
		s, err := NormalizeTOTPSecret(secret)
		if err != nil {
			return err
		}
		secret = s
	}
	_, err := st.UpdateUser(ctx, key, func(u *UserState) error {
		u.TOTPSecret = secret
		return nil
	})
	return err
}
