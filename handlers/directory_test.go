package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/ldaptest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/ldapdir"
)

// dora is a directory user the fixtures' users files do not know.
const dora = ldaptest.People + `
dn: uid=dora,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dora
cn: Dora
sn: Example
mail: dora@example.com
userPassword: dora-pass
`

// ldapUsers returns a directory on a real slapd (the users of
// ldaptest.People and dora) after the fixture's users file, if any: what
// caddymodule builds for users_file plus one directory.
func ldapUsers(t *testing.T, file state.Directory) (state.Directory, *ldaptest.Server) {
	t.Helper()
	srv := ldaptest.Start(t, dora)
	d, err := ldapdir.New(ldapdir.Config{
		Name: "corp", URLs: []string{srv.URL()}, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePass,
		BaseDN: ldaptest.PeopleDN, TLS: srv.TLSConfig(), Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if file == nil {
		return state.Directories{d}, srv
	}
	return state.Directories{file, d}, srv
}

// TestAuthnDirectoryDown runs the challenge flow for a directory user
// whose directory goes away between the steps: the answers are 503
// (code 1011), nothing is counted or changed, and the flow goes on once
// the directory is back.
func TestAuthnDirectoryDown(t *testing.T) {
	f := newAuthnFixture(t)
	users, srv := ldapUsers(t, f.a.Users)
	f.a.Users, f.a.Env.Users = users, users
	a := f.start("dora")
	if a.Status.Status != "pending verification" {
		t.Fatalf("POST for dora: %+v", a)
	}
	s := f.session(a.SessionID)
	if s.UserID != "dora" || s.IDStoreName != "corp" {
		t.Fatalf("dora's session: user %q, idStoreName %q", s.UserID, s.IDStoreName)
	}
	st, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
	if st != 200 {
		t.Fatalf("Init: %d %+v", st, b)
	}
	m := f.lastCode()
	if m.To != "dora@example.com" {
		t.Fatalf("the code went to %q", m.To)
	}
	srv.Stop()
	for range 2 {
		st, c := f.put(validateReq(a.CorrelationID, b.Nonce, "000000"))
		if st != http.StatusServiceUnavailable || c.Status.Code != authnCodeStore {
			t.Fatalf("Validate with the directory down: %d %+v", st, c)
		}
	}
	if us, err := f.store.GetUser(context.Background(), "dora"); err == nil && len(us.Attempts) > 0 {
		t.Fatalf("attempts counted while the directory was down: %+v", us.Attempts)
	}
	if w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+
		`"},"userInfo":{"userId":"carol"}}`); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with the directory down: %d %s", w.Code, w.Body)
	}
	srv.Restart()
	st, c := f.put(validateReq(a.CorrelationID, b.Nonce, m.Code))
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("the right code once the directory is back: %d %+v", st, c)
	}
}

// TestOTPDirectoryDown: the OTP API answers 503 for a directory user while
// the directory cannot answer, and resolves them once it is back.
func TestOTPDirectoryDown(t *testing.T) {
	f := newOTPFixture(t, true)
	mux := http.NewServeMux()
	api := f.api
	users, srv := ldapUsers(t, api.Users)
	api.Users = users
	api.Register(mux)
	f.h = contract.New(t).Handler(mux)
	srv.Stop()
	w := f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"bob","passedLoginOTP":"false"}`)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("PUT with the directory down: %d %s", w.Code, w.Body)
	}
	srv.Restart()
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"BOB","passedLoginOTP":"false"}`), http.StatusOK)
	s, err := f.store.Get(context.Background(), state.KeyOf(seedID))
	if err != nil || s.UserID != "bob" || s.IDStoreName != "corp" {
		t.Fatalf("session %+v, %v", s, err)
	}
}

// TestOAMDirectoryDown: a userId the directory must resolve gets 503 while
// it cannot; sessions made for a directory user carry its name.
func TestOAMDirectoryDown(t *testing.T) {
	f := newOAM(t)
	users, srv := ldapUsers(t, nil)
	f.env.Users = users
	srv.Stop()
	if w := f.do("POST", "/sessions?userId=alice", ""); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("OAM search with the directory down: %d %s", w.Code, w.Body)
	}
	if w := f.do("POST", "/session", `{"userId":"alice","clientIp":"10.0.0.1"}`); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("OAM create with the directory down: %d %s", w.Code, w.Body)
	}
	srv.Restart()
	w := f.do("POST", "/session", `{"userId":"ALICE","clientIp":"10.0.0.1"}`)
	if w.Code != http.StatusOK && w.Code != http.StatusCreated {
		t.Fatalf("OAM create once the directory is back: %d %s", w.Code, w.Body)
	}
	if w := f.do("POST", "/sessions?idStore=corp", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"userId":"alice"`) {
		t.Fatalf("OAM search by idStore=corp: %d %s", w.Code, w.Body)
	}
}

// TestOTPTOTPEnrollDirectoryUser enrols an authenticator for a directory
// user through the OTP API: the secret is kept in the store's per-user
// state, and a TOTP code of it verifies the user's session.
func TestOTPTOTPEnrollDirectoryUser(t *testing.T) {
	f := newOTPFixture(t, true)
	users, _ := ldapUsers(t, f.api.Users)
	ds := users.(state.Directories)
	// As caddymodule does: the directory, not the users file, gets the
	// stored secrets.
	f.api.Users = state.Directories{ds[0], state.WithStoredTOTP(ds[1], f.store)}
	mux := http.NewServeMux()
	f.api.Register(mux)
	f.h = contract.New(t).Handler(mux)
	w := f.do(t, "POST", "/user/totp/enroll", `{"userId":"Bob"}`)
	if w.Code != 201 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var a totpEnrollAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	us, err := f.store.GetUser(context.Background(), "bob")
	if err != nil || us.TOTPSecret != a.Secret {
		t.Fatalf("bob's state %+v, %v; want the secret %s", us, err, a.Secret)
	}
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"bob","passedLoginOTP":false}`), 200)
	code, err := state.TOTPPolicy{}.Defaults().Code(a.Secret, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	if w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+code+`","types":["totp"],"sessionId":"`+seedID+`"}`); w.Code != 204 {
		t.Fatalf("verify with the enrolled secret: %d %s", w.Code, w.Body)
	}
	// The users file's alice is still enrolled in the file.
	if w := f.do(t, "POST", "/user/totp/enroll", `{"userId":"alice"}`); w.Code != 201 {
		t.Fatalf("alice: %d %s", w.Code, w.Body)
	}
	if us, err := f.store.GetUser(context.Background(), "alice-id"); err == nil && us.TOTPSecret != "" {
		t.Fatal("a users-file user's secret went to the store")
	}
}
