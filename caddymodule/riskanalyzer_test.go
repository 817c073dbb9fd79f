package caddymodule

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRiskAnalyzerCaddyfile(t *testing.T) {
	a, err := parseApp(`authsession {
		risk_analyzer {
			success_status 0 10
			pending_status 7
			device_trust 48h
			history_size 5
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	c := a.RiskAnalyzer
	if c == nil || len(c.SuccessStatuses) != 2 || c.SuccessStatuses[1] != 10 || c.PendingStatuses[0] != 7 ||
		time.Duration(*c.DeviceTrust) != 48*time.Hour || *c.HistorySize != 5 {
		t.Fatalf("parsed %+v", c)
	}
	a, err = parseApp("authsession {\n risk_analyzer {\n device_trust 0\n history_size 0\n }\n}")
	if err != nil || *a.RiskAnalyzer.DeviceTrust != 0 || *a.RiskAnalyzer.HistorySize != 0 {
		t.Fatalf("zero values: %+v %v", a.RiskAnalyzer, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"risk_analyzer extra {\n}", "wrong argument count"},
		{"risk_analyzer {\n success_status\n }", "wrong argument count"},
		{"risk_analyzer {\n success_status zero\n }", `"zero" is not an integer`},
		{"risk_analyzer {\n success_status 1 1\n }", "1 listed twice"},
		{"risk_analyzer {\n pending_status 0\n }", "both a success and a pending"},
		{"risk_analyzer {\n success_status 3\n pending_status 3\n }", "both a success and a pending"},
		{"risk_analyzer {\n device_trust soon\n }", `bad duration "soon"`},
		{"risk_analyzer {\n device_trust -1h\n }", "must not be negative"},
		{"risk_analyzer {\n history_size -2\n }", `"-2" is not a non-negative integer`},
		{"risk_analyzer {\n history_size 1 2\n }", "wrong argument count"},
		{"risk_analyzer {\n history_size 1\n history_size 2\n }", "history_size given twice"},
		{"risk_analyzer {\n colour blue\n }", `unrecognized risk_analyzer option "colour"`},
	} {
		_, err := parseApp("authsession {\n" + tc.in + "\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestIntegrationRiskAnalyzerSeed sends the source document's two curl
// requests byte for byte and expects its sample answers.
func TestIntegrationRiskAnalyzerSeed(t *testing.T) {
	_, base := gated(t, "")
	const id = "96eb744b-b84e-4c13-8b78-06b64ad81d94"
	ra := base + "/risk-analyzer/session/v1"
	code, _, body := call(t, "POST", ra, apiAuth(),
		`{"requestId":"`+id+`","user":{"loginName":"riskuser","groupName":"Default"}}`)
	if code == http.StatusBadRequest && strings.Contains(body, "exists already") {
		// the pooled memory store outlives one test: the seed id may be there
	} else if code != http.StatusOK || !strings.Contains(body, `"userData":{"loginName":"riskuser","groupName":"Default","userId":"riskuser"}`) {
		t.Fatalf("create: %d %s", code, body)
	}

	hdr := apiAuth()
	code, h, body := call(t, "PUT", ra+"/updatesessionsecurely", hdr, `{
        "requestId":"96eb744b-b84e-4c13-8b78-06b64ad81d94",
        "authenticationStatus": "999",
        "registerDevice": "true",
        "clientApplication": "OAA Update",
        "clientType": "0",
        "clientVersion": "12.2.1.4.2",
        "analyzePatterns": "true"
}`)
	want := `{"responseCode":"0","responseMessage":"","status":true,"sessionId":"` + id + `"}`
	if code != http.StatusOK || body != want || h.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON seed: %d %q\n%s\nwant %s", code, h.Get("Content-Type"), body, want)
	}

	hdr["Content-Type"] = "application/xml"
	hdr["Accept"] = "application/xml"
	code, h, body = call(t, "PUT", ra+"/updatesessionsecurely", hdr, ` <?xml version="1.0" encoding="UTF-8" ?> <SessionData> <requestId>96eb744b-b84e-4c13-8b78-06b64ad81d94</requestId> <authenticationStatus>999</authenticationStatus> <registerDevice>true</registerDevice> <clientApplication>OAA Update</clientApplication> <clientType>0</clientType> <clientVersion>12.2.1.4.2</clientVersion> <analyzePatterns>true</analyzePatterns> </SessionData> `)
	// The sample answer, elements and values: whitespace between elements
	// is the only difference (the sample was pretty-printed).
	var got struct {
		XMLName         xml.Name   `xml:"StatusResponse"`
		ResponseCode    *string    `xml:"responseCode"`
		ResponseMessage *string    `xml:"responseMessage"`
		Status          string     `xml:"status"`
		SessionID       string     `xml:"sessionId"`
		Extra           []xml.Name `xml:",any"`
	}
	if code != http.StatusOK || !strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><StatusResponse>`) ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/xml") {
		t.Fatalf("XML seed: %d %q %s", code, h.Get("Content-Type"), body)
	}
	if err := xml.Unmarshal([]byte(body), &got); err != nil || got.ResponseCode == nil || *got.ResponseCode != "0" ||
		got.ResponseMessage == nil || *got.ResponseMessage != "" || got.Status != "true" || got.SessionID != id || len(got.Extra) != 0 {
		t.Fatalf("XML seed answer %s (%v)", body, err)
	}

	// 999 is not a success status: the gate refuses the session.
	if code, _, _ := call(t, "GET", base+"/", map[string]string{"Cookie": "authsession=" + id}, ""); code != http.StatusUnauthorized {
		t.Fatalf("gate after a failed login report: %d", code)
	}
	// A success report lets it through.
	hdr = apiAuth()
	code, _, body = call(t, "PUT", ra+"/"+id, hdr, `{"authenticationStatus":0,"clientType":0}`)
	if code != http.StatusOK {
		t.Fatalf("success report: %d %s", code, body)
	}
	code, _, body = call(t, "GET", base+"/", map[string]string{"Cookie": "authsession=" + id}, "")
	if code != http.StatusOK || decode(t, body)["user"] != "riskuser" {
		t.Fatalf("gate after a success report: %d %s", code, body)
	}
}
