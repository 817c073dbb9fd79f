package handlers

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

const raSeedID = "96eb744b-b84e-4c13-8b78-06b64ad81d94"

// The seed's two requests, byte for byte (risk-analyzer source document).
const (
	seedJSON = `{
        "requestId":"96eb744b-b84e-4c13-8b78-06b64ad81d94",
        "authenticationStatus": "999",
        "registerDevice": "true",
        "clientApplication": "OAA Update",
        "clientType": "0",
        "clientVersion": "12.2.1.4.2",
        "analyzePatterns": "true"
}`
	seedXML = ` <?xml version="1.0" encoding="UTF-8" ?> <SessionData> <requestId>96eb744b-b84e-4c13-8b78-06b64ad81d94</requestId> <authenticationStatus>999</authenticationStatus> <registerDevice>true</registerDevice> <clientApplication>OAA Update</clientApplication> <clientType>0</clientType> <clientVersion>12.2.1.4.2</clientVersion> <analyzePatterns>true</analyzePatterns> </SessionData> `
)

type raFixture struct {
	clk   *fakeClock
	store *state.Memory
	ra    *RiskAnalyzer
	mux   http.Handler // the family, checked against docs/openapi/risk-analyzer.yaml
}

func newRA(t *testing.T) *raFixture {
	t.Helper()
	clk := testkit.NewClock(t0)
	store := state.NewMemory(state.MemoryOptions{Now: clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = store.Close() })
	env := &Env{
		Store: store, Now: clk.Now, Logger: zap.NewNop(),
		Policy: Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, IDStoreName: "UserIdentityStore1"},
	}
	ra := &RiskAnalyzer{
		Env: env, Auth: testAuth(), Success: map[int]bool{0: true}, Pending: map[int]bool{7: true},
		DeviceTrust: 720 * time.Hour, HistorySize: 3,
	}
	mux := http.NewServeMux()
	ra.Register(mux)
	return &raFixture{clk: clk, store: store, ra: ra, mux: contract.New(t).Handler(mux)}
}

func (f *raFixture) do(t *testing.T, method, path, ct, accept, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.SetBasicAuth(apiUser, apiPass)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

func (f *raFixture) create(t *testing.T, id string) {
	t.Helper()
	rec := f.do(t, "POST", RiskBase, "application/json", "",
		`{"requestId":"`+id+`","user":{"loginName":"alice","groupName":"Default","userId":"u-alice"},"ip":{"ipAddress":"198.51.100.7"}}`)
	if rec.Code != 200 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
}

func (f *raFixture) session(t *testing.T, id string) *state.Session {
	t.Helper()
	s, err := f.store.Get(context.Background(), state.KeyOf(id))
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return s
}

func TestRiskAnalyzerSeedJSON(t *testing.T) {
	f := newRA(t)
	f.create(t, raSeedID)
	rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", seedJSON)
	want := `{"responseCode":"0","responseMessage":"","status":true,"sessionId":"` + raSeedID + `"}`
	if rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q %s, want %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
	}
	s := f.session(t, raSeedID)
	// 999 is not in the success set: failed, with the raw values kept.
	if s.Status != state.StatusFailed || *s.AuthenticationStatus != 999 || *s.ClientType != 0 ||
		s.ClientApplication != "OAA Update" || s.ClientVersion != "12.2.1.4.2" {
		t.Fatalf("session after seed: %+v", s)
	}
	u, err := f.store.GetUser(context.Background(), "u-alice")
	if err != nil || len(u.Devices) != 1 || !strings.HasPrefix(u.Devices[0].ID, "fp:") ||
		!u.Devices[0].Until.Equal(t0.Add(720*time.Hour)) {
		t.Fatalf("device not registered: %+v %v", u, err)
	}
	if len(u.History) != 0 {
		t.Fatalf("history recorded for a failed login: %+v", u.History)
	}
}

func TestRiskAnalyzerSeedXML(t *testing.T) {
	f := newRA(t)
	f.create(t, raSeedID)
	rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/xml", "application/xml", seedXML)
	want := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><StatusResponse><responseCode>0</responseCode><responseMessage></responseMessage><status>true</status><sessionId>` + raSeedID + `</sessionId></StatusResponse>`
	if rec.Code != 200 || rec.Body.String() != want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/xml") {
		t.Fatalf("got %d %q\n%s\nwant\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
	}
}

func TestRiskAnalyzerStatusTransitions(t *testing.T) {
	tests := []struct {
		status int
		want   state.Status
	}{
		{0, state.StatusAuthenticated},
		{7, state.StatusPendingVerification},
		{1, state.StatusFailed},
		{4, state.StatusFailed},
		{-3, state.StatusFailed},
		{999, state.StatusFailed},
	}
	for _, tc := range tests {
		f := newRA(t)
		id := state.NewID()
		f.create(t, id)
		if s := f.session(t, id); s.Status != state.StatusPendingVerification || s.UserID != "u-alice" || s.ClientIP != "198.51.100.7" {
			t.Fatalf("created session: %+v", s)
		}
		body, _ := json.Marshal(map[string]any{"requestId": id, "authenticationStatus": tc.status, "clientType": 3, "analyzePatterns": true})
		rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", string(body))
		if rec.Code != 200 {
			t.Fatalf("%d: %d %s", tc.status, rec.Code, rec.Body)
		}
		if s := f.session(t, id); s.Status != tc.want || *s.AuthenticationStatus != tc.status {
			t.Fatalf("authenticationStatus %d: status %q, want %q", tc.status, s.Status, tc.want)
		}
		u, _ := f.store.GetUser(context.Background(), "u-alice")
		if got := u != nil && len(u.History) == 1; got != (tc.want == state.StatusAuthenticated) {
			t.Fatalf("authenticationStatus %d: history %+v", tc.status, u)
		}
	}
}

func TestRiskAnalyzerBlockedSession(t *testing.T) {
	f := newRA(t)
	id := state.NewID()
	f.create(t, id)
	if _, err := f.store.Update(context.Background(), state.KeyOf(id), func(s *state.Session) error {
		return s.SetStatus(state.StatusChallengeBlocked, f.clk.Now(), "too_many_attempts", 15*time.Minute)
	}); err != nil {
		t.Fatal(err)
	}
	body := `{"requestId":"` + id + `","authenticationStatus":0,"clientType":1}`
	rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", body)
	var res statusResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	if rec.Code != 400 || res.ResponseCode != "3" || res.Status || !strings.Contains(res.ResponseMessage, "blocked") {
		t.Fatalf("blocked: %d %s", rec.Code, rec.Body)
	}
	if s := f.session(t, id); s.Status != state.StatusChallengeBlocked || s.AuthenticationStatus != nil {
		t.Fatalf("refused update changed the session: %+v", s)
	}
	f.clk.Advance(15 * time.Minute)
	if rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", body); rec.Code != 200 {
		t.Fatalf("after the block: %d %s", rec.Code, rec.Body)
	}
	if s := f.session(t, id); s.Status != state.StatusAuthenticated {
		t.Fatalf("after the block: %q", s.Status)
	}
}

func TestRiskAnalyzerFieldForms(t *testing.T) {
	tests := []struct {
		name      string
		json, xml string // the members after requestId
		code      int
		field     string
	}{
		{"numbers", `"authenticationStatus":0,"clientType":2`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType>`, 200, ""},
		{"strings", `"authenticationStatus":"0","clientType":"2"`, `<authenticationStatus> 0 </authenticationStatus><clientType>2</clientType>`, 200, ""},
		{"bools", `"authenticationStatus":0,"clientType":2,"registerDevice":false,"analyzePatterns":"false"`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><registerDevice>false</registerDevice>`, 200, ""},
		{"any case", `"AUTHENTICATIONSTATUS":0,"ClientType":2`, `<AuthenticationStatus>0</AuthenticationStatus><CLIENTTYPE>2</CLIENTTYPE>`, 200, ""},
		{"missing status", `"clientType":2`, `<clientType>2</clientType>`, 400, "authenticationStatus"},
		{"missing client type", `"authenticationStatus":0`, `<authenticationStatus>0</authenticationStatus>`, 400, "clientType"},
		{"status not int", `"authenticationStatus":"zero","clientType":2`, `<authenticationStatus>zero</authenticationStatus><clientType>2</clientType>`, 400, "authenticationStatus"},
		{"status float", `"authenticationStatus":1.5,"clientType":2`, `<authenticationStatus>1.5</authenticationStatus><clientType>2</clientType>`, 400, "authenticationStatus"},
		{"status object", `"authenticationStatus":{},"clientType":2`, `<authenticationStatus><x>1</x></authenticationStatus><clientType>2</clientType>`, 400, "authenticationStatus"},
		{"client type bool", `"authenticationStatus":0,"clientType":true`, `<authenticationStatus>0</authenticationStatus><clientType>yes</clientType>`, 400, "clientType"},
		{"bad bool", `"authenticationStatus":0,"clientType":2,"registerDevice":"yes"`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><registerDevice>1</registerDevice>`, 400, "registerDevice"},
		{"bool as number", `"authenticationStatus":0,"clientType":2,"analyzePatterns":1`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><analyzePatterns/>`, 400, "analyzePatterns"},
		{"version not string", `"authenticationStatus":0,"clientType":2,"clientVersion":1.2`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><clientVersion><v>1</v></clientVersion>`, 400, "clientVersion"},
		{"device not string", `"authenticationStatus":0,"clientType":2,"externalDeviceId":["d"]`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><externalDeviceId><d/></externalDeviceId>`, 400, "externalDeviceId"},
		{"device too long", `"authenticationStatus":0,"clientType":2,"externalDeviceId":"` + strings.Repeat("d", 257) + `"`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><externalDeviceId>` + strings.Repeat("d", 257) + `</externalDeviceId>`, 400, "externalDeviceId"},
		{"strings kept", `"authenticationStatus":0,"clientType":2,"clientVersion":"1.0","externalDeviceId":"d1","clientApplication":"App"`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><clientVersion>1.0</clientVersion><externalDeviceId>d1</externalDeviceId><clientApplication>App</clientApplication>`, 200, ""},
		{"app not string", `"authenticationStatus":0,"clientType":2,"clientApplication":5`, `<authenticationStatus>0</authenticationStatus><clientType>2</clientType><clientApplication><a/></clientApplication>`, 400, "clientApplication"},
	}
	for _, tc := range tests {
		for _, enc := range []string{"json", "xml"} {
			t.Run(tc.name+"/"+enc, func(t *testing.T) {
				f := newRA(t)
				id := state.NewID()
				f.create(t, id)
				before := f.session(t, id)
				var rec *httptest.ResponseRecorder
				if enc == "json" {
					rec = f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", `{"requestId":"`+id+`",`+tc.json+`}`)
				} else {
					rec = f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "text/xml; charset=utf-8", "", `<SessionData><requestId>`+id+`</requestId>`+tc.xml+`</SessionData>`)
				}
				if rec.Code != tc.code {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
				}
				if tc.name == "strings kept" {
					if s := f.session(t, id); s.ClientVersion != "1.0" || s.ExternalDeviceID != "d1" || s.ClientApplication != "App" {
						t.Fatalf("strings not stored: %+v", s)
					}
				}
				if tc.code == 400 {
					var res statusResponse
					if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Status || res.ResponseCode != "1" ||
						!strings.HasPrefix(res.ResponseMessage, tc.field+":") {
						t.Fatalf("error body %s, want responseCode 1 naming %s", rec.Body, tc.field)
					}
					if after := f.session(t, id); after.Version != before.Version {
						t.Fatalf("rejected request changed the session")
					}
				}
			})
		}
	}
}

func TestRiskAnalyzerStatusCodes(t *testing.T) {
	f := newRA(t)
	f.create(t, raSeedID)
	upd := RiskBase + "/updatesessionsecurely"
	tests := []struct {
		name, method, path, ct, accept, body string
		code                                 int
		respCode                             string
	}{
		{"unknown requestId", "PUT", upd, "application/json", "", `{"requestId":"6f1c1c0e-4b8a-4e8e-9a8e-7a1b2c3d4e5f","authenticationStatus":0,"clientType":0}`, 400, "2"},
		{"missing requestId", "PUT", upd, "application/json", "", `{"authenticationStatus":0,"clientType":0}`, 400, "1"},
		{"malformed JSON", "PUT", upd, "application/json", "", `{"requestId":`, 400, "1"},
		{"not an object", "PUT", upd, "application/json", "", `[1,2]`, 400, "1"},
		{"malformed XML", "PUT", upd, "application/xml", "", `<SessionData><requestId>x</SessionData>`, 400, "1"},
		{"doctype", "PUT", upd, "application/xml", "", `<!DOCTYPE x [<!ENTITY a "b">]><SessionData/>`, 400, "1"},
		{"unsupported type", "PUT", upd, "application/x-www-form-urlencoded", "", `a=b`, 415, "1"},
		{"unacceptable", "PUT", upd, "application/json", "image/png", seedJSON, 406, "1"},
		{"too large", "PUT", upd, "application/json", "", `{"x":"` + strings.Repeat("a", 65<<10) + `"}`, 413, "1"},
		{"too deep JSON", "PUT", upd, "application/json", "", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), 400, "1"},
		{"too deep XML", "PUT", upd, "application/xml", "", strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40), 400, "1"},
		{"wrong method", "DELETE", RiskBase, "", "", "", 405, "1"},
		{"fetch unknown", "PUT", RiskBase + "/fetchsessionsecurely", "application/json", "", `{"requestId":"nope"}`, 400, "2"},
		{"create without user", "POST", RiskBase, "application/json", "", `{"requestId":"` + state.NewID() + `"}`, 400, "1"},
		{"create bad id", "POST", RiskBase, "application/json", "", `{"requestId":"short","user":{"loginName":"a"}}`, 400, "1"},
		{"create existing", "POST", RiskBase, "application/json", "", `{"requestId":"` + raSeedID + `","user":{"loginName":"a"}}`, 400, "1"},
		{"path id differs", "PUT", RiskBase + "/" + state.NewID(), "application/json", "", seedJSON, 400, "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.session(t, raSeedID)
			rec := f.do(t, tc.method, tc.path, tc.ct, tc.accept, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if tc.respCode != "" {
				var res statusResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.ResponseCode != tc.respCode || res.Status || res.ResponseMessage == "" {
					t.Fatalf("body %s, want responseCode %s", rec.Body, tc.respCode)
				}
			} else if rec.Body.Len() != 0 {
				t.Fatalf("want no body, got %s", rec.Body)
			}
			if after := f.session(t, raSeedID); after.Version != before.Version {
				t.Fatalf("rejected request changed the session")
			}
		})
	}
	req := httptest.NewRequest("PUT", upd, strings.NewReader(seedJSON))
	req.SetBasicAuth(apiUser, "wrong")
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	if rec.Code != 401 || rec.Body.Len() != 0 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("bad credentials: %d %q", rec.Code, rec.Body)
	}
}

// failingStore is a store whose backend is down.
type failingStore struct{ state.Store }

func (failingStore) Update(context.Context, state.Key, func(*state.Session) error) (*state.Session, error) {
	return nil, errors.Join(state.ErrUnavailable, io.ErrUnexpectedEOF)
}

func (failingStore) Get(context.Context, state.Key) (*state.Session, error) {
	return nil, errors.New("disk on fire")
}

func TestRiskAnalyzerStoreDown(t *testing.T) {
	f := newRA(t)
	f.ra.Env.Store = failingStore{f.store}
	if rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", seedJSON); rec.Code != 503 ||
		rec.Body.Len() != 0 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("store unavailable: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(t, "GET", RiskBase+"/"+raSeedID, "", "", ""); rec.Code != 500 || rec.Body.Len() != 0 {
		t.Fatalf("store failing: %d %s", rec.Code, rec.Body)
	}
}

func TestRiskAnalyzerFetchAndAliases(t *testing.T) {
	f := newRA(t)
	f.create(t, raSeedID)
	if rec := f.do(t, "PUT", RiskBase+"/"+raSeedID, "application/json", "", `{"authenticationStatus":"0","clientType":"5"}`); rec.Code != 200 {
		t.Fatalf("deprecated PUT: %d %s", rec.Code, rec.Body)
	}
	for _, rec := range []*httptest.ResponseRecorder{
		f.do(t, "GET", RiskBase+"/"+raSeedID, "", "", ""),
		f.do(t, "PUT", RiskBase+"/fetchsessionsecurely", "application/json", "*/*", `{"requestId":"`+raSeedID+`"}`),
	} {
		var res statusResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 || !res.Status ||
			res.UserData == nil || res.UserData.LoginName != "alice" || res.UserData.GroupName != "Default" ||
			res.SessionStatus != "authenticated" || *res.AuthenticationStatus != 0 || *res.ClientType != 5 {
			t.Fatalf("fetch: %d %s", rec.Code, rec.Body)
		}
	}
	rec := f.do(t, "PUT", RiskBase+"/fetchsessionsecurely", "application/xml", "text/xml", `<SessionData><requestId>`+raSeedID+`</requestId></SessionData>`)
	var x struct {
		XMLName  xml.Name `xml:"StatusResponse"`
		Code     string   `xml:"responseCode"`
		UserData struct {
			LoginName string `xml:"loginName"`
		} `xml:"userData"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &x); err != nil || x.Code != "0" || x.UserData.LoginName != "alice" {
		t.Fatalf("XML fetch: %s", rec.Body)
	}
	rec = f.do(t, "GET", RiskBase+"/"+raSeedID, "", "text/plain", "")
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "responseCode=0\n") ||
		!strings.Contains(body, "userData.loginName=alice\n") || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("text fetch: %s", body)
	}
}

func TestRiskAnalyzerHistoryBoundAndDevices(t *testing.T) {
	f := newRA(t)
	id := state.NewID()
	f.create(t, id)
	for i := range 5 {
		body := `{"requestId":"` + id + `","authenticationStatus":0,"clientType":1,"analyzePatterns":true,"registerDevice":true,"externalDeviceId":"dev-` + string(rune('a'+i%2)) + `"}`
		if rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", body); rec.Code != 200 {
			t.Fatalf("%d: %s", rec.Code, rec.Body)
		}
		f.clk.Advance(time.Minute)
	}
	u, err := f.store.GetUser(context.Background(), "u-alice")
	if err != nil || len(u.History) != 3 || !u.History[2].Time.Equal(t0.Add(4*time.Minute)) || len(u.Devices) != 2 {
		t.Fatalf("user state: %+v %v", u, err)
	}
	f.ra.DeviceTrust = 0
	f.ra.HistorySize = 0
	body := `{"requestId":"` + id + `","authenticationStatus":0,"clientType":1,"analyzePatterns":true,"registerDevice":true,"externalDeviceId":"dev-z"}`
	f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", body)
	if u2, _ := f.store.GetUser(context.Background(), "u-alice"); u2.Version != u.Version {
		t.Fatalf("disabled trust/history still wrote the user state")
	}
}

// raCreateSeed is a create in the vendor's collection's shape.
const raCreateSeed = `{"requestId":"` + raSeedID + `","requestTime":"2026-01-01T00:00:00Z",` +
	`"user":{"loginName":"alice","groupName":"Staff","userId":"alice"},` +
	`"ip":{"remoteIP":"192.0.2.1","remoteHost":"h","proxyIP":"192.0.2.9","ipAddress":"192.0.2.1"},` +
	`"fpList":[{"cookie":"c","fingerprint":"f","cookieType":"1"}],"sessionData":{"authenticationStatus":0,"clientType":0}}`

func FuzzRiskAnalyzerJSON(f *testing.F) {
	seeds := []string{seedJSON, raCreateSeed, `{}`, `{"requestId":null}`, `[`, `{"a":[{"b":{}}]}`, `{"authenticationStatus":"1e99"}`}
	for _, s := range append(seeds, hostileVariants(seedJSON, raCreateSeed)...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d, err := decodeDoc([]byte(body), mediaJSON)
		if err != nil {
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Fatalf("error %T %v is not a FieldError", err, err)
			}
			return
		}
		_, _ = parseUpdate(d, "")
		_, _ = parseCreate(d)
	})
}

func FuzzRiskAnalyzerXML(f *testing.F) {
	for _, s := range []string{seedXML, `<a><user><loginName>x</loginName></user><fpList><cookie>c</cookie></fpList><fpList/><fpList>t</fpList></a>`, `<a/>`, `<a><b>1</b></a>`, `<?xml version="1.0"?><a>&amp;</a>`, `<a><b><c/></b>`, `<!DOCTYPE a><a/>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d, err := decodeDoc([]byte(body), mediaXML)
		if err != nil {
			return
		}
		_, _ = parseUpdate(d, "")
		_, _ = parseCreate(d)
	})
}
