package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/authsession/caddy-authsession/state"
)

// A user is one user however the caller spells it: one TOTP code is
// accepted once, not once per spelling of the user (issue #14, finding 3).
func TestOTPTOTPReplayAcrossUserSpellings(t *testing.T) {
	f := newOTPFixture(t, true)
	ids := []string{state.NewID(), state.NewID(), state.NewID(), state.NewID(), state.NewID()}
	for i, u := range []string{"alice", "ALICE", "Alice", "aLICE", "ALICE-ID"} {
		answerOf(t, f.do(t, "PUT", "/sessions/"+ids[i], `{"userId":"`+u+`","passedLoginOTP":false}`), 200)
	}
	c, err := totp.GenerateCodeCustom(totpSecret, f.clock(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(id string) *httpResult {
		w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+c+`","types":["totp"],"sessionId":"`+id+`"}`)
		return &httpResult{w.Code, w.Body.String()}
	}
	if r := verify(ids[0]); r.code != http.StatusNoContent {
		t.Fatalf("first use: %d %s", r.code, r.body)
	}
	for _, id := range ids[1:] {
		if r := verify(id); r.code != http.StatusNotFound {
			t.Errorf("the same code on another spelling's session: %d %s, want 404", r.code, r.body)
		}
	}
	// Every spelling is the one users-file id.
	for _, id := range ids {
		s, err := f.store.Get(context.Background(), state.KeyOf(id))
		if err != nil {
			t.Fatal(err)
		}
		if s.UserID != "alice-id" {
			t.Errorf("session user %q, want alice-id", s.UserID)
		}
	}
}

type httpResult struct {
	code int
	body string
}

// DELETE ?userId= ends the user's sessions in every spelling and Unicode
// form (finding 3).
func TestOAMDeleteByUserEverySpelling(t *testing.T) {
	f := newOAM(t)
	users := []string{"demo", "DEMO", "Demo", "dEMO", " demo ", "Jos\u00e9", "JOSE\u0301"}
	var made []string
	for _, u := range users {
		b, _ := json.Marshal(map[string]string{"userId": u})
		made = append(made, f.create(string(b)).SessionID)
	}
	w := f.do("DELETE", "/session?userId=demo", "")
	if w.Code != http.StatusOK {
		t.Fatalf("delete demo: %d %s", w.Code, w.Body)
	}
	if got := decode[[]sessionJSON](t, w); len(got) != 5 {
		t.Errorf("deleted %d sessions of demo, want 5: %v", len(got), ids(got))
	}
	w = f.do("DELETE", "/session?userId=jos%C3%A9", "")
	if w.Code != http.StatusOK {
		t.Fatalf("delete josé: %d %s", w.Code, w.Body)
	}
	if got := decode[[]sessionJSON](t, w); len(got) != 2 {
		t.Errorf("deleted %d sessions of josé, want 2: %v", len(got), ids(got))
	}
	for _, id := range made {
		if _, err := f.store.Get(context.Background(), state.KeyOf(id)); err == nil {
			t.Errorf("a session survived the deletion by user")
		}
	}
	// The search finds a user by any spelling too.
	f.create(`{"userId":"Carol"}`)
	w = f.do("POST", "/sessions?userId=CAROL", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"carol"`) {
		t.Errorf("search by CAROL: %d %s", w.Code, w.Body)
	}
}

// Control characters and invalid UTF-8 in a user id or login are refused
// with 400 on every API, in the API's own shape (finding 9).
func TestUserNameControlCharactersRefused(t *testing.T) {
	bad := []string{"al\rice", "al\nice", "al\x00ice", "al\xffice", "a\tb", "x\u2028y", "\ufffd"}
	for _, name := range bad {
		js, _ := json.Marshal(name) // invalid UTF-8 becomes U+FFFD here
		raw := string(js)
		if strings.Contains(name, "\xff") {
			raw = `"al` + "\xff" + `ice"`
		}
		t.Run("oam", func(t *testing.T) {
			f := newOAM(t)
			w := f.do("POST", "/session", `{"userId":`+raw+`}`)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "userId") {
				t.Errorf("OAM %q: %d %s", name, w.Code, w.Body)
			}
		})
		t.Run("otp", func(t *testing.T) {
			f := newOTPFixture(t, true)
			w := f.do(t, "PUT", "/sessions/"+state.NewID(), `{"userId":`+raw+`,"passedLoginOTP":false}`)
			if w.Code != http.StatusBadRequest {
				t.Errorf("OTP %q: %d %s", name, w.Code, w.Body)
			}
		})
		t.Run("riskanalyzer", func(t *testing.T) {
			f := newRA(t)
			for _, body := range []string{
				`{"requestId":"` + state.NewID() + `","user":{"loginName":` + raw + `}}`,
				`{"requestId":"` + state.NewID() + `","user":{"loginName":"alice","userId":` + raw + `}}`,
			} {
				w := f.do(t, "POST", RiskBase, "application/json", "", body)
				if w.Code != http.StatusBadRequest {
					t.Errorf("risk analyzer %q: %d %s", name, w.Code, w.Body)
				}
			}
		})
		t.Run("authn", func(t *testing.T) {
			f := newAuthnFixture(t)
			w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
				"userInfo":{"userId":`+raw+`}}`)
			if w.Code != http.StatusBadRequest {
				t.Errorf("authn %q: %d %s", name, w.Code, w.Body)
			}
		})
	}
}

// POST on an authenticated session of a user without factors is a 400,
// not a 500 (finding 9).
func TestAuthnPostOnAuthenticatedUserWithoutFactors(t *testing.T) {
	f := newAuthnFixture(t)
	id := state.NewID()
	s := f.a.Env.NewSession(id, f.clk.Now())
	s.UserID, s.LoginName = "carol", "carol"
	if err := s.SetStatus(state.StatusAuthenticated, f.clk.Now(), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"sessionId":"`+id+`","userInfo":{"userId":"carol"}}`)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("POST on an authenticated factorless session: %d %s, want 400", w.Code, w.Body)
	}
	if got := f.session(id).EffectiveStatus(f.clk.Now().Add(time.Second)); got != state.StatusAuthenticated {
		t.Errorf("status %q after the refusal", got)
	}
}

// A weak caller-supplied session id is a 400 naming the field (finding 6).
func TestOAMCreateRefusesWeakSessionID(t *testing.T) {
	f := newOAM(t)
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "ABCDEFGHIJKLMNOPQRSTUV", "0123456789abcdefABCDEF"} {
		w := f.do("POST", "/session", `{"userId":"demo","sessionId":"`+id+`"}`)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "sessionId") {
			t.Errorf("sessionId %q: %d %s, want 400 naming sessionId", id, w.Code, w.Body)
		}
	}
}
