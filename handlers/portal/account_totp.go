package portal

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// TOTP enrolment on the account page:
//
//	POST /account/totp/new     makes a new secret, kept pending in the
//	                           user's state bound to the session, and shows
//	                           it (QR code and text)
//	POST /account/totp         confirms it with a current code (step-up):
//	                           only then is it the user's TOTP secret
//	POST /account/totp/remove  removes the user's TOTP (step-up)
//
// The secret goes to the users file for its users, else to the user's
// state in the store (directory and provider users; state.WithStoredTOTP
// and providerUser read it from there).

// ceremonyTOTP is the kind of the ceremony that keeps a pending secret.
const ceremonyTOTP = "totp"

// TOTPPendingTTL is how long a new secret waits for its confirmation.
const TOTPPendingTTL = 10 * time.Minute

// totpPending is a new secret shown for confirmation.
type totpPending struct {
	Ceremony string
	Secret   string
	QR       template.URL
}

// errTOTPElsewhere: the user's secret is kept by their directory, which
// the portal cannot write.
var errTOTPElsewhere = errors.New("your authenticator is managed by your directory")

func (p *Portal) registerAccountTOTP(m *http.ServeMux) {
	m.HandleFunc("POST "+p.Prefix+"/account/totp/new", p.form(p.account(p.totpNew)))
	m.HandleFunc("POST "+p.Prefix+"/account/totp", p.form(p.account(p.totpConfirm)))
	m.HandleFunc("POST "+p.Prefix+"/account/totp/remove", p.form(p.account(p.totpRemove)))
}

// totpFile returns the users file when u is one of its users, else nil
// (u's secret is kept in the store).
func (p *Portal) totpFile(u state.User, s *state.Session) *state.Users {
	if isProviderSession(s) {
		return nil
	}
	us := state.UsersFileOf(p.Users)
	if us == nil {
		return nil
	}
	if fu, ok := us.ByID(u.ID); ok && fu.ID == u.ID {
		return us
	}
	return nil
}

// isProviderSession reports whether s signed in as an OpenID Provider's
// own user (not linked to a users-file user).
func isProviderSession(s *state.Session) bool {
	return s.UserAttributes[attrOIDCProvider] != "" && s.UserAttributes[attrOIDCLinked] == ""
}

// totpWritable reports whether the portal can change u's secret: a
// users-file user, or one whose current secret (if any) is the stored one.
func (p *Portal) totpWritable(ctx context.Context, u state.User, s *state.Session) (bool, error) {
	if p.totpFile(u, s) != nil || u.TOTPSecret == "" {
		return true, nil
	}
	us, err := p.userState(ctx, u)
	if err != nil {
		return false, err
	}
	a, _ := state.NormalizeTOTPSecret(us.TOTPSecret)
	b, _ := state.NormalizeTOTPSecret(u.TOTPSecret)
	return a != "" && a == b, nil
}

// totpChangeable reports whether the portal can change u's secret
// (totpWritable), and answers the request when it cannot: the store's
// failure, or 409 for a secret kept elsewhere.
func (p *Portal) totpChangeable(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) bool {
	ok, err := p.totpWritable(ctx, u, s)
	switch {
	case err != nil:
		p.storeFailed(w, r, "totp", err)
	case !ok:
		p.renderAccount(w, r, ctx, http.StatusConflict, s, u, "", errTOTPElsewhere.Error()+".", nil)
	}
	return err == nil && ok
}

// totpNew makes a new secret and shows it; nothing changes until it is
// confirmed.
func (p *Portal) totpNew(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	if !p.totpChangeable(w, r, ctx, s, u) {
		return
	}
	e, err := p.TOTP.Enroll(u.Login, "")
	if err != nil {
		p.Env.Logger.Error("portal totp enrolment failed", zap.Error(err))
		p.fail(w, r, http.StatusInternalServerError, "Something went wrong. Please try again.")
		return
	}
	id := handlers.NewCeremonyID()
	now := p.Env.Now()
	_, err = p.Env.Store.UpdateUser(ctx, handlers.UserKey(ctx, p.Users, u.ID), func(us *state.UserState) error {
		us.StartCeremony(id, state.Ceremony{
			Kind: ceremonyTOTP, Binding: sessionBinding(s), Data: []byte(e.Secret), Expires: now.Add(TOTPPendingTTL),
		}, now)
		return nil
	})
	if err != nil {
		p.storeFailed(w, r, "totp pending", err)
		return
	}
	pending := &totpPending{
		Ceremony: id, Secret: e.Secret,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.PNG)), //nolint:gosec // our own PNG
	}
	p.renderAccountTOTP(w, r, ctx, http.StatusOK, s, u, "", pending)
}

// renderAccountTOTP renders the account page with a pending secret.
func (p *Portal) renderAccountTOTP(w http.ResponseWriter, r *http.Request, ctx context.Context, status int, s *state.Session, u state.User, msg string, pending *totpPending) {
	p.renderAccountWith(w, r, ctx, status, s, u, "", msg, nil, func(a *accountData) { a.TOTPPending = pending })
}

// totpConfirm makes the pending secret of form field ceremony the user's
// TOTP when form field code is a current code of it. A wrong code keeps
// it pending (the attempts count like sign-in failures).
func (p *Portal) totpConfirm(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	id, code := r.PostFormValue("ceremony"), strings.TrimSpace(r.PostFormValue("code"))
	if id == "" || len(id) > 128 || code == "" || len(code) > 16 {
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "Enter the code your authenticator app shows.", nil)
		return
	}
	if !p.stepUp(w, r, ctx, s, u) {
		return
	}
	if !p.totpChangeable(w, r, ctx, s, u) {
		return
	}
	now := p.Env.Now()
	res, lok := p.reserve(w, r, now, ipKey(p.clientIP(r)), userKey(ctx, p.Users, u.Login))
	if !lok {
		return
	}
	file := p.totpFile(u, s)
	var (
		secret  string
		result  state.TOTPResult
		missing bool
		kept    state.Ceremony
	)
	_, err := p.Env.Store.UpdateUser(ctx, handlers.UserKey(ctx, p.Users, u.ID), func(us *state.UserState) error {
		secret, missing = "", false
		c, err := us.TakeCeremony(id, ceremonyTOTP, sessionBinding(s), now)
		if err != nil {
			missing = true
			return nil //nolint:nilerr // an unknown, expired or foreign ceremony is an answer, not a failure
		}
		result, err = p.TOTP.Check(us, string(c.Data), code, now)
		if err != nil {
			return err
		}
		if result != state.TOTPOK {
			kept = c
			if us.Ceremonies == nil {
				us.Ceremonies = map[string]state.Ceremony{}
			}
			us.Ceremonies[id] = c // still pending, until it expires
			return nil
		}
		secret = string(c.Data)
		if file == nil {
			us.TOTPSecret = secret
		}
		return nil
	})
	if err != nil {
		p.Limiter.Release(ctx, res)
		p.storeFailed(w, r, "totp confirm", err)
		return
	}
	switch {
	case missing:
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "That new authenticator secret has expired. Please start again.", nil)
		return
	case secret == "":
		msg := "That code is not right. Check the time on your device and try again."
		if result == state.TOTPReplay {
			msg = "That code was already used. Wait for the next one."
		}
		p.renderAccountTOTP(w, r, ctx, http.StatusUnauthorized, s, u, msg, p.pendingOf(id, kept, u))
		return
	}
	p.Limiter.Release(ctx, res)
	if file != nil {
		if err := file.SetTOTP(u.ID, secret); err != nil {
			p.storeFailed(w, r, "totp set", err)
			return
		}
		if err := file.Save(); err != nil {
			p.Env.Logger.Error("portal could not save the users file", zap.Error(err))
			p.fail(w, r, http.StatusServiceUnavailable, "Your authenticator could not be saved. Please try again later.")
			return
		}
	}
	replaced := u.TOTPSecret != ""
	p.Env.Logger.Info("portal totp enrolled", zap.String("session", s.Key.Short()), zap.Bool("replaced", replaced))
	done, change := "totp-enrolled", noticeTOTPEnrolled
	if replaced {
		done, change = "totp-replaced", noticeTOTPReplaced
	}
	p.factorChanged(w, r, ctx, s, u, handlers.EventFactorEnrolled, state.FactorTOTP, change, done)
}

// pendingOf shows the pending secret c again after a wrong code.
func (p *Portal) pendingOf(id string, c state.Ceremony, u state.User) *totpPending {
	e, err := p.TOTP.Enroll(u.Login, string(c.Data))
	if err != nil {
		return nil
	}
	return &totpPending{
		Ceremony: id, Secret: e.Secret,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.PNG)), //nolint:gosec // our own PNG
	}
}

// totpRemove removes the user's TOTP, unless it is their only second
// factor and they must have one.
func (p *Portal) totpRemove(w http.ResponseWriter, r *http.Request, ctx context.Context, s *state.Session, u state.User) {
	if u.TOTPSecret == "" {
		p.renderAccount(w, r, ctx, http.StatusBadRequest, s, u, "", "You have no authenticator app set up.", nil)
		return
	}
	if !p.stepUp(w, r, ctx, s, u) {
		return
	}
	if !p.totpChangeable(w, r, ctx, s, u) {
		return
	}
	if p.needsSecondFactor(s) {
		left := 0
		for _, f := range p.registeredFactors(ctx, u) {
			if f.Key != factorKeyTOTP {
				left++
			}
		}
		if left == 0 {
			p.renderAccount(w, r, ctx, http.StatusConflict, s, u, "",
				"Your authenticator app is your only second factor: add another one (a passkey or recovery codes) before removing it.", nil)
			return
		}
	}
	if file := p.totpFile(u, s); file != nil {
		if err := file.SetTOTP(u.ID, ""); err != nil {
			p.storeFailed(w, r, "totp remove", err)
			return
		}
		if err := file.Save(); err != nil {
			p.Env.Logger.Error("portal could not save the users file", zap.Error(err))
			p.fail(w, r, http.StatusServiceUnavailable, "Your authenticator could not be removed. Please try again later.")
			return
		}
	} else if err := state.SetStoredTOTP(ctx, p.Env.Store, handlers.UserKey(ctx, p.Users, u.ID), ""); err != nil {
		p.storeFailed(w, r, "totp remove", err)
		return
	}
	p.Env.Logger.Info("portal totp removed", zap.String("session", s.Key.Short()))
	p.factorChanged(w, r, ctx, s, u, handlers.EventFactorRemoved, state.FactorTOTP, noticeTOTPRemoved, "totp-removed")
}

// needsSecondFactor reports whether the user of s must keep a second
// factor: password users always; a provider's users when the provider
// requires one.
func (p *Portal) needsSecondFactor(s *state.Session) bool {
	if !isProviderSession(s) {
		return true
	}
	o := p.provider(s.UserAttributes[attrOIDCProvider])
	return o == nil || o.SecondFactor == SecondFactorRequired
}
