package handlers

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// OAM serves the access-manager session API (oam-session.md): create, get,
// delete and search sessions, behind HTTP Basic auth.
type OAM struct {
	Env  *Env
	Auth *BasicAuth
}

// Register mounts the family's endpoints on mux.
func (o *OAM) Register(mux *http.ServeMux) {
	mux.Handle("POST "+OAMBase+"/session", o.guard(o.create))
	mux.Handle("GET "+OAMBase+"/session/{sessionId}", o.guard(o.get))
	mux.Handle("DELETE "+OAMBase+"/session", o.guard(o.delete))
	mux.Handle("POST "+OAMBase+"/sessions", o.guard(o.search))
	// Every other method on the family's paths gets the family's error.
	for _, p := range []string{"/session", "/session/{sessionId}", "/sessions"} {
		mux.Handle(OAMBase+p, o.guard(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed(p))
			oamFail(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here", "")
		}))
	}
}

func allowed(p string) string {
	switch p {
	case "/session":
		return "POST, DELETE"
	case "/session/{sessionId}":
		return "GET"
	}
	return "POST"
}

func (o *OAM) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, res, until := o.Auth.Authenticate(r)
		o.Env.apiCredentialsFailed(r, "oam", o.Auth, res)
		if res == AuthThrottled {
			w.Header().Set("Retry-After", RetryAfter(until, o.Env.Time()))
			oamFail(w, http.StatusTooManyRequests, "too many wrong credentials; try again later", "")
			return
		}
		if res != AuthOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="authsession"`)
			oamFail(w, http.StatusUnauthorized, "valid API credentials are required", "")
			return
		}
		if _, _, merr := negotiate(r, oamMedia, oamMedia); merr != nil {
			oamFail(w, merr.Status, merr.Msg, "")
			return
		}
		h(w, r)
	})
}

// oamMedia is the family's only encoding, in and out.
var oamMedia = []string{mediaJSON}

func oamFail(w http.ResponseWriter, status int, msg, field string) {
	WriteJSON(w, status, "", oamError{Code: status, Message: msg, Fields: field})
}

// oamBadInput answers a decoding or validation error.
func oamBadInput(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrTooLarge) {
		oamFail(w, http.StatusRequestEntityTooLarge, err.Error(), "")
		return
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		oamFail(w, http.StatusBadRequest, fe.Error(), fe.Field)
		return
	}
	oamFail(w, http.StatusBadRequest, "bad request", "")
}

// oamStoreFail answers a store error that is not a plain "not found". A
// lookup (GET) that timed out answers 408, as the vendor documents; any
// other call that timed out or found the store unreachable answers 503
// with Retry-After.
func (o *OAM) oamStoreFail(w http.ResponseWriter, r *http.Request, op string, err error) {
	if isTimeout(err) && r.Method == http.MethodGet {
		oamFail(w, http.StatusRequestTimeout, "session store did not answer in time", "")
		return
	}
	if IsDirectoryFault(err) {
		o.Env.Logger.Error("identity store failed", zap.String("op", op), zap.Error(err))
		storeDown(w)
		oamFail(w, http.StatusServiceUnavailable, "identity store unavailable", "")
		return
	}
	o.Env.Logger.Error("session store failed", zap.String("op", op), zap.Error(err))
	if errors.Is(err, state.ErrUnavailable) || isTimeout(err) {
		storeDown(w)
		oamFail(w, http.StatusServiceUnavailable, "session store unavailable", "")
		return
	}
	oamFail(w, http.StatusInternalServerError, "internal error", "")
}

func (o *OAM) create(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(w, r)
	if err != nil {
		oamBadInput(w, err)
		return
	}
	var in oamSessionData
	if err := DecodeJSON(body, &in); err != nil {
		oamBadInput(w, err)
		return
	}
	if in.UserID == nil || strings.TrimSpace(*in.UserID) == "" {
		oamFail(w, http.StatusBadRequest, "userId is required", "userId")
		return
	}
	now := o.Env.Time()
	id := in.SessionID
	if id == "" {
		id = state.NewID()
	} else if err := state.ValidateID(id); err != nil {
		oamFail(w, http.StatusBadRequest, err.Error(), "sessionId")
		return
	}
	userKey, err := keyOrFault(r.Context(), o.Env.Users, *in.UserID)
	if IsDirectoryFault(err) {
		o.oamStoreFail(w, r, "user", err)
		return
	}
	if err != nil {
		oamFail(w, http.StatusBadRequest, err.Error(), "userId")
		return
	}
	s := o.Env.NewSession(id, now)
	if o.Env.Users != nil {
		// A user an identity store knows gets its name as idStoreName,
		// unless the caller names one (below).
		if u, ok, err := o.Env.Users.Lookup(r.Context(), *in.UserID); err == nil && ok && u.Store != "" {
			s.IDStoreName = u.Store
		}
	}
	s.UserID = userKey
	s.LoginName = strings.TrimSpace(*in.UserID)
	s.ClientIP = in.ClientIP
	if in.IDStoreName != "" {
		s.IDStoreName = in.IDStoreName
	}
	if in.IsImpersonating != nil {
		s.IsImpersonating = bool(*in.IsImpersonating)
	}
	if in.ExpiryTime != "" {
		exp, err := parseTime("expiryTime", in.ExpiryTime)
		if err != nil {
			oamBadInput(w, err)
			return
		}
		if !exp.After(now) {
			oamFail(w, http.StatusBadRequest, "expiryTime must be in the future", "expiryTime")
			return
		}
		if exp.Before(s.ExpiryTime) {
			s.ExpiryTime = exp // capped by the configured lifetime
		}
	}
	if len(in.UserAttributes) > 0 {
		s.UserAttributes = make(map[string]string, len(in.UserAttributes))
		for k, v := range in.UserAttributes {
			if v.AttrName != "" && v.AttrName != k {
				oamFail(w, http.StatusBadRequest, "attrName must match its key", "userAttributes."+k)
				return
			}
			s.UserAttributes[k] = v.AttrValue
		}
	}
	status := state.StatusAuthenticated
	if o.Env.Policy.RequireSecondFactor {
		status = state.StatusPendingVerification
	}
	if err := s.SetStatus(status, now, "", 0); err != nil {
		oamFail(w, http.StatusInternalServerError, "internal error", "")
		return
	}
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	if err := o.Env.CreateSessionIn(ctx, "oam", s); err != nil {
		if errors.Is(err, state.ErrExists) {
			oamFail(w, http.StatusBadRequest, "a session with this sessionId exists already", "sessionId")
			return
		}
		o.oamStoreFail(w, r, "create", err)
		return
	}
	stored, err := o.Env.Store.Get(ctx, s.Key)
	if errors.Is(err, state.ErrNotFound) && o.Env.Policy.MaxSessionsPerUser > 0 {
		// A parallel creation for the same user, trimming to
		// max_sessions_per_user, may already have deleted it (sessions
		// of the same second have no order): answer what was created.
		stored, err = s, nil
	}
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			oamFail(w, http.StatusNotFound, "session created but could not be read back", "")
			return
		}
		o.oamStoreFail(w, r, "get", err)
		return
	}
	o.Env.Logger.Info("session created",
		zap.String("family", "oam"), zap.String("session", s.Key.Short()), zap.String("status", string(status)))
	WriteJSON(w, http.StatusOK, "", toOAM(stored, id))
}

func (o *OAM) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sessionId")
	if id == "" || len(id) > state.MaxIDLength {
		oamFail(w, http.StatusNotFound, "session not found", "sessionId")
		return
	}
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	s, err := o.Env.Store.Get(ctx, state.KeyOf(id))
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			oamFail(w, http.StatusNotFound, "session not found or expired", "sessionId")
			return
		}
		o.oamStoreFail(w, r, "get", err)
		return
	}
	WriteJSON(w, http.StatusOK, "", toOAM(s, id))
}

func (o *OAM) delete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	var deleted []oamSessionData
	switch id, userID := q.Get("sessionId"), q.Get("userId"); {
	case id != "":
		if len(id) > state.MaxIDLength {
			oamFail(w, http.StatusNotFound, "session not found", "sessionId")
			return
		}
		s, err := o.Env.DeleteSession(ctx, "oam", RevokedAPI, RemoteIP(r), state.KeyOf(id))
		if err != nil {
			if errors.Is(err, state.ErrNotFound) {
				oamFail(w, http.StatusNotFound, "session not found or expired", "sessionId")
				return
			}
			o.oamStoreFail(w, r, "delete", err)
			return
		}
		deleted = append(deleted, toOAM(s, id))
	case userID != "":
		userKey, err := keyOrFault(r.Context(), o.Env.Users, userID)
		if IsDirectoryFault(err) {
			o.oamStoreFail(w, r, "user", err)
			return
		}
		if err != nil {
			oamFail(w, http.StatusBadRequest, err.Error(), "userId")
			return
		}
		sessions, err := o.Env.Store.ByUser(ctx, userKey)
		if err != nil {
			o.oamStoreFail(w, r, "list", err)
			return
		}
		idStore := q.Get("idStore")
		for _, s := range sessions {
			if idStore != "" && s.IDStoreName != idStore {
				continue
			}
			gone, err := o.Env.DeleteSession(ctx, "oam", RevokedAPI, RemoteIP(r), s.Key)
			if errors.Is(err, state.ErrNotFound) {
				continue // expired or deleted meanwhile
			}
			if err != nil {
				o.oamStoreFail(w, r, "delete", err)
				return
			}
			if len(deleted) < o.Env.Policy.SearchResults() {
				deleted = append(deleted, toOAM(gone, o.Env.SessionID(gone)))
			}
		}
	default:
		oamFail(w, http.StatusNotFound, "sessionId or userId is required", "sessionId")
		return
	}
	if len(deleted) == 0 {
		oamFail(w, http.StatusNotFound, "no session found", "")
		return
	}
	o.Env.Logger.Info("sessions deleted", zap.String("family", "oam"), zap.Int("count", len(deleted)))
	WriteJSON(w, http.StatusOK, "", deleted)
}
