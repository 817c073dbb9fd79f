package caddymodule

import (
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
