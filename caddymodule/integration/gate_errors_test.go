package integration

import (
	"fmt"
	"strings"
	"testing"
)

// refusal is what a client sees of one gate refusal.
type refusal struct {
	status                         int
	contentType, wwwAuth, location string
	cacheControl, noSniff, body    string
}

func refusalOf(t *testing.T, method, u string, hdr map[string]string) refusal {
	t.Helper()
	code, h, body := call(t, method, u, hdr, "")
	return refusal{
		status: code, contentType: h.Get("Content-Type"), wwwAuth: h.Get("WWW-Authenticate"),
		location: h.Get("Location"), cacheControl: h.Get("Cache-Control"), noSniff: h.Get("X-Content-Type-Options"),
		body: body,
	}
}

// TestGateRefusalsWithoutHandleErrors: with no handle_errors the gate's
// refusals are byte for byte what it has always written.
func TestGateRefusalsWithoutHandleErrors(t *testing.T) {
	_, base := gated(t, "require_group staff")
	api := refusalOf(t, "GET", base+"/app", nil)
	want := refusal{
		status: 401, contentType: "application/json", wwwAuth: `Bearer realm="authsession"`,
		cacheControl: "no-store", noSniff: "nosniff",
		body: `{"error":"unauthorized","message":"a valid authenticated session is required"}`,
	}
	if api != want {
		t.Fatalf("API client refused:\n got %+v\nwant %+v", api, want)
	}
	browser := refusalOf(t, "GET", base+"/app?x=1", map[string]string{"Accept": "text/html"})
	want = refusal{
		status: 302, contentType: "text/html; charset=utf-8", location: "/auth/login?redirect=%2Fapp%3Fx%3D1",
		body: "<a href=\"/auth/login?redirect=%2Fapp%3Fx%3D1\">Found</a>.\n\n",
	}
	if browser != want {
		t.Fatalf("browser refused:\n got %+v\nwant %+v", browser, want)
	}
	s := createSession(t, base, `{"userId":"alice"}`)
	forbidden := refusalOf(t, "GET", base+"/app", map[string]string{"Cookie": "authsession=" + s["sessionId"].(string)})
	want = refusal{
		status: 403, contentType: "application/json", cacheControl: "no-store", noSniff: "nosniff",
		body: `{"error":"forbidden","message":"your group may not use this resource"}`,
	}
	if forbidden != want {
		t.Fatalf("wrong group:\n got %+v\nwant %+v", forbidden, want)
	}
}

// TestGateRefusalsThroughHandleErrors: with handle_errors on the site, the
// gate's refusals go through Caddy's error path with their headers set, so
// the error routes answer them; a status no route matches keeps its status
// and headers (a browser still finds the login page).
func TestGateRefusalsThroughHandleErrors(t *testing.T) {
	up := echoUpstream(t)
	cfg := strings.Replace(gatedConfig, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"), 1)
	cfg = strings.Replace(cfg, "upstream_header X-Auth-Group group", "upstream_header X-Auth-Group group\nrequire_group staff", 1)
	cfg = strings.Replace(cfg, "\tauthsession api\n", "\tauthsession api\n\thandle_errors 401 {\n\t\trespond \"custom\" 401\n\t}\n\thandle_errors 403 {\n\t\trespond \"denied: {err.message}\" 403\n\t}\n", 1)
	_, port := newTester(t, cfg)
	base := fmt.Sprintf("http://localhost:%d", port)

	code, h, body := call(t, "GET", base+"/app", nil, "")
	if code != 401 || body != "custom" || h.Get("WWW-Authenticate") != `Bearer realm="authsession"` {
		t.Fatalf("API client: %d %q WWW-Authenticate %q, want 401 \"custom\" with the challenge", code, body, h.Get("WWW-Authenticate"))
	}
	code, h, body = call(t, "GET", base+"/app", map[string]string{"Accept": "text/html"}, "")
	if code != 302 || h.Get("Location") != "/auth/login?redirect=%2Fapp" || body != "" {
		t.Fatalf("browser: %d Location %q body %q, want 302 to the login page", code, h.Get("Location"), body)
	}
	s := createSession(t, base, `{"userId":"alice"}`)
	code, _, body = call(t, "GET", base+"/app", map[string]string{"Cookie": "authsession=" + s["sessionId"].(string)}, "")
	if code != 403 || body != "denied: authsession: the session's group may not use this resource" {
		t.Fatalf("wrong group: %d %q", code, body)
	}
}

// TestGateStepUpThroughCaddy: a session without the factor a gate requires
// sends a browser to sign in again (reauth=1, need=<factor>), with and
// without error routes on the site; an API client gets the plain 401.
func TestGateStepUpThroughCaddy(t *testing.T) {
	const loc = "/auth/login?need=ChallengeOMATOTP&reauth=1&redirect=%2Fapp"
	for _, errorRoutes := range []bool{false, true} {
		up := echoUpstream(t)
		cfg := strings.Replace(gatedConfig, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"), 1)
		cfg = strings.Replace(cfg, "upstream_header X-Auth-Group group", "upstream_header X-Auth-Group group\nrequire_factor ChallengeOMATOTP", 1)
		if errorRoutes {
			cfg = strings.Replace(cfg, "\tauthsession api\n", "\tauthsession api\n\thandle_errors 401 {\n\t\trespond \"custom\" 401\n\t}\n", 1)
		}
		_, port := newTester(t, cfg)
		base := fmt.Sprintf("http://localhost:%d", port)
		s := createSession(t, base, `{"userId":"alice"}`) // made by the API: no factor
		cookie := "authsession=" + s["sessionId"].(string)
		code, h, _ := call(t, "GET", base+"/app", map[string]string{"Cookie": cookie, "Accept": "text/html"}, "")
		if code != 302 || h.Get("Location") != loc {
			t.Fatalf("error routes %v: browser %d Location %q, want 302 %q", errorRoutes, code, h.Get("Location"), loc)
		}
		code, h, _ = call(t, "GET", base+"/app", map[string]string{"Cookie": cookie}, "")
		if code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="authsession"` {
			t.Fatalf("error routes %v: API client %d, want 401 with the challenge", errorRoutes, code)
		}
	}
}
