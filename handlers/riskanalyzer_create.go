package handlers

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// create serves POST /risk-analyzer/session/v1: a session for a user, in
// "pending verification" unless its optional sessionData reports a status.
func (ra *RiskAnalyzer) create(w http.ResponseWriter, r *http.Request) {
	d, err := readDoc(w, r)
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	id, err := d.str("requestId")
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	if id == "" {
		id = state.NewID()
	} else if err := state.ValidateID(id); err != nil {
		ra.fail(w, r, raInvalid, "requestId: "+err.Error(), "")
		return
	}
	user, err := d.object("user")
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	if user == nil {
		ra.fail(w, r, raInvalid, "user: is required", "")
		return
	}
	var login, group, userID, ip string
	for _, f := range []struct {
		d    *doc
		name string
		into *string
	}{{user, "loginName", &login}, {user, "groupName", &group}, {user, "userId", &userID}} {
		if *f.into, err = f.d.str(f.name); err != nil {
			ra.fail(w, r, raInvalid, "user."+err.Error(), "")
			return
		}
	}
	if login == "" {
		ra.fail(w, r, raInvalid, "user.loginName: is required", "")
		return
	}
	if ipDoc, err := d.object("ip"); err != nil {
		ra.failInput(w, r, err)
		return
	} else if ip, err = ipDoc.str("ipAddress"); err != nil {
		ra.fail(w, r, raInvalid, "ip."+err.Error(), "")
		return
	}
	var report *raRequest
	if sd, err := d.object("sessionData"); err != nil {
		ra.failInput(w, r, err)
		return
	} else if sd != nil && len(sd.kids) > 0 {
		if report, err = parseUpdate(sd, id); err != nil {
			if fe, ok := errors.AsType[*FieldError](err); ok {
				fe.Field = "sessionData." + fe.Field
			}
			ra.failInput(w, r, err)
			return
		}
	}
	if userID == "" {
		userID = login
	}

	now := ra.Env.Time()
	s := ra.Env.NewSession(id, now)
	s.UserID, s.LoginName, s.GroupName, s.ClientIP = userID, login, group, ip
	if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
		ra.fail(w, r, raInvalid, err.Error(), "")
		return
	}
	if report != nil {
		if err := ra.apply(s, report, now); err != nil {
			ra.failInput(w, r, err)
			return
		}
	}
	ctx, cancel := ra.Env.StoreContext(r)
	defer cancel()
	if err := ra.Env.Store.Create(ctx, s); err != nil {
		if errors.Is(err, state.ErrExists) {
			ra.fail(w, r, raInvalid, "requestId: a session with this id exists already", "")
			return
		}
		ra.storeFail(w, r, "create", err)
		return
	}
	if report != nil {
		if err := ra.recordUser(ctx, s, report, now); err != nil {
			ra.storeFail(w, r, "create user", err)
			return
		}
	}
	ra.Env.Logger.Info("session created", zap.String("family", "risk_analyzer"),
		zap.String("session", s.Key.Short()), zap.String("status", string(s.Status)))
	ra.answer(w, r, http.StatusOK, statusResponse{ResponseCode: raOK, Status: true, SessionID: id, UserData: userData(s)})
}

// fetch serves PUT …/fetchsessionsecurely and the deprecated GET
// …/{requestId}: the session's user, status and last reported values.
func (ra *RiskAnalyzer) fetch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("requestId")
	if r.Method != http.MethodGet {
		d, err := readDoc(w, r)
		if err != nil {
			ra.failInput(w, r, err)
			return
		}
		if id, err = d.str("requestId"); err != nil {
			ra.failInput(w, r, err)
			return
		}
	}
	if id == "" {
		ra.fail(w, r, raInvalid, "requestId: is required", "")
		return
	}
	if len(id) > state.MaxIDLength {
		ra.fail(w, r, raUnknown, "unknown requestId", "")
		return
	}
	ctx, cancel := ra.Env.StoreContext(r)
	defer cancel()
	s, err := ra.Env.Store.Get(ctx, state.KeyOf(id))
	if errors.Is(err, state.ErrNotFound) {
		ra.fail(w, r, raUnknown, "unknown requestId", id)
		return
	}
	if err != nil {
		ra.storeFail(w, r, "get", err)
		return
	}
	ra.answer(w, r, http.StatusOK, statusResponse{
		ResponseCode:         raOK,
		Status:               true,
		SessionID:            id,
		UserData:             userData(s),
		SessionStatus:        string(s.EffectiveStatus(ra.Env.Now())),
		AuthenticationStatus: s.AuthenticationStatus,
		ClientType:           s.ClientType,
	})
}
