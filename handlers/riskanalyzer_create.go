package handlers

import (
	"cmp"
	"errors"
	"net/http"
	"net/netip"
	"strconv"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// raCreate is a decoded create request.
type raCreate struct {
	id                 string
	login, group, user string
	ip                 string
	fingerprints       []state.Fingerprint
	report             *raRequest
}

// Limits of a create's fpList.
const (
	raMaxFingerprints = 16
	raMaxFieldLen     = 256
)

// parseCreate reads a create request: requestId, user, ip (the vendor's
// {remoteIP, remoteHost, proxyIP}, or ipAddress), fpList and the optional
// sessionData.
func parseCreate(d *doc) (*raCreate, error) {
	var c raCreate
	var err error
	if c.id, err = d.str("requestId"); err != nil {
		return nil, err
	}
	if c.id == "" {
		c.id = state.NewID()
	} else if err := state.ValidateID(c.id); err != nil {
		return nil, &FieldError{Field: "requestId", Msg: err.Error()}
	}
	user, err := d.object("user")
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, &FieldError{Field: "user", Msg: "is required"}
	}
	for _, f := range []struct {
		name string
		into *string
	}{{"loginName", &c.login}, {"groupName", &c.group}, {"userId", &c.user}} {
		if *f.into, err = user.str(f.name); err != nil {
			return nil, &FieldError{Field: "user." + f.name, Msg: "must be a string"}
		}
		if len(*f.into) > raMaxFieldLen {
			return nil, &FieldError{Field: "user." + f.name, Msg: "is longer than 256 characters"}
		}
	}
	if c.login == "" {
		return nil, &FieldError{Field: "user.loginName", Msg: "is required"}
	}
	if c.user == "" {
		c.user = c.login
	}
	ipDoc, err := d.object("ip")
	if err != nil {
		return nil, err
	}
	addr := map[string]string{}
	for _, name := range []string{"remoteIP", "remoteHost", "proxyIP", "ipAddress"} {
		v, err := ipDoc.str(name)
		if err != nil {
			return nil, &FieldError{Field: "ip." + name, Msg: "must be a string"}
		}
		if len(v) > raMaxFieldLen {
			return nil, &FieldError{Field: "ip." + name, Msg: "is longer than 256 characters"}
		}
		if v != "" && name != "remoteHost" {
			if _, err := netip.ParseAddr(v); err != nil {
				return nil, &FieldError{Field: "ip." + name, Msg: "must be an IP address"}
			}
		}
		addr[name] = v
	}
	c.ip = cmp.Or(addr["remoteIP"], addr["ipAddress"])
	fps, err := d.list("fpList")
	if err != nil {
		return nil, err
	}
	if len(fps) > raMaxFingerprints {
		return nil, &FieldError{Field: "fpList", Msg: "has more than " + strconv.Itoa(raMaxFingerprints) + " entries"}
	}
	for i, fp := range fps {
		var f state.Fingerprint
		for _, m := range []struct {
			name string
			into *string
		}{{"cookie", &f.Cookie}, {"fingerprint", &f.Fingerprint}, {"cookieType", &f.CookieType}} {
			field := "fpList[" + strconv.Itoa(i) + "]." + m.name
			if *m.into, err = fp.str(m.name); err != nil {
				return nil, &FieldError{Field: field, Msg: "must be a string"}
			}
			if len(*m.into) > raMaxFieldLen {
				return nil, &FieldError{Field: field, Msg: "is longer than 256 characters"}
			}
		}
		if f != (state.Fingerprint{}) {
			c.fingerprints = append(c.fingerprints, f)
		}
	}
	sd, err := d.object("sessionData")
	if err != nil {
		return nil, err
	}
	if sd != nil && len(sd.kids) > 0 {
		if c.report, err = parseUpdate(sd, c.id); err != nil {
			if fe, ok := errors.AsType[*FieldError](err); ok {
				fe.Field = "sessionData." + fe.Field
			}
			return nil, err
		}
	}
	return &c, nil
}

// create serves POST /risk-analyzer/session/v1: a session for a user, in
// "pending verification" unless its optional sessionData reports a status.
func (ra *RiskAnalyzer) create(w http.ResponseWriter, r *http.Request) {
	d, err := readDoc(w, r)
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	c, err := parseCreate(d)
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	if state.ValidateUserName(c.login) != nil || state.ValidateUserName(c.group) != nil {
		ra.fail(w, r, raInvalid, "user.loginName, user.groupName: "+state.ErrBadUserID.Error(), "")
		return
	}
	var known state.User
	var isKnown bool
	if c.user, known, isKnown, err = raUser(r.Context(), ra.Env.Users, c.user); IsDirectoryFault(err) {
		ra.storeFail(w, r, "user", err)
		return
	} else if err != nil {
		ra.fail(w, r, raInvalid, "user.userId: "+err.Error(), "")
		return
	}
	id, report := c.id, c.report

	now := ra.Env.Time()
	s := ra.Env.NewSession(id, now)
	s.UserID, s.LoginName, s.GroupName, s.ClientIP = c.user, c.login, c.group, c.ip
	if isKnown {
		s.LoginName, s.GroupName = known.Login, known.Group
		s.SetDisplayName(known.Name)
		if known.Store != "" {
			s.IDStoreName = known.Store
		}
	}
	s.Fingerprints = c.fingerprints
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
	if err := ra.Env.CreateSessionIn(ctx, "risk-analyzer", s); err != nil {
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
		FPList:               toRAFingerprints(s.Fingerprints),
	})
}

func toRAFingerprints(fps []state.Fingerprint) []raFingerprint {
	if len(fps) == 0 {
		return nil
	}
	out := make([]raFingerprint, len(fps))
	for i, f := range fps {
		out[i] = raFingerprint{Cookie: f.Cookie, Fingerprint: f.Fingerprint, CookieType: f.CookieType}
	}
	return out
}
