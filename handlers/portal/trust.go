package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// A trusted device is a browser that passed the second factor with "trust
// this device" ticked. It holds a random token in a cookie of its own
// (HttpOnly, SameSite=Lax, scoped to the portal's prefix); the user's
// record keeps only the token's SHA-256 in UserState.Devices (the registry
// the risk-analyzer API also fills), with an expiry. On the next sign-in
// from that browser the right password alone authenticates the session.
// Signing out of every session forgets the user's trusted browsers, and a
// new password ends their trust (the hash is bound to the password's).

// FactorTrustedDevice is the factor recorded on a session authenticated by
// password on a trusted browser (a gate's require_factor can refuse it).
const FactorTrustedDevice = "TrustedDevice"

// devicePrefix marks the portal's entries among the user's devices.
const devicePrefix = "portal:"

// deviceCookie is the name of the trusted-device cookie.
func (p *Portal) deviceCookie() string { return p.Cookie.Name + "_device" }

// trustedDeviceID is what the registry keeps of a browser's token: its
// SHA-256 bound to the user's current password hash and TOTP secret, so
// that a new password (caddy authsession user passwd) or a new TOTP
// enrolment ends the trust of every browser.
func trustedDeviceID(token string, u state.User) string {
	h := sha256.New()
	for _, part := range []string{token, u.PasswordHash, u.TOTPSecret} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return devicePrefix + hex.EncodeToString(h.Sum(nil))
}

// trustDevice registers the browser as trusted for u and sets its cookie.
// A failure is logged: the sign-in has succeeded anyway.
func (p *Portal) trustDevice(ctx context.Context, w http.ResponseWriter, u state.User, ip string, now time.Time) {
	token := state.NewID()
	id := trustedDeviceID(token, u)
	_, err := p.Env.Store.UpdateUser(ctx, u.ID, func(us *state.UserState) error {
		us.TrustDevice(id, now, now.Add(p.TrustFor))
		return nil
	})
	if err != nil {
		p.Env.Logger.Warn("portal could not trust the device", zap.String("user", u.ID), zap.Error(err))
		return
	}
	p.Env.Emit(ctx, handlers.Event{Name: handlers.EventDeviceTrusted, UserKey: u.ID, Login: u.Login, Family: "portal", ClientIP: ip})
	http.SetCookie(w, p.cookie(p.deviceCookie(), token, p.Prefix, int(p.TrustFor/time.Second)))
}

// trusted reports whether the browser of r holds a live trusted-device
// token of u.
func (p *Portal) trusted(ctx context.Context, r *http.Request, u state.User, now time.Time) bool {
	if p.TrustFor <= 0 {
		return false
	}
	c, err := r.Cookie(p.deviceCookie())
	if err != nil || state.ValidateID(c.Value) != nil {
		return false
	}
	us, err := p.Env.Store.GetUser(ctx, u.ID)
	if err != nil || us == nil {
		return false
	}
	return us.Trusts(trustedDeviceID(c.Value, u), now)
}

// forgetDevices drops every trusted browser of the user.
func (p *Portal) forgetDevices(ctx context.Context, userID string) error {
	_, err := p.Env.Store.UpdateUser(ctx, userID, func(us *state.UserState) error {
		if !us.ForgetDevices(devicePrefix) {
			return handlers.ErrNoChange
		}
		return nil
	})
	if errors.Is(err, handlers.ErrNoChange) {
		return nil
	}
	return err
}
