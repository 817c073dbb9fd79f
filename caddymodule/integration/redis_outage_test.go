package integration

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// newUUID returns a random v4 UUID (an id every family accepts).
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// TestRedisFrozenWritesAnswer503: with the Redis server hung (SIGSTOP), a
// write of each family answers 503 with Retry-After in the family's own
// error shape, not 408 (which says the client was slow); an OAM lookup
// that runs out of time answers 408, as the vendor documents. Once Redis
// answers again, so do the writes.
func TestRedisFrozenWritesAnswer503(t *testing.T) {
	redis := redistest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer up.Close()
	store := fmt.Sprintf(`store redis redis://%s {
			key_prefix outage:
			timeout 300ms
		}`, redis.Addr())
	_, port := newTester(t, familiesFileConfig(store, strings.TrimPrefix(up.URL, "http://")))
	base := fmt.Sprintf("http://localhost:%d", port)
	bearer := map[string]string{"Authorization": "Bearer restart-token", "Content-Type": "application/json"}

	type write struct {
		name, method, path string
		hdr                map[string]string
		body               string
		// shape checks the family's error body of a 503.
		shape func(body string) bool
	}
	writes := func() []write {
		return []write{
			{
				"OAM create", http.MethodPost, handlers.OAMBase + "/session", apiAuth(), `{"userId":"outage-user"}`,
				func(b string) bool {
					var e struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					}
					return json.Unmarshal([]byte(b), &e) == nil && e.Code == 503 && e.Message != ""
				},
			},
			{
				"risk analyzer create", http.MethodPost, handlers.RiskBase, apiAuth(),
				`{"requestId":"` + newUUID() + `","user":{"loginName":"outage-user"}}`,
				// The specification's 503 has no body.
				func(b string) bool { return b == "" },
			},
			{
				"OTP session", http.MethodPut, "/sessions/" + newUUID(), bearer,
				`{"userId":"` + newUUID() + `","passedLoginOTP":false}`,
				func(b string) bool {
					var e struct {
						Errors []struct{ Status, Code string } `json:"errors"`
					}
					return json.Unmarshal([]byte(b), &e) == nil && len(e.Errors) == 1 &&
						e.Errors[0].Status == "503" && e.Errors[0].Code == "store-unavailable"
				},
			},
			{
				"challenge start", http.MethodPost, "/authn/v1", apiAuth(),
				`{"clientInfo":{"clientId":"restart-client","clientSecret":"restart-secret"},"userInfo":{"userId":"outage-user"}}`,
				func(b string) bool {
					var e struct {
						Status struct{ Code, Message, Status string } `json:"status"`
					}
					return json.Unmarshal([]byte(b), &e) == nil && e.Status.Code == "1011" && e.Status.Status == "error"
				},
			},
		}
	}

	// Up: every write succeeds.
	for _, w := range writes() {
		if code, _, body := call(t, w.method, base+w.path, w.hdr, w.body); code != http.StatusOK {
			t.Fatalf("%s before the outage: %d %s", w.name, code, body)
		}
	}

	redis.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			redis.Thaw()
		}
	}()
	for _, w := range writes() {
		code, hdr, body := call(t, w.method, base+w.path, w.hdr, w.body)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !w.shape(body) {
			t.Errorf("%s with Redis frozen: %d Retry-After %q %s", w.name, code, hdr.Get("Retry-After"), body)
		}
	}
	// A lookup of a session no instance has cached must ask Redis, and
	// runs out of time.
	code, _, body := call(t, http.MethodGet, base+handlers.OAMBase+"/session/"+state.NewID(), apiAuth(), "")
	if code != http.StatusRequestTimeout || !strings.Contains(body, `"code":408`) {
		t.Errorf("OAM lookup with Redis frozen: %d %s", code, body)
	}

	redis.Thaw()
	thawed = true
	for _, w := range writes() {
		if code, _, body := call(t, w.method, base+w.path, w.hdr, w.body); code != http.StatusOK {
			t.Errorf("%s after the outage: %d %s", w.name, code, body)
		}
	}
}
