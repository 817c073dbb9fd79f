package caddymodule

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the authsession routes of Caddy's admin endpoint, for
// operators (and `caddy authsession sessions|counters`):
//
//	GET    /authsession/sessions[?user=U][&status=S][&limit=N]
//	DELETE /authsession/sessions/<hash prefix>
//	DELETE /authsession/users/<user>/sessions
//	DELETE /authsession/users/<user>/counters
//	GET    /authsession/stats
//
// A session is named by a prefix of its store key (the hex SHA-256 of its
// id), never by its id. The routes act on the store of the running
// authsession app; with the Redis store a revocation holds on every
// instance. Like every admin route they are guarded by Caddy's admin
// access controls (listen address, origins, remote admin's mutual TLS).
type AdminAPI struct {
	logger *zap.Logger
}

// Admin API limits.
const (
	// AdminHashChars is the length of the key prefix the admin API shows.
	AdminHashChars = 32
	// MinRevokePrefix is the shortest key prefix a revocation accepts.
	MinRevokePrefix = 16
	// DefaultAdminListLimit and MaxAdminListLimit bound one listing.
	DefaultAdminListLimit = 100
	MaxAdminListLimit     = 10000
	// adminStoreTimeout bounds one admin call's store work (a listing
	// or a prefix search scans every session).
	adminStoreTimeout = 30 * time.Second
)

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.authsession",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision implements caddy.Provisioner.
func (h *AdminAPI) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger(h)
	return nil
}

// Routes implements caddy.AdminRouter.
func (h *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/authsession/", Handler: caddy.AdminHandlerFunc(h.serve)}}
}

// AdminSession is one session as the admin API lists it.
type AdminSession struct {
	Hash         string    `json:"hash"`
	User         string    `json:"user,omitempty"`
	Login        string    `json:"login,omitempty"`
	Group        string    `json:"group,omitempty"`
	Status       string    `json:"status"`
	Created      time.Time `json:"created"`
	LastAccess   time.Time `json:"last_access"`
	Expires      time.Time `json:"expires"`
	AuthTime     time.Time `json:"auth_time,omitzero"`
	ClientIP     string    `json:"client_ip,omitempty"`
	Factors      []string  `json:"factors,omitempty"`
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
}

// AdminSessions is the answer of a listing.
type AdminSessions struct {
	Sessions []AdminSession `json:"sessions"`
	// Truncated: more sessions matched than the limit.
	Truncated bool `json:"truncated"`
}

// AdminRevoked is the answer of a revocation.
type AdminRevoked struct {
	Revoked []string `json:"revoked"`
}

// AdminCounters is the answer of a counter reset.
type AdminCounters struct {
	User  string `json:"user"`
	Reset bool   `json:"reset"`
}

// AdminStats is the answer of /authsession/stats.
type AdminStats struct {
	Store struct {
		Module string `json:"module"`
		Up     bool   `json:"up"`
		Error  string `json:"error,omitempty"`
	} `json:"store"`
	Sessions struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
	} `json:"sessions"`
}

func apiError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

func (h *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	app := runningApp()
	if app == nil {
		return apiError(http.StatusNotFound, "no authsession app is running")
	}
	return (&adminHandler{app: app, logger: h.logger}).serve(w, r)
}

// adminHandler serves one admin call on app.
type adminHandler struct {
	app    *App
	logger *zap.Logger
}

func (h *adminHandler) serve(w http.ResponseWriter, r *http.Request) error {
	// Split the path as sent, then decode each part: a user name may hold
	// a '/' (sent as %2F), which must not end its segment.
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/authsession/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return apiError(http.StatusBadRequest, "malformed path: %v", err)
		}
		parts[i] = u
	}
	method := func(m string) error {
		if r.Method != m {
			w.Header().Set("Allow", m)
			return apiError(http.StatusMethodNotAllowed, "method not allowed: %s", r.Method)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminStoreTimeout)
	defer cancel()
	switch {
	case len(parts) == 1 && parts[0] == "sessions":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return h.list(ctx, w, r)
	case len(parts) == 2 && parts[0] == "sessions":
		if err := method(http.MethodDelete); err != nil {
			return err
		}
		return h.revokeHash(ctx, w, r, parts[1])
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "sessions":
		if err := method(http.MethodDelete); err != nil {
			return err
		}
		return h.revokeUser(ctx, w, r, parts[1])
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "counters":
		if err := method(http.MethodDelete); err != nil {
			return err
		}
		return h.resetCounters(ctx, w, r, parts[1])
	case len(parts) == 1 && parts[0] == "stats":
		if err := method(http.MethodGet); err != nil {
			return err
		}
		return h.stats(ctx, w)
	}
	return apiError(http.StatusNotFound, "resource not found: %s", r.URL.Path)
}

// userKey resolves a user named by the caller (id or login, as every API
// family takes it) to its store key.
func (h *adminHandler) userKey(ctx context.Context, raw string) (string, error) {
	if raw == "" || len(raw) > 256 {
		return "", apiError(http.StatusBadRequest, "user must be 1 to 256 characters")
	}
	k, err := h.app.env.UserKey(ctx, raw)
	switch {
	case errors.Is(err, state.ErrUnavailable):
		return "", apiError(http.StatusServiceUnavailable, "user: identity store unavailable: %v", err)
	case err != nil:
		return "", apiError(http.StatusBadRequest, "user: %v", err)
	}
	return k, nil
}

// storeError maps a store failure to the admin answer.
func storeError(op string, err error) error {
	switch {
	case errors.Is(err, state.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return apiError(http.StatusServiceUnavailable, "%s: session store unavailable: %v", op, err)
	}
	return apiError(http.StatusInternalServerError, "%s: %v", op, err)
}

func (h *adminHandler) list(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"user", "status", "limit"}, k) {
			return apiError(http.StatusBadRequest, "unknown parameter %q (known: user, status, limit)", k)
		}
	}
	limit := DefaultAdminListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAdminListLimit {
			return apiError(http.StatusBadRequest, "limit must be 1 to %d", MaxAdminListLimit)
		}
		limit = n
	}
	var status state.Status
	if v := q.Get("status"); v != "" {
		if !slices.Contains(state.Statuses, state.Status(v)) {
			return apiError(http.StatusBadRequest, "unknown status %q", v)
		}
		status = state.Status(v)
	}
	now := h.app.env.Now()
	var matched []*state.Session
	truncated := false
	if q.Has("user") {
		key, err := h.userKey(ctx, q.Get("user"))
		if err != nil {
			return err
		}
		ss, err := h.app.store.ByUser(ctx, key)
		if err != nil {
			return storeError("list sessions", err)
		}
		for _, s := range ss {
			if status == "" || s.EffectiveStatus(now) == status {
				matched = append(matched, s)
			}
		}
		if len(matched) > limit {
			matched, truncated = matched[:limit], true
		}
	} else {
		// The oldest limit sessions of the whole store, in memory for
		// limit sessions only.
		oldest := &sessionHeap{}
		err := h.app.store.Scan(ctx, func(s *state.Session) bool {
			if status != "" && s.EffectiveStatus(now) != status {
				return true
			}
			heap.Push(oldest, s)
			if oldest.Len() > limit {
				heap.Pop(oldest)
				truncated = true
			}
			return true
		})
		if err != nil {
			return storeError("list sessions", err)
		}
		matched = *oldest
		state.SortSessions(matched)
	}
	out := AdminSessions{Sessions: make([]AdminSession, 0, len(matched)), Truncated: truncated}
	for _, s := range matched {
		out.Sessions = append(out.Sessions, adminSession(s, now))
	}
	return writeJSON(w, http.StatusOK, out)
}

// sessionHeap is a max-heap of sessions by age: its root is the newest, the
// one to drop when it holds one too many.
type sessionHeap []*state.Session

func (h sessionHeap) Len() int { return len(h) }
func (h sessionHeap) Less(i, j int) bool {
	if !h[i].CreateTime.Equal(h[j].CreateTime) {
		return h[i].CreateTime.After(h[j].CreateTime)
	}
	return h[i].Index > h[j].Index
}
func (h sessionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sessionHeap) Push(x any)   { *h = append(*h, x.(*state.Session)) }
func (h *sessionHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

func adminSession(s *state.Session, now time.Time) AdminSession {
	return AdminSession{
		Hash:         s.Key.String()[:AdminHashChars],
		User:         s.UserID,
		Login:        s.LoginName,
		Group:        s.GroupName,
		Status:       string(s.EffectiveStatus(now)),
		Created:      s.CreateTime,
		LastAccess:   s.LastAccessTime,
		Expires:      s.Deadline(),
		AuthTime:     s.AuthTime,
		ClientIP:     s.ClientIP,
		Factors:      s.Factors,
		BlockedUntil: s.BlockedUntil,
	}
}

// revokeHash deletes the one session whose key starts with prefix.
func (h *adminHandler) revokeHash(ctx context.Context, w http.ResponseWriter, r *http.Request, prefix string) error {
	prefix = strings.ToLower(prefix)
	if len(prefix) < MinRevokePrefix || len(prefix) > 64 {
		return apiError(http.StatusBadRequest, "a session hash prefix has %d to 64 hex digits", MinRevokePrefix)
	}
	if strings.Trim(prefix, "0123456789abcdef") != "" {
		return apiError(http.StatusBadRequest, "a session hash prefix is hex digits")
	}
	var found []state.Key
	err := h.app.store.Scan(ctx, func(s *state.Session) bool {
		if strings.HasPrefix(s.Key.String(), prefix) {
			found = append(found, s.Key)
		}
		return len(found) < 2
	})
	if err != nil {
		return storeError("find session", err)
	}
	switch len(found) {
	case 0:
		return apiError(http.StatusNotFound, "no live session has a hash starting with %s", prefix)
	case 1:
	default:
		return apiError(http.StatusConflict, "several sessions have a hash starting with %s: give more digits", prefix)
	}
	revoked, err := h.revoke(ctx, r, found)
	if err != nil {
		return err
	}
	if len(revoked.Revoked) == 0 {
		return apiError(http.StatusNotFound, "no live session has a hash starting with %s", prefix)
	}
	return writeJSON(w, http.StatusOK, revoked)
}

// revokeUser deletes every session of a user.
func (h *adminHandler) revokeUser(ctx context.Context, w http.ResponseWriter, r *http.Request, user string) error {
	key, err := h.userKey(ctx, user)
	if err != nil {
		return err
	}
	ss, err := h.app.store.ByUser(ctx, key)
	if err != nil {
		return storeError("list sessions", err)
	}
	keys := make([]state.Key, len(ss))
	for i, s := range ss {
		keys[i] = s.Key
	}
	revoked, err := h.revoke(ctx, r, keys)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, revoked)
}

// revoke deletes the sessions under keys (those already gone are skipped)
// and emits session_revoked for each, with reason admin.
func (h *adminHandler) revoke(ctx context.Context, r *http.Request, keys []state.Key) (AdminRevoked, error) {
	out := AdminRevoked{Revoked: []string{}}
	for _, k := range keys {
		s, err := h.app.store.Delete(ctx, k)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, storeError("revoke session", err)
		}
		out.Revoked = append(out.Revoked, k.String()[:AdminHashChars])
		h.app.env.Emit(ctx, handlers.Event{
			Name: handlers.EventSessionRevoked, UserKey: s.UserID, Login: s.LoginName, Session: k,
			Family: "admin", Reason: handlers.RevokedAdmin, ClientIP: adminClient(r),
		})
	}
	return out, nil
}

// adminClient is the address of the admin call's client, for the event.
func adminClient(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (h *adminHandler) resetCounters(ctx context.Context, w http.ResponseWriter, _ *http.Request, user string) error {
	key, err := h.userKey(ctx, user)
	if err != nil {
		return err
	}
	reset := false
	_, err = h.app.store.UpdateUser(ctx, key, func(u *state.UserState) error {
		if !u.ClearAttempts() {
			return handlers.ErrNoChange
		}
		reset = true
		return nil
	})
	if err != nil && !errors.Is(err, handlers.ErrNoChange) {
		return storeError("reset counters", err)
	}
	h.logger.Info("attempt counters reset", zap.String("user", key), zap.Bool("reset", reset))
	return writeJSON(w, http.StatusOK, AdminCounters{User: key, Reset: reset})
}

func (h *adminHandler) stats(ctx context.Context, w http.ResponseWriter) error {
	var out AdminStats
	out.Store.Module = h.app.storeModule()
	if err := state.Ping(ctx, h.app.store); err != nil {
		out.Store.Error = err.Error()
		out.Sessions.ByStatus = map[string]int{}
		return writeJSON(w, http.StatusOK, out)
	}
	out.Store.Up = true
	by, total, err := liveCounts(ctx, h.app.store, h.app.env.Now())
	if err != nil {
		out.Store.Up, out.Store.Error = false, err.Error()
	}
	out.Sessions.ByStatus, out.Sessions.Total = by, total
	return writeJSON(w, http.StatusOK, out)
}

// storeModule names the app's store module (memory, file, redis).
func (a *App) storeModule() string { return a.storeName }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return apiError(http.StatusInternalServerError, "encoding answer: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)
