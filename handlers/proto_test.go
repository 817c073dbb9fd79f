package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// This file holds the protocol-fidelity tests that run across the four
// families: media types, Accept, body limits, 405s, store outages and
// hostile JSON at every member of every request document.

// protoFamily is one family behind one handler, with what its answers look
// like.
type protoFamily struct {
	name   string
	h      http.Handler
	auth   func(*http.Request)
	marker string // a member every error body of the family has
	// endpoints are the family's JSON endpoints with a valid document.
	endpoints []protoEndpoint
}

type protoEndpoint struct {
	method, path, body string
}

func protoFamilies(t *testing.T) []protoFamily {
	t.Helper()
	oam := newOAM(t)
	ra := newRA(t)
	an := newAuthnFixture(t)
	otp := newOTPFixture(t, false)
	basic := func(r *http.Request) { r.SetBasicAuth(apiUser, apiPass) }
	return []protoFamily{
		{"oam", oam.mux, basic, "code", []protoEndpoint{
			{"POST", OAMBase + "/session", `{"userId":"alice","sessionId":"` + state.NewID() + `","clientIp":"192.0.2.1",
				"expiryTime":"2099-01-01T00:00:00Z","idStoreName":"S","isImpersonating":false,
				"userAttributes":{"mail":{"attrName":"mail","attrValue":"a@example.com"}}}`},
			{"POST", OAMBase + "/sessions", `{"userId":"alice","sessionId":"x","clientIp":"192.0.2.1","idStoreName":"S",
				"isImpersonating":"false","userAttributes":{"mail":{"attrName":"mail","attrValue":"a@example.com"}},
				"createTime":"2000-01-01T00:00:00Z","fromIndex":0,"pageSize":"10"}`},
		}},
		{"risk-analyzer", ra.mux, basic, "responseCode", []protoEndpoint{
			{"POST", RiskBase, `{"requestId":"` + state.NewID() + `","requestTime":"2026-01-01T00:00:00Z",
				"user":{"loginName":"alice","groupName":"Staff","userId":"alice"},
				"ip":{"remoteIP":"192.0.2.1","remoteHost":"host.example","proxyIP":"192.0.2.9","ipAddress":"192.0.2.1"},
				"fpList":[{"cookie":"c1","fingerprint":"f1","cookieType":"1"}],
				"sessionData":{"authenticationStatus":7,"clientType":0,"clientApplication":"app","clientVersion":"1",
				"externalDeviceId":"d1","registerDevice":false,"analyzePatterns":false}}`},
			{"PUT", RiskBase + "/updatesessionsecurely", seedJSON},
			{"PUT", RiskBase + "/fetchsessionsecurely", `{"requestId":"` + raSeedID + `"}`},
			{"PUT", RiskBase + "/" + raSeedID, seedJSON},
		}},
		{"authn", an.mux, basic, "status", []protoEndpoint{
			{"POST", authnPathV1, `{"clientInfo":{"clientId":"` + authnClientID + `","clientSecret":"` + authnClientSecret + `","ctype":"x"},
				"context":{"ipAddress":"192.0.2.1","userAgent":"ua","resource":"/r","cookies":[{"name":"a","value":"b"}],
				"requestParams":[{"name":"a","value":"b"}],"headers":[{"name":"a","value":"b"}]},
				"timeToLiveInSec":60,"userInfo":{"userId":"alice","groups":["Default"],"uniqueUserId":"u","locale":"en"}}`},
			{"PUT", authnPathV1, `{"challengeop":"Init","correlationId":"abc","nonce":"n","challengeAnswer":"1",
				"challengedata":{"factor":"ChallengeEmail","userId":"alice","groupId":"g","uniqueUserId":"u",
				"factorAttributes":[{"factorAttributeName":"a","factorAttributeValue":[{"name":"n","value":"v","isEnabled":true}]}]},
				"challengeResult":"Success","challengeResultReason":"wrong_answer"}`},
		}},
		{"otp", otp.h, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+otpToken) }, "errors", []protoEndpoint{
			{"PUT", "/sessions/" + seedID, `{"userId":"` + seedUserID + `","passedLoginOTP":false}`},
			{"POST", "/user/otp/verify", `{"otp":"123456","types":["login","totp"],"sessionId":"` + seedID + `"}`},
			{"POST", "/user/otp", `{"sessionId":"` + seedID + `"}`},
		}},
	}
}

func (f protoFamily) send(t *testing.T, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	f.auth(req)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

// checkError asserts an error answer with the given status in the family's
// JSON shape.
func (f protoFamily) checkError(t *testing.T, w *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: %s: status %d, want %d: %s", f.name, what, w.Code, status, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m[f.marker] == nil {
		t.Fatalf("%s: %s: body not in the family's shape (%v): %s", f.name, what, err, w.Body)
	}
}

// TestMediaTypesEveryFamily: every JSON endpoint of every family refuses a
// body that is not JSON (or XML where the family reads XML) with 415, an
// Accept it cannot satisfy with 406, and a body over 64 KiB with 413, each
// in the family's error shape.
func TestMediaTypesEveryFamily(t *testing.T) {
	for _, f := range protoFamilies(t) {
		for _, ep := range f.endpoints {
			what := ep.method + " " + ep.path
			for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/csv", "application/jsonx", "bogus/"} {
				f.checkError(t, f.send(t, ep.method, ep.path, ep.body, "Content-Type", ct), http.StatusUnsupportedMediaType, what+" as "+ct)
			}
			// No Content-Type at all: what a no-CORS fetch of a Blob sends.
			f.checkError(t, f.send(t, ep.method, ep.path, ep.body), http.StatusUnsupportedMediaType, what+" without Content-Type")
			accept := []string{"text/csv", "image/png", "application/json;q=0"}
			if f.name == "oam" || f.name == "otp" {
				accept = append(accept, "application/xml", "text/xml", "text/plain")
			}
			if f.name == "authn" {
				accept = append(accept, "text/plain")
			}
			for _, acc := range accept {
				f.checkError(t, f.send(t, ep.method, ep.path, ep.body, "Content-Type", "application/json", "Accept", acc), http.StatusNotAcceptable, what+" accepting "+acc)
			}
			big := `{"x":"` + strings.Repeat("a", MaxBody) + `"}`
			f.checkError(t, f.send(t, ep.method, ep.path, big, "Content-Type", "application/json"), http.StatusRequestEntityTooLarge, what+" too large")
			// The JSON types the family accepts still work.
			w := f.send(t, ep.method, ep.path, ep.body, "Content-Type", "application/json; charset=utf-8", "Accept", "application/json, */*;q=0.1")
			if w.Code == http.StatusUnsupportedMediaType || w.Code == http.StatusNotAcceptable || w.Code >= 500 {
				t.Errorf("%s: %s with JSON: %d %s", f.name, what, w.Code, w.Body)
			}
		}
	}
}

// TestCrossSiteTextPlainFormCreatesNoSession is #14's finding 5: an HTML
// form with enctype=text/plain on a foreign page, posted by a browser that
// holds the API's Basic credentials, sends a body that is valid JSON. It
// must not create a session with the attacker's id.
func TestCrossSiteTextPlainFormCreatesNoSession(t *testing.T) {
	f := newOAM(t)
	id := "attacker-chosen-session-id-0123456789abcdef"
	// <input name='{"userId":"victim","sessionId":"…","x":"' value='"}'>
	body := `{"userId":"victim","sessionId":"` + id + `","x":"` + `=` + `"}` + "\r\n"
	for _, ct := range []string{"text/plain", ""} {
		req := httptest.NewRequest("POST", OAMBase+"/session", strings.NewReader(body))
		req.SetBasicAuth(apiUser, apiPass)
		req.Header.Set("Origin", "https://evil.example")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		assertError(t, f.serve(req), http.StatusUnsupportedMediaType, "")
		if _, err := f.store.Get(context.Background(), state.KeyOf(id)); err == nil {
			t.Fatalf("Content-Type %q: the form created the attacker's session", ct)
		}
	}
}

// TestAuthnAnswerTypeByAcceptOnly: XML in with no Accept answers JSON, the
// default; Accept alone chooses XML.
func TestAuthnAnswerTypeByAcceptOnly(t *testing.T) {
	f := newAuthnFixture(t)
	body := `<AuthnRequest><clientInfo><clientId>` + authnClientID + `</clientId><clientSecret>` + authnClientSecret +
		`</clientSecret></clientInfo><userInfo><userId>alice</userId></userInfo></AuthnRequest>`
	w := f.do("POST", body, "Content-Type", "application/xml")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("XML in, no Accept: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	w = f.do("POST", body, "Content-Type", "application/xml", "Accept", "application/xml")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/xml" {
		t.Fatalf("XML in, Accept XML: %d %s", w.Code, w.Body)
	}
	// An error follows the same rule.
	w = f.do("PUT", `<UpdateAuthnRequest/>`, "Content-Type", "application/xml")
	if w.Code != 400 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("XML error, no Accept: %d %s", w.Code, w.Body)
	}
}

// TestRiskAnalyzerMethodNotAllowedSendsAllow: RFC 9110 §15.5.6.
func TestRiskAnalyzerMethodNotAllowedSendsAllow(t *testing.T) {
	f := newRA(t)
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", RiskBase, "POST"},
		{"GET", RiskBase, "POST"},
		{"DELETE", RiskBase + "/" + raSeedID, "GET, PUT"},
		{"POST", RiskBase + "/" + raSeedID, "GET, PUT"},
		// The named paths serve PUT only (risk-analyzer.md); a GET there is
		// not a deprecated fetch of a session called by the path's name.
		{"PATCH", RiskBase + "/updatesessionsecurely", "PUT"},
		{"GET", RiskBase + "/updatesessionsecurely", "PUT"},
		{"GET", RiskBase + "/fetchsessionsecurely", "PUT"},
		{"DELETE", RiskBase + "/fetchsessionsecurely", "PUT"},
	} {
		w := f.do(t, c.method, c.path, "", "", "")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q, want 405 with %q", c.method, c.path, w.Code, w.Header().Get("Allow"), c.allow)
		}
	}
}

// TestHostileJSONAtEveryMember feeds null, an array, an empty string,
// numbers, a boolean and an empty object in place of the whole document and
// of each member (at every depth) of every family's request documents.
// Every answer is an error or a success in the family's shape: never a
// panic, a dropped connection or a 5xx.
func TestHostileJSONAtEveryMember(t *testing.T) {
	for _, f := range protoFamilies(t) {
		for _, ep := range f.endpoints {
			var doc any
			if err := json.Unmarshal([]byte(ep.body), &doc); err != nil {
				t.Fatalf("%s %s: %v", f.name, ep.path, err)
			}
			for _, p := range jsonPaths(doc, nil) {
				for _, v := range hostileValues {
					b, err := json.Marshal(replaceAt(doc, p, v))
					if err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%s %s with %s at /%s", ep.method, ep.path, mustJSON(v), strings.Join(p, "/"))
					w := func() (w *httptest.ResponseRecorder) {
						defer func() {
							if e := recover(); e != nil {
								t.Fatalf("%s: %s: panic: %v", f.name, what, e)
							}
						}()
						return f.send(t, ep.method, ep.path, string(b), "Content-Type", "application/json")
					}()
					if w.Code >= 500 || w.Code < 200 {
						t.Errorf("%s: %s: status %d: %s", f.name, what, w.Code, w.Body)
						continue
					}
					if w.Code >= 400 {
						var m map[string]any
						if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m[f.marker] == nil {
							t.Errorf("%s: %s: %d not in the family's shape: %s", f.name, what, w.Code, w.Body)
						}
					}
				}
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jsonPaths lists the path of doc itself and of every member and element
// below it.
func jsonPaths(doc any, prefix []string) [][]string {
	out := [][]string{slices.Clone(prefix)}
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			out = append(out, jsonPaths(v, append(slices.Clone(prefix), k))...)
		}
	case []any:
		for i, v := range d {
			out = append(out, jsonPaths(v, append(slices.Clone(prefix), fmt.Sprint(i)))...)
		}
	}
	return out
}

// replaceAt returns a deep copy of doc with the value at path replaced by v.
func replaceAt(doc any, path []string, v any) any {
	if len(path) == 0 {
		return v
	}
	switch d := doc.(type) {
	case map[string]any:
		c := maps.Clone(d)
		c[path[0]] = replaceAt(d[path[0]], path[1:], v)
		return c
	case []any:
		c := slices.Clone(d)
		var i int
		_, _ = fmt.Sscan(path[0], &i)
		c[i] = replaceAt(d[i], path[1:], v)
		return c
	}
	return doc
}

// hostileValues are what a decoder meets where it expects something else.
var hostileValues = []any{nil, []any{}, "", 0, -1.5, 1e300, true, map[string]any{}}

// hostileVariants returns, for each JSON seed, the seed with the whole
// document and each member and element in turn replaced by each of
// hostileValues: the seed corpus of the family's fuzzers.
func hostileVariants(seeds ...string) []string {
	var out []string
	for _, s := range seeds {
		var doc any
		if json.Unmarshal([]byte(s), &doc) != nil {
			continue
		}
		for _, p := range jsonPaths(doc, nil) {
			for _, v := range hostileValues {
				if b, err := json.Marshal(replaceAt(doc, p, v)); err == nil {
					out = append(out, string(b))
				}
			}
		}
	}
	return out
}

// TestRiskAnalyzerCreateVendorShapes: the vendor's own collection sends
// ip {remoteIP, remoteHost, proxyIP} and fpList; the address becomes the
// session's client IP, the fingerprints are kept and fetch returns them,
// in JSON, XML and text. ipAddress stays an alias.
func TestRiskAnalyzerCreateVendorShapes(t *testing.T) {
	f := newRA(t)
	id := state.NewID()
	body := `{"requestId":"` + id + `","requestTime":"2026-01-01T10:00:00Z","user":{"loginName":"alice"},
		"ip":{"remoteIP":"203.0.113.9","remoteHost":"client.example","proxyIP":"198.51.100.1"},
		"fpList":[{"cookie":"ck1","fingerprint":"fp1","cookieType":"1"},{"cookie":"ck2","fingerprint":"fp2","cookieType":"2"}]}`
	if w := f.do(t, "POST", RiskBase, "application/json", "", body); w.Code != 200 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	s := f.session(t, id)
	want := []state.Fingerprint{{Cookie: "ck1", Fingerprint: "fp1", CookieType: "1"}, {Cookie: "ck2", Fingerprint: "fp2", CookieType: "2"}}
	if s.ClientIP != "203.0.113.9" || !slices.Equal(s.Fingerprints, want) {
		t.Fatalf("stored ip %q fingerprints %+v", s.ClientIP, s.Fingerprints)
	}
	w := f.do(t, "PUT", RiskBase+"/fetchsessionsecurely", "application/json", "", `{"requestId":"`+id+`"}`)
	var res statusResponse
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || len(res.FPList) != 2 || res.FPList[1].Fingerprint != "fp2" {
		t.Fatalf("fetch: %d %s", w.Code, w.Body)
	}
	w = f.do(t, "GET", RiskBase+"/"+id, "", "application/xml", "")
	if !strings.Contains(w.Body.String(), "<fpList><cookie>ck1</cookie><fingerprint>fp1</fingerprint><cookieType>1</cookieType></fpList>") {
		t.Fatalf("fetch XML: %s", w.Body)
	}
	w = f.do(t, "GET", RiskBase+"/"+id, "", "text/plain", "")
	if !strings.Contains(w.Body.String(), "fpList.1.fingerprint=fp2\n") {
		t.Fatalf("fetch text: %s", w.Body)
	}

	// XML: the list is the element repeated; ipAddress is an alias.
	id2 := state.NewID()
	xmlBody := `<CreateSession><requestId>` + id2 + `</requestId><user><loginName>bob</loginName></user>
		<ip><ipAddress>2001:db8::1</ipAddress></ip>
		<fpList><cookie>a</cookie><fingerprint>x</fingerprint></fpList><fpList><fingerprint>y</fingerprint></fpList></CreateSession>`
	if w := f.do(t, "POST", RiskBase, "application/xml", "", xmlBody); w.Code != 200 {
		t.Fatalf("create XML: %d %s", w.Code, w.Body)
	}
	if s := f.session(t, id2); s.ClientIP != "2001:db8::1" || len(s.Fingerprints) != 2 || s.Fingerprints[1].Fingerprint != "y" {
		t.Fatalf("XML stored %q %+v", s.ClientIP, s.Fingerprints)
	}

	// Bad shapes are refused with responseCode 1 and create nothing.
	for _, bad := range []string{
		`"ip":{"remoteIP":"not an address"}`,
		`"ip":{"remoteIP":5}`,
		`"ip":[]`,
		`"fpList":{"cookie":"a"}`,
		`"fpList":["a"]`,
		`"fpList":[null]`,
		`"fpList":[{"fingerprint":{}}]`,
		`"fpList":[` + strings.Repeat(`{"fingerprint":"f"},`, 16) + `{"fingerprint":"f"}]`,
		`"fpList":[{"cookie":"` + strings.Repeat("c", 257) + `"}]`,
	} {
		id := state.NewID()
		w := f.do(t, "POST", RiskBase, "application/json", "", `{"requestId":"`+id+`","user":{"loginName":"a"},`+bad+`}`)
		if w.Code != 400 || !strings.Contains(w.Body.String(), `"responseCode":"1"`) {
			t.Errorf("%s: %d %s", bad, w.Code, w.Body)
		}
		if _, err := f.store.Get(context.Background(), state.KeyOf(id)); err == nil {
			t.Errorf("%s: created a session", bad)
		}
	}
}

// TestMaxSessionsPerUser: parallel creations for one user, through two
// families at once, never leave more than the maximum live; one after the
// other, the oldest go and the newest stays.
func TestMaxSessionsPerUser(t *testing.T) {
	f := newOAM(t)
	f.env.Policy.MaxSessionsPerUser = 2
	ra := &RiskAnalyzer{Env: f.env, Auth: testAuth(), Success: map[int]bool{0: true}}
	ra.Register(f.routes)
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			var w *httptest.ResponseRecorder
			if i%2 == 0 {
				w = f.do("POST", "/session", `{"userId":"alice"}`)
			} else {
				req := httptest.NewRequest("POST", RiskBase, strings.NewReader(`{"user":{"loginName":"alice"}}`))
				req.SetBasicAuth(apiUser, apiPass)
				req.Header.Set("Content-Type", "application/json")
				w = f.serve(req)
			}
			if w.Code != 200 {
				t.Errorf("create %d: %d %s", i, w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if live, _ := f.store.ByUser(context.Background(), "alice"); len(live) > 2 || len(live) == 0 {
		t.Fatalf("%d sessions live after parallel creations, max 2", len(live))
	}
	var last string
	for range 3 {
		f.clk.Advance(time.Second)
		last = decode[sessionJSON](t, f.do("POST", "/session", `{"userId":"alice"}`)).SessionID
	}
	live, _ := f.store.ByUser(context.Background(), "alice")
	if len(live) != 2 || !slices.ContainsFunc(live, func(s *state.Session) bool { return s.Key == state.KeyOf(last) }) {
		t.Fatalf("after sequential creations: %d live, newest kept: %v", len(live), live)
	}
	// Other users are not touched.
	f.do("POST", "/session", `{"userId":"bob"}`)
	if b, _ := f.store.ByUser(context.Background(), "bob"); len(b) != 1 {
		t.Fatalf("bob has %d sessions", len(b))
	}
}

// TestMaxSearchResults: the policy caps search and delete-by-user answers.
func TestMaxSearchResults(t *testing.T) {
	f := newOAM(t)
	f.env.Policy.MaxSearchResults = 3
	for range 5 {
		f.do("POST", "/session", `{"userId":"alice"}`)
	}
	var res oamSearchResult
	if err := json.Unmarshal(f.do("POST", "/sessions?userId=alice", "").Body.Bytes(), &res); err != nil ||
		res.TotalRecords != 5 || len(res.Sessions.SessionData) != 3 {
		t.Fatalf("search: %+v %v", res, err)
	}
	var deleted []oamSessionData
	if err := json.Unmarshal(f.do("DELETE", "/session?userId=alice", "").Body.Bytes(), &deleted); err != nil || len(deleted) != 3 {
		t.Fatalf("delete: %d %v", len(deleted), err)
	}
}
