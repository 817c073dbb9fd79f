package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// TestSignOutEverywhereEverySpelling: "sign out everywhere" in the portal
// ends the sessions that an API made for the same user under any spelling
// of the login or id (one canonical user key), not only the portal's own.
func TestSignOutEverywhereEverySpelling(t *testing.T) {
	f := newPortalFixture(t, "")
	env := *f.portal.Env
	env.Users = f.portal.Users
	hash, err := bcrypt.GenerateFromPassword([]byte("api-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&handlers.OAM{Env: &env, Auth: handlers.NewBasicAuth(map[string][]byte{"api": hash})}).Register(mux)
	var apiIDs []string
	for _, spelling := range []string{"demo", "DEMO", "Demo", "demo-id", "DEMO-ID"} {
		req := httptest.NewRequest("POST", handlers.OAMBase+"/session", strings.NewReader(`{"userId":"`+spelling+`"}`))
		req.SetBasicAuth("api", "api-pass")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var out struct {
			SessionID string `json:"sessionId"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.SessionID == "" {
			t.Fatalf("API create for %q: %d %s", spelling, rec.Code, rec.Body)
		}
		apiIDs = append(apiIDs, out.SessionID)
	}

	a := f.browser(t)
	a.signIn("Demo", "/app")
	if resp := a.mailCode(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, a.page)
	}
	a.get("/auth/sessions")
	resp := a.post("/auth/sessions/revoke", "all", "1")
	wantStatus(t, resp, http.StatusSeeOther, a.page)
	for i, id := range apiIDs {
		if _, err := f.store.Get(context.Background(), state.KeyOf(id)); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("API session %d still there after signing out everywhere: %v", i, err)
		}
	}
}
