package handlers

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// DirectoryError is an identity store's "cannot answer" (an LDAP
// directory down or slow): the families answer it with their 503, never
// as an unknown user or a wrong password.
type DirectoryError struct{ Err error }

func (e *DirectoryError) Error() string { return "identity store unavailable: " + e.Err.Error() }

func (e *DirectoryError) Unwrap() error { return e.Err }

// directoryFault wraps err, a directory's error, as a *DirectoryError
// (nil stays nil).
func directoryFault(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*DirectoryError](err); ok {
		return err
	}
	return &DirectoryError{Err: err}
}

// IsDirectoryFault reports whether err is an identity store's fault.
func IsDirectoryFault(err error) bool {
	_, ok := errors.AsType[*DirectoryError](err)
	return ok
}

// keyOrFault is state.DirectoryKey with the directory's faults wrapped
// as *DirectoryError; a name that cannot be a user's is
// state.ErrBadUserID as before.
func keyOrFault(ctx context.Context, d state.Directory, raw string) (string, error) {
	k, err := state.DirectoryKey(ctx, d, raw)
	if err != nil && !errors.Is(err, state.ErrBadUserID) {
		return "", directoryFault(err)
	}
	return k, err
}

// A request's directory answers are remembered for the rest of the
// request (WithDirectoryMemo): a flow that checks the directory can be
// reached first, then looks the same names up again deep inside a store
// update, gets the same answers and never mistakes a directory that
// failed in between for an unknown user.
type memoKey struct{}

type dirMemo struct {
	mu sync.Mutex
	m  map[string]memoAnswer
}

type memoAnswer struct {
	u   state.User
	ok  bool
	err error
}

// WithDirectoryMemo returns ctx carrying a memo of directory lookups for
// one request (see memoDirectory).
func WithDirectoryMemo(ctx context.Context) context.Context {
	if _, ok := ctx.Value(memoKey{}).(*dirMemo); ok {
		return ctx
	}
	return context.WithValue(ctx, memoKey{}, &dirMemo{m: map[string]memoAnswer{}})
}

// memoDirectory returns d answering lookups from ctx's memo, when ctx has
// one (and d is not nil).
func memoDirectory(ctx context.Context, d state.Directory) state.Directory {
	if d == nil {
		return nil
	}
	if m, ok := ctx.Value(memoKey{}).(*dirMemo); ok {
		return memoized{d: d, memo: m}
	}
	return d
}

type memoized struct {
	d    state.Directory
	memo *dirMemo
}

func (m memoized) Name() string { return m.d.Name() }

func (m memoized) Lookup(ctx context.Context, name string) (state.User, bool, error) {
	m.memo.mu.Lock()
	a, ok := m.memo.m[name]
	m.memo.mu.Unlock()
	if ok {
		a.u.Factors = append([]string(nil), a.u.Factors...)
		return a.u, a.ok, a.err
	}
	u, found, err := m.d.Lookup(ctx, name)
	m.memo.mu.Lock()
	m.memo.m[name] = memoAnswer{u: u, ok: found, err: err}
	m.memo.mu.Unlock()
	return u, found, err
}

func (m memoized) CheckPassword(ctx context.Context, login, password string) (state.User, bool, error) {
	return m.d.CheckPassword(ctx, login, password)
}

// preflightUsers looks names (and, for those found, their ids) up in d
// through ctx's memo, and returns the first directory fault: what a flow
// calls before it changes anything, so a directory down answers 503 with
// nothing counted or changed.
func preflightUsers(ctx context.Context, d state.Directory, names ...string) error {
	d = memoDirectory(ctx, d)
	if d == nil {
		return nil
	}
	for _, n := range names {
		if n == "" || state.ValidateUserName(n) != nil {
			continue
		}
		u, ok, err := d.Lookup(ctx, n)
		if err != nil {
			return directoryFault(err)
		}
		if ok && u.ID != n {
			if _, _, err := d.Lookup(ctx, u.ID); err != nil {
				return directoryFault(err)
			}
		}
	}
	return nil
}

// enrollDirectoryTOTP enrols a TOTP secret for userID when an identity
// store other than the users file knows them (an LDAP directory, which
// cannot hold one): the secret is kept in the store's per-user state (see
// state.WithStoredTOTP). It reports whether it answered; users of the
// users file, and names no store knows, are left to the caller.
func (o *OTPSessions) enrollDirectoryTOTP(w http.ResponseWriter, r *http.Request, file *state.Users, userID string) bool {
	if o.Users == nil || state.ValidateUserName(userID) != nil {
		return false
	}
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	u, ok, err := o.Users.Lookup(ctx, userID)
	if err != nil {
		o.storeFail(w, "user", directoryFault(err))
		return true
	}
	if !ok {
		return false
	}
	if file != nil {
		if _, inFile := file.ByID(u.ID); inFile {
			return false
		}
	}
	e, err := o.TOTP.Enroll(u.Login, "")
	if err != nil {
		o.storeFail(w, "totp enroll", err)
		return true
	}
	if err := state.SetStoredTOTP(ctx, o.Env.Store, u.ID, e.Secret); err != nil {
		o.storeFail(w, "totp enroll", err)
		return true
	}
	o.Env.Logger.Info("totp enrolled", zap.String("login", u.Login), zap.String("id_store", u.Store))
	o.Env.Emit(ctx, Event{Name: EventFactorEnrolled, UserKey: u.ID, Login: u.Login, Family: "otp", Factor: state.FactorTOTP})
	WriteJSON(w, http.StatusCreated, "", totpEnrollAnswer{
		Secret: e.Secret, URI: e.URI,
		QRPNG: base64.StdEncoding.EncodeToString(e.PNG),
	})
	return true
}
