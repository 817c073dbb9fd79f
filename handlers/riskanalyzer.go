package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// RiskBase is the risk-analyzer family's base path.
const RiskBase = "/risk-analyzer/session/v1"

// Risk-analyzer responseCodes [D]: "1" invalid input, "2" unknown
// requestId, "3" the session is challenge blocked. 500 and 503 have no
// body, as the specification has it.
const (
	raOK      = "0"
	raInvalid = "1"
	raUnknown = "2"
	raBlocked = "3"
)

// RiskAnalyzer serves the risk-analyzer session API (risk-analyzer.md):
// record the outcome of a login, create and fetch sessions, in JSON, XML
// or text, behind HTTP Basic auth.
type RiskAnalyzer struct {
	Env  *Env
	Auth *BasicAuth
	// Success and Pending are the authenticationStatus values that make
	// a session authenticated or pending verification; any other value
	// makes it failed.
	Success, Pending map[int]bool
	// DeviceTrust is how long a registered device stays trusted (0: no
	// device is registered).
	DeviceTrust time.Duration
	// HistorySize bounds the login history kept per user (0: none).
	HistorySize int
}

// statusResponse is every answer's body (XML root StatusResponse).
type statusResponse struct {
	XMLName         xml.Name    `json:"-" xml:"StatusResponse"`
	ResponseCode    string      `json:"responseCode" xml:"responseCode"`
	ResponseMessage string      `json:"responseMessage" xml:"responseMessage"`
	Status          bool        `json:"status" xml:"status"`
	SessionID       string      `json:"sessionId,omitempty" xml:"sessionId,omitempty"`
	TransactionID   *int64      `json:"transactionId,omitempty" xml:"transactionId,omitempty"`
	UserData        *raUserData `json:"userData,omitempty" xml:"userData,omitempty"`
	// Fetch extensions [D]: the session's status and the raw values
	// last reported.
	SessionStatus        string `json:"sessionStatus,omitempty" xml:"sessionStatus,omitempty"`
	AuthenticationStatus *int   `json:"authenticationStatus,omitempty" xml:"authenticationStatus,omitempty"`
	ClientType           *int   `json:"clientType,omitempty" xml:"clientType,omitempty"`
	// FPList are the fingerprints the create reported [D].
	FPList []raFingerprint `json:"fpList,omitempty" xml:"fpList,omitempty"`
}

// raFingerprint is one entry of fpList, as received and as answered.
type raFingerprint struct {
	Cookie      string `json:"cookie" xml:"cookie"`
	Fingerprint string `json:"fingerprint" xml:"fingerprint"`
	CookieType  string `json:"cookieType" xml:"cookieType"`
}

type raUserData struct {
	LoginName string `json:"loginName" xml:"loginName"`
	GroupName string `json:"groupName" xml:"groupName"`
	UserID    string `json:"userId,omitempty" xml:"userId,omitempty"`
}

// raRequest is a decoded update (SessionData) or fetch request.
type raRequest struct {
	requestID         string
	authStatus        int
	clientType        int
	clientApplication string
	clientVersion     string
	externalDeviceID  string
	registerDevice    bool
	analyzePatterns   bool
}

// Register mounts the family's endpoints on mux.
func (ra *RiskAnalyzer) Register(mux *http.ServeMux) {
	mux.Handle("POST "+RiskBase, ra.guard(ra.create))
	mux.Handle("PUT "+RiskBase+"/updatesessionsecurely", ra.guard(ra.update))
	mux.Handle("PUT "+RiskBase+"/fetchsessionsecurely", ra.guard(ra.fetch))
	mux.Handle("PUT "+RiskBase+"/{requestId}", ra.guard(ra.update))
	// GET /{requestId} also matches the two named paths, which serve PUT only:
	// a GET there is a 405 like any other method, not a fetch of a session
	// called "updatesessionsecurely".
	mux.Handle("GET "+RiskBase+"/{requestId}", ra.guard(func(w http.ResponseWriter, r *http.Request) {
		if raNamedPath(r.PathValue("requestId")) {
			ra.notAllowed(w, r, "PUT")
			return
		}
		ra.fetch(w, r)
	}))
	mux.Handle(RiskBase, ra.guard(func(w http.ResponseWriter, r *http.Request) { ra.notAllowed(w, r, "POST") }))
	mux.Handle(RiskBase+"/{requestId}", ra.guard(func(w http.ResponseWriter, r *http.Request) {
		if raNamedPath(r.PathValue("requestId")) {
			ra.notAllowed(w, r, "PUT")
			return
		}
		ra.notAllowed(w, r, "GET, PUT")
	}))
}

// raNamedPath reports whether a /{requestId} segment is one of the family's
// named PUT-only paths.
func raNamedPath(seg string) bool {
	return seg == "updatesessionsecurely" || seg == "fetchsessionsecurely"
}

// notAllowed answers 405 with the path's methods in Allow.
func (ra *RiskAnalyzer) notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	ra.answer(w, r, http.StatusMethodNotAllowed, statusResponse{ResponseCode: raInvalid, ResponseMessage: "method " + r.Method + " not allowed here"})
}

// raIn and raOut are the encodings the family reads and writes.
var (
	raIn  = []string{mediaJSON, mediaXML}
	raOut = []string{mediaJSON, mediaXML, mediaText}
)

// guard checks credentials and the request's and answer's media types.
func (ra *RiskAnalyzer) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, res, until := ra.Auth.Authenticate(r)
		ra.Env.apiCredentialsFailed(r, "risk-analyzer", ra.Auth, res)
		if res == AuthThrottled {
			w.Header().Set("Retry-After", RetryAfter(until, ra.Env.Time()))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if res != AuthOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="authsession"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, _, merr := negotiate(r, raIn, raOut); merr != nil {
			ra.answer(w, r, merr.Status, statusResponse{ResponseCode: raInvalid, ResponseMessage: merr.Msg})
			return
		}
		h(w, r)
	})
}

// answer writes res in the encoding the client accepts.
func (ra *RiskAnalyzer) answer(w http.ResponseWriter, r *http.Request, status int, res statusResponse) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	m, _ := answerMedia(r, raOut...) // JSON for a 406
	switch m {
	case mediaXML:
		b, err := xml.Marshal(res)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`))
		_, _ = w.Write(b)
	case mediaText:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(res.text()))
	default:
		WriteJSON(w, status, "", res)
	}
}

// text renders the answer as key=value lines.
func (res statusResponse) text() string {
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strings.NewReplacer("\n", " ", "\r", " ").Replace(v))
		b.WriteByte('\n')
	}
	line("responseCode", res.ResponseCode)
	line("responseMessage", res.ResponseMessage)
	line("status", strconv.FormatBool(res.Status))
	if res.SessionID != "" {
		line("sessionId", res.SessionID)
	}
	if res.UserData != nil {
		line("userData.loginName", res.UserData.LoginName)
		line("userData.groupName", res.UserData.GroupName)
		if res.UserData.UserID != "" {
			line("userData.userId", res.UserData.UserID)
		}
	}
	if res.SessionStatus != "" {
		line("sessionStatus", res.SessionStatus)
	}
	if res.AuthenticationStatus != nil {
		line("authenticationStatus", strconv.Itoa(*res.AuthenticationStatus))
	}
	if res.ClientType != nil {
		line("clientType", strconv.Itoa(*res.ClientType))
	}
	for i, f := range res.FPList {
		p := "fpList." + strconv.Itoa(i) + "."
		line(p+"cookie", f.Cookie)
		line(p+"fingerprint", f.Fingerprint)
		line(p+"cookieType", f.CookieType)
	}
	return b.String()
}

func (ra *RiskAnalyzer) fail(w http.ResponseWriter, r *http.Request, code, msg, id string) {
	ra.answer(w, r, http.StatusBadRequest, statusResponse{ResponseCode: code, ResponseMessage: msg, SessionID: id})
}

// failInput answers a decoding error: 413 for an oversized body, else 400.
func (ra *RiskAnalyzer) failInput(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrTooLarge) {
		ra.answer(w, r, http.StatusRequestEntityTooLarge, statusResponse{ResponseCode: raInvalid, ResponseMessage: err.Error()})
		return
	}
	if me, ok := errors.AsType[*MediaError](err); ok {
		ra.answer(w, r, me.Status, statusResponse{ResponseCode: raInvalid, ResponseMessage: me.Msg})
		return
	}
	if fe, ok := errors.AsType[*FieldError](err); ok {
		ra.fail(w, r, raInvalid, fe.Error(), "")
		return
	}
	ra.fail(w, r, raInvalid, "invalid request", "")
}

// storeFail answers a store error: 503 with Retry-After when the store
// cannot be reached or did not answer in time, 500 otherwise.
func (ra *RiskAnalyzer) storeFail(w http.ResponseWriter, r *http.Request, op string, err error) {
	ra.Env.Logger.Error("session store failed", zap.String("family", "risk_analyzer"), zap.String("op", op), zap.Error(err))
	if errors.Is(err, state.ErrUnavailable) || isTimeout(err) {
		storeDown(w)
		w.WriteHeader(http.StatusServiceUnavailable) // the spec's 503 has no body
		return
	}
	w.WriteHeader(http.StatusInternalServerError) // the spec's 500 has no body
}

// readDoc reads and decodes the request body.
func readDoc(w http.ResponseWriter, r *http.Request) (*doc, error) {
	body, err := ReadBody(w, r)
	if err != nil {
		return nil, err
	}
	m, merr := requestMedia(r, raIn...)
	if merr != nil {
		return nil, merr
	}
	return decodeDoc(body, m)
}

// parseUpdate reads a SessionData; pathID is the deprecated alias's id.
func parseUpdate(d *doc, pathID string) (*raRequest, error) {
	var q raRequest
	var err error
	if q.requestID, err = d.str("requestId"); err != nil {
		return nil, err
	}
	if pathID != "" {
		if q.requestID != "" && q.requestID != pathID {
			return nil, &FieldError{Field: "requestId", Msg: "differs from the requestId in the path"}
		}
		q.requestID = pathID
	}
	if q.requestID == "" {
		return nil, &FieldError{Field: "requestId", Msg: "is required"}
	}
	var ok bool
	if q.authStatus, ok, err = d.integer("authenticationStatus"); err != nil {
		return nil, err
	} else if !ok {
		return nil, &FieldError{Field: "authenticationStatus", Msg: "is required"}
	}
	if q.clientType, ok, err = d.integer("clientType"); err != nil {
		return nil, err
	} else if !ok {
		return nil, &FieldError{Field: "clientType", Msg: "is required"}
	}
	for _, f := range []struct {
		name string
		into *string
	}{{"clientApplication", &q.clientApplication}, {"clientVersion", &q.clientVersion}, {"externalDeviceId", &q.externalDeviceID}} {
		if *f.into, err = d.str(f.name); err != nil {
			return nil, err
		}
		if len(*f.into) > 256 {
			return nil, &FieldError{Field: f.name, Msg: "is longer than 256 characters"}
		}
	}
	if q.registerDevice, err = d.boolean("registerDevice"); err != nil {
		return nil, err
	}
	if q.analyzePatterns, err = d.boolean("analyzePatterns"); err != nil {
		return nil, err
	}
	return &q, nil
}

// target maps an authenticationStatus to the session status it sets.
func (ra *RiskAnalyzer) target(authStatus int) state.Status {
	switch {
	case ra.Success[authStatus]:
		return state.StatusAuthenticated
	case ra.Pending[authStatus]:
		return state.StatusPendingVerification
	}
	return state.StatusFailed
}

// apply records q on s at now.
func (ra *RiskAnalyzer) apply(s *state.Session, q *raRequest, now time.Time) error {
	if err := s.SetStatus(ra.target(q.authStatus), now, "", 0); err != nil {
		if _, ok := errors.AsType[*state.BlockedError](err); ok {
			return err
		}
		return &FieldError{Field: "authenticationStatus", Msg: err.Error()}
	}
	as, ct := q.authStatus, q.clientType
	s.AuthenticationStatus, s.ClientType = &as, &ct
	s.ClientApplication, s.ClientVersion = q.clientApplication, q.clientVersion
	if q.externalDeviceID != "" {
		s.ExternalDeviceID = q.externalDeviceID
	}
	s.UpdateTime = now
	return nil
}

func (ra *RiskAnalyzer) update(w http.ResponseWriter, r *http.Request) {
	d, err := readDoc(w, r)
	if err == nil {
		err = d.checkRoot("SessionData")
	}
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	q, err := parseUpdate(d, r.PathValue("requestId"))
	if err != nil {
		ra.failInput(w, r, err)
		return
	}
	if len(q.requestID) > state.MaxIDLength {
		ra.fail(w, r, raUnknown, "unknown requestId", "")
		return
	}
	now := ra.Env.Time()
	ctx, cancel := ra.Env.StoreContext(r)
	defer cancel()
	s, err := ra.Env.UpdateSession(ctx, "risk-analyzer", "", state.KeyOf(q.requestID), func(s *state.Session) error {
		return ra.apply(s, q, now)
	})
	var blocked *state.BlockedError
	var fe *FieldError
	switch {
	case errors.Is(err, state.ErrNotFound):
		ra.fail(w, r, raUnknown, "unknown requestId", q.requestID)
		return
	case errors.As(err, &blocked):
		ra.fail(w, r, raBlocked, "the session is challenge blocked until "+Timestamp(blocked.Until), q.requestID)
		return
	case errors.As(err, &fe):
		ra.fail(w, r, raInvalid, fe.Error(), q.requestID)
		return
	case err != nil:
		ra.storeFail(w, r, "update", err)
		return
	}
	if err := ra.recordUser(ctx, s, q, now); err != nil {
		ra.storeFail(w, r, "update user", err)
		return
	}
	ra.Env.Logger.Info("session status reported", zap.String("family", "risk_analyzer"),
		zap.String("session", s.Key.Short()), zap.String("status", string(s.Status)))
	ra.answer(w, r, http.StatusOK, statusResponse{ResponseCode: raOK, Status: true, SessionID: q.requestID})
}

// deviceID returns the device to register: the external id, or a
// fingerprint of the client type, application and version.
func deviceID(q *raRequest) string {
	if q.externalDeviceID != "" {
		return q.externalDeviceID
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s", q.clientType, q.clientApplication, q.clientVersion))
	return "fp:" + hex.EncodeToString(sum[:16])
}

// recordUser registers the device and appends to the login history, as
// the request asks.
func (ra *RiskAnalyzer) recordUser(ctx context.Context, s *state.Session, q *raRequest, now time.Time) error {
	register := q.registerDevice && ra.DeviceTrust > 0
	remember := q.analyzePatterns && ra.HistorySize > 0 && s.Status == state.StatusAuthenticated
	if s.UserID == "" || (!register && !remember) {
		return nil
	}
	dev := deviceID(q)
	_, err := ra.Env.Store.UpdateUser(ctx, s.UserID, func(u *state.UserState) error {
		if register {
			u.TrustDevice(dev, now, now.Add(ra.DeviceTrust))
		}
		if remember {
			u.History = append(u.History, state.Login{Time: now, ClientIP: s.ClientIP, DeviceID: dev, ClientApplication: q.clientApplication})
			if over := len(u.History) - ra.HistorySize; over > 0 {
				u.History = append([]state.Login(nil), u.History[over:]...)
			}
		}
		return nil
	})
	if err == nil && register {
		ra.Env.Emit(ctx, Event{
			Name: EventDeviceTrusted, UserKey: s.UserID, Login: s.LoginName, Session: s.Key,
			Family: "risk-analyzer", ClientIP: s.ClientIP,
		})
	}
	return err
}

func userData(s *state.Session) *raUserData {
	if s.UserID == "" && s.LoginName == "" {
		return nil
	}
	return &raUserData{LoginName: FieldValue(s, "login"), GroupName: s.GroupName, UserID: s.UserID}
}
