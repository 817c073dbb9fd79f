package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/internal/webauthntest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// TestPasskeyChallengeFlowRedis: a real Caddy on a Redis store, with a
// passkey registered for alice (by another "instance": a store client of
// the test): POST lists ChallengeFIDO2, Init returns the request options,
// Validate verifies the software authenticator's assertion; a wrong
// origin and a replay are refused and counted.
func TestPasskeyChallengeFlowRedis(t *testing.T) {
	srv := redistest.Start(t)
	users := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(users, []byte(`{"users":[{"id":"alice","login":"alice","factors":["ChallengeEmail"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{
	{ADMIN}
	auto_https off
	authsession {
		store redis redis://%s {
			key_prefix pk:
			timeout 2s
		}
		api_user %s %s
		users_file %s
		authn {
			client %s %s
		}
		webauthn {
			rp_id localhost
			origins http://localhost:{PORT}
			user_verification required
		}
	}
}
http://localhost:{PORT} {
	authsession api
	respond "ok"
}
`, srv.Addr(), testAPIUser, testAPIHash, users, itClient, sha256Hex(itClientSecret))
	tester, port := newTester(t, cfg)
	origin := fmt.Sprintf("http://localhost:%d", port)

	// Register a passkey for alice straight in the shared store.
	rs, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, KeyPrefix: "pk:", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	rp, err := handlers.NewPasskeys(handlers.PasskeyConfig{RPID: "localhost", Origins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	auth := webauthntest.New(origin, "localhost")
	if _, err := rs.UpdateUser(context.Background(), "alice", func(u *state.UserState) error {
		opts, c, err := rp.BeginRegistration("alice", "alice", u, "it key", "b")
		if err != nil {
			return err
		}
		u.StartCeremony("r", c, time.Now())
		ans, err := auth.Register(opts)
		if err != nil {
			return err
		}
		_, err = rp.FinishRegistration("alice", "alice", u, "r", "b", ans, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}

	call := func(method string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, origin+"/authn/v1", bytes.NewReader(b))
		req.SetBasicAuth(testAPIUser, "admin-password")
		req.Header.Set("Content-Type", "application/json")
		resp, err := tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, raw)
		}
		return resp.StatusCode, m
	}
	status := func(m map[string]any) string { return m["status"].(map[string]any)["status"].(string) }
	// flow runs POST and Init and returns the correlationId, the nonce and
	// the request options.
	flow := func() (string, string, []byte) {
		t.Helper()
		code, post := call("POST", map[string]any{
			"clientInfo": map[string]any{"clientId": itClient, "clientSecret": itClientSecret},
			"userInfo":   map[string]any{"userId": "alice"},
		})
		if code != 200 || !strings.Contains(fmt.Sprint(post["initContext"]), state.FactorFIDO2) {
			t.Fatalf("POST: %d %v", code, post)
		}
		cid := post["correlationId"].(string)
		code, init := call("PUT", map[string]any{
			"challengeop": "Init", "correlationId": cid, "nonce": post["nonce"],
			"challengedata": map[string]any{"factor": state.FactorFIDO2},
		})
		if code != 200 {
			t.Fatalf("Init: %d %v", code, init)
		}
		var opts []byte
		ci := init["initContext"].(map[string]any)["challengeInfo"].([]any)[0].(map[string]any)
		for _, kv := range ci["factorContext"].(map[string]any)["challengeAttrMap"].([]any) {
			kv := kv.(map[string]any)
			if kv["key"] == "publicKeyCredentialRequestOptions" {
				opts = []byte(kv["value"].(map[string]any)["value"].(string))
			}
		}
		if opts == nil {
			t.Fatalf("Init without options: %v", init)
		}
		return cid, init["nonce"].(string), opts
	}
	validate := func(cid, nonce string, answer []byte) (int, map[string]any) {
		return call("PUT", map[string]any{"challengeop": "Validate", "correlationId": cid, "nonce": nonce, "challengeAnswer": string(answer)})
	}

	cid, nonce, opts := flow()
	good, err := auth.Assert(opts)
	if err != nil {
		t.Fatal(err)
	}
	if code, m := validate(cid, nonce, good); code != 200 || status(m) != "authenticated" || m["sessionId"] == "" {
		t.Fatalf("Validate of a right assertion: %d %v", code, m)
	}

	bad := auth.Clone()
	bad.Origin = "http://localhost:1"
	cid, nonce, opts = flow()
	answer, _ := bad.Assert(opts)
	if code, m := validate(cid, nonce, answer); code != 200 || status(m) != "pending verification" {
		t.Errorf("wrong origin: %d %v", code, m)
	}
	cid, nonce, _ = flow()
	if code, m := validate(cid, nonce, good); code != 200 || status(m) != "pending verification" {
		t.Errorf("replayed assertion: %d %v", code, m)
	}
	u, err := rs.GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(u.Attempts[state.FactorFIDO2].Times); n != 2 {
		t.Errorf("%d failed attempts counted in the shared store, want 2", n)
	}
	if u.Passkeys[0].SignCount != auth.SignCount || u.Passkeys[0].LastUsed.IsZero() {
		t.Errorf("stored passkey %+v, authenticator at %d", u.Passkeys[0], auth.SignCount)
	}
}
