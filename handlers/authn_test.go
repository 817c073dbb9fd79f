package handlers

import (
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

func TestAuthnPostListsFactorsWithMaskedPrompts(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("alice")
	if a.Status.Status != "pending verification" || a.Status.Code != "0" || a.CorrelationID == "" || a.Nonce == "" {
		t.Fatalf("answer %+v", a)
	}
	got := map[string]string{}
	for _, ci := range a.InitContext.ChallengeInfo {
		v := ""
		if len(ci.FactorContext.Prompts) > 0 {
			v = ci.FactorContext.Prompts[0].Value
		}
		got[ci.Factor] = v
	}
	want := map[string]string{
		"ChallengeEmail": "a***@example.com", "ChallengeSMS": "***-***-1234",
		"ChallengeOMATOTP": "code of your authenticator app", "ChallengeFIDO2": "security key",
	}
	if len(got) != len(want) {
		t.Fatalf("factors %v, want %v (ChallengeYOTP is not configured)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("prompt of %s = %q, want %q", k, got[k], v)
		}
	}
	s := f.session(a.SessionID)
	if s.UserID != "alice" || s.GroupName != "Staff" || s.Status != state.StatusPendingVerification {
		t.Fatalf("session %+v", s)
	}
	if strings.Contains(s.Challenge.CorrelationID, a.CorrelationID) {
		t.Fatal("the record holds the correlationId in the clear")
	}
}

func TestAuthnPostStatuses(t *testing.T) {
	f := newAuthnFixture(t)
	if a := f.start("bob"); a.Status.Status != "missing registration" || len(a.InitContext.ChallengeInfo) != 0 {
		t.Fatalf("bob (only ChallengeYOTP): %+v", a)
	}
	if a := f.start("nobody@example.com"); a.Status.Status != "missing registration" {
		t.Fatalf("unknown user, not accepted: %+v", a)
	}
	if a := f.start(""); a.Status.Status != "pending identification" {
		t.Fatalf("no user: %+v", a)
	}
	f.a.AcceptUnknownUsers = true
	f.a.DefaultFactors = []string{state.FactorEmail, state.FactorTOTP}
	a := f.start("carol@example.com")
	if a.Status.Status != "pending verification" || len(a.InitContext.ChallengeInfo) != 1 ||
		a.InitContext.ChallengeInfo[0].FactorContext.Prompts[0].Value != "c***@example.com" {
		t.Fatalf("unknown user, accepted: %+v", a)
	}
	// Attach to an existing session of the same user.
	b := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"sessionId":"`+a.SessionID+`"}`)
	if b.Code != 200 || readAuthn(t, b).SessionID != a.SessionID {
		t.Fatalf("attach: %d %s", b.Code, b.Body)
	}
	// Not to a session of another user.
	c := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},
		"sessionId":"`+a.SessionID+`","userInfo":{"userId":"alice"}}`)
	if c.Code != 400 {
		t.Fatalf("attach to another user's session: %d %s", c.Code, c.Body)
	}
}

func TestAuthnPostCredentials(t *testing.T) {
	f := newAuthnFixture(t)
	good := `{"clientInfo":{"clientId":"` + authnClientID + `","clientSecret":"` + authnClientSecret + `"}}`
	cases := []struct {
		name, body string
		basic      bool
		status     int
	}{
		{"no basic auth", good, false, 401},
		{"wrong secret", `{"clientInfo":{"clientId":"` + authnClientID + `","clientSecret":"nope"}}`, true, 401},
		{"unknown client", `{"clientInfo":{"clientId":"other","clientSecret":"` + authnClientSecret + `"}}`, true, 401},
		{"no clientInfo", `{"userInfo":{"userId":"alice"}}`, true, 400},
		{"malformed", `{"clientInfo":`, true, 400},
		{"ttl too long", `{"clientInfo":{"clientId":"` + authnClientID + `","clientSecret":"` + authnClientSecret + `"},"timeToLiveInSec":99999}`, true, 400},
		{"bad session id", `{"clientInfo":{"clientId":"` + authnClientID + `","clientSecret":"` + authnClientSecret + `"},"sessionId":"short"}`, true, 400},
		{"too large", `{"clientInfo":{"clientId":"` + strings.Repeat("x", MaxBody) + `"}}`, true, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", authnPathOAA, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			if c.basic {
				req.SetBasicAuth(apiUser, apiPass)
			}
			w := httptest.NewRecorder()
			f.mux.ServeHTTP(w, req)
			a := readAuthn(t, w)
			if w.Code != c.status || a.Status.Code == "0" || a.Status.Message == "" || a.Status.Status != "error" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if c.status == 401 && c.name == "no basic auth" && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n := f.store.Len(); n != 0 {
		t.Fatalf("refused calls created %d sessions", n)
	}
}

func TestAuthnEmailAndSMSFlows(t *testing.T) {
	for _, factor := range []string{state.FactorEmail, state.FactorSMS} {
		t.Run(factor, func(t *testing.T) {
			f := newAuthnFixture(t)
			a := f.start("alice")
			st, b := f.put(initReq(a.CorrelationID, "", factor)) // Init needs no nonce
			if st != 200 || b.Status.Status != "pending verification" || b.Nonce == a.Nonce {
				t.Fatalf("Init: %d %+v", st, b)
			}
			m := f.lastCode()
			if factor == state.FactorEmail && (m.Channel != delivery.ChannelEmail || m.To != "alice@example.com") ||
				factor == state.FactorSMS && (m.Channel != delivery.ChannelSMS || m.To != "+1 555 555 1234") {
				t.Fatalf("message %+v", m)
			}
			st, c := f.put(validateReq(a.CorrelationID, b.Nonce, m.Code))
			if st != 200 || c.Status.Status != "authenticated" {
				t.Fatalf("Validate: %d %+v", st, c)
			}
			s := f.session(a.SessionID)
			if !s.Authenticated(f.clk.Now()) || s.Factors[0] != factor {
				t.Fatalf("session %+v", s)
			}
			// Finalize closes the correlationId.
			if st, _ := f.put(finalizeReq(a.CorrelationID, c.Nonce, "Success", "")); st != 200 {
				t.Fatalf("Finalize: %d", st)
			}
			if st, _ := f.put(initReq(a.CorrelationID, "", state.FactorTOTP)); st != 400 {
				t.Fatalf("PUT after Finalize: %d", st)
			}
		})
	}
}

func TestAuthnTOTPFlowAndReplay(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("alice")
	_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorTOTP))
	code := f.totpCode()
	st, c := f.put(validateReq(a.CorrelationID, b.Nonce, code))
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("Validate: %d %+v", st, c)
	}
	// The same code on a new challenge is a replay: wrong.
	a2 := f.start("alice")
	_, b2 := f.put(initReq(a2.CorrelationID, a2.Nonce, state.FactorTOTP))
	st, c2 := f.put(validateReq(a2.CorrelationID, b2.Nonce, code))
	if st != 200 || c2.Status.Status != "pending verification" || c2.Status.Message != "wrong_answer" {
		t.Fatalf("replayed code: %d %+v", st, c2)
	}
	// The next step's code passes; sent as a JSON number (loose scalar).
	f.clk.Advance(30 * time.Second)
	next := f.totpCode()
	w := f.do("PUT", `{"ChallengeOp":"validate","CORRELATIONID":"`+a2.CorrelationID+`","nonce":"`+c2.Nonce+
		`","challengeAnswer":`+strings.TrimLeft(next, "0")+`}`)
	if next[0] == '0' {
		w = f.do("PUT", `{"ChallengeOp":"validate","CORRELATIONID":"`+a2.CorrelationID+`","nonce":"`+c2.Nonce+
			`","challengeAnswer":"`+next+`"}`)
	}
	if ans := readAuthn(t, w); w.Code != 200 || ans.Status.Status != "authenticated" {
		t.Fatalf("next code: %d %s", w.Code, w.Body)
	}
}

func TestAuthnFailurePaths(t *testing.T) {
	f := newAuthnFixture(t)
	f.a.OTP.MaxAttempts = 20 // this test counts refusals without reaching the block
	a := f.start("alice")
	_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
	code := f.lastCode().Code

	expectRefusal := func(name string, req map[string]any, wantCode string) {
		t.Helper()
		st, ans := f.put(req)
		if st != 400 || ans.Status.Code != wantCode || ans.Status.Status != "error" {
			t.Fatalf("%s: %d %+v, want 400 code %s", name, st, ans.Status, wantCode)
		}
	}
	expectRefusal("nonce from an older step", validateReq(a.CorrelationID, a.Nonce, code), authnCodeNonce)
	expectRefusal("missing nonce", map[string]any{
		"challengeop": "Validate", "correlationId": a.CorrelationID,
		"challengeAnswer": code,
	}, authnCodeNonce)
	expectRefusal("unknown op", map[string]any{
		"challengeop": "Restart", "correlationId": a.CorrelationID,
		"nonce": b.Nonce,
	}, authnCodeBadRequest)
	expectRefusal("unknown factor", initReq(a.CorrelationID, b.Nonce, "ChallengeCarrierPigeon"), authnCodeUnknownFac)
	expectRefusal("yotp not configured", initReq(a.CorrelationID, b.Nonce, state.FactorYOTP), authnCodeUnavailable)
	expectRefusal("bad result", finalizeReq(a.CorrelationID, b.Nonce, "Maybe", ""), authnCodeBadRequest)
	expectRefusal("failure without reason", finalizeReq(a.CorrelationID, b.Nonce, "Failure", ""), authnCodeBadRequest)
	if n := f.session(a.SessionID).Challenge.Attempts; n != 7 {
		t.Fatalf("attempts after 7 refusals: %d", n)
	}
	// Unknown correlationIds: malformed, and well-formed for no session.
	expectRefusal("malformed correlationId", validateReq("nope", b.Nonce, code), authnCodeUnknownCID)
	other := f.start("alice")
	forged := other.CorrelationID[:len(other.CorrelationID)-4] + "AAAA"
	expectRefusal("forged correlationId", validateReq(forged, other.Nonce, code), authnCodeUnknownCID)

	// The right code still passes (the nonce of a refused request was not used).
	st, c := f.put(validateReq(a.CorrelationID, b.Nonce, code))
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("right code: %d %+v", st, c)
	}
	// Replay of the nonce just used.
	expectRefusal("nonce replay", validateReq(a.CorrelationID, b.Nonce, code), authnCodeNonce)
}

func TestAuthnBlockAfterMaxAttempts(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("alice")
	_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
	code, n := f.lastCode().Code, b.Nonce
	for i := 1; i < f.a.OTP.MaxAttempts; i++ {
		st, c := f.put(validateReq(a.CorrelationID, n, wrongOf(code)))
		if st != 200 || c.Status.Status != "pending verification" || c.Status.Message != "wrong_answer" {
			t.Fatalf("wrong answer %d: %d %+v", i, st, c)
		}
		n = c.Nonce
	}
	st, c := f.put(validateReq(a.CorrelationID, n, wrongOf(code)))
	if st != 400 || c.Status.Status != "challenge blocked" || c.Status.Message != "too_many_attempts" {
		t.Fatalf("last wrong answer: %d %+v", st, c)
	}
	// Blocked: even the right code is refused; a new challenge too.
	if st, c := f.put(validateReq(a.CorrelationID, n, code)); st != 400 || c.Status.Status != "challenge blocked" {
		t.Fatalf("right code while blocked: %d %+v", st, c)
	}
	w := f.do("POST", `{"clientInfo":{"clientId":"`+authnClientID+`","clientSecret":"`+authnClientSecret+`"},"sessionId":"`+a.SessionID+`"}`)
	if w.Code != 400 || readAuthn(t, w).Status.Status != "challenge blocked" {
		t.Fatalf("POST on a blocked session: %d %s", w.Code, w.Body)
	}
}

func TestAuthnFinalizeReasons(t *testing.T) {
	for _, reason := range authnReasons {
		t.Run(reason, func(t *testing.T) {
			f := newAuthnFixture(t)
			a := f.start("alice")
			_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorFIDO2))
			st, c := f.put(finalizeReq(a.CorrelationID, b.Nonce, "Failure", reason))
			if st != 200 || c.Status.Status != "failed" || c.Status.Message != reason {
				t.Fatalf("%d %+v", st, c)
			}
			if s := f.session(a.SessionID); s.Status != state.StatusFailed || s.StatusReason != reason {
				t.Fatalf("session %s %q", s.Status, s.StatusReason)
			}
		})
	}
}

func TestAuthnFIDO2IsNotPassive(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("alice")
	_, b := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorFIDO2))
	if st, c := f.put(validateReq(a.CorrelationID, b.Nonce, "anything")); st != 400 || c.Status.Code != authnCodeNotPassive {
		t.Fatalf("Validate FIDO2: %d %+v", st, c)
	}
	st, c := f.put(finalizeReq(a.CorrelationID, b.Nonce, "Success", ""))
	if st != 200 || c.Status.Status != "authenticated" {
		t.Fatalf("Finalize Success: %d %+v", st, c)
	}
}

func TestAuthnMissingRegistration(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("bob")
	for _, factor := range []string{state.FactorYOTP, state.FactorEmail} {
		if st, c := f.put(initReq(a.CorrelationID, a.Nonce, factor)); st != 400 || c.Status.Code != authnCodeUnavailable ||
			!strings.Contains(c.Status.Message, "unavailable_for_user") {
			t.Fatalf("Init %s: %d %+v", factor, st, c)
		}
	}
	if s := f.session(a.SessionID); s.Status != state.StatusMissingRegistration {
		t.Fatalf("status %s", s.Status)
	}
}

func TestAuthnIdentifyAtInit(t *testing.T) {
	f := newAuthnFixture(t)
	a := f.start("")
	if st, _ := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorTOTP)); st != 400 {
		t.Fatalf("Init without a user: %d", st)
	}
	req := initReq(a.CorrelationID, a.Nonce, state.FactorTOTP)
	req["challengedata"].(map[string]any)["userId"] = "alice"
	st, b := f.put(req)
	if st != 200 || b.Status.Status != "pending verification" || f.session(a.SessionID).UserID != "alice" {
		t.Fatalf("Init naming alice: %d %+v", st, b)
	}
}

func TestAuthnDeliveryFailureKeepsNonce(t *testing.T) {
	f := newAuthnFixture(t)
	f.deliverOK = false
	a := f.start("alice")
	st, c := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorEmail))
	if st != 502 || !strings.HasPrefix(c.Status.Message, "channel_comm_error") {
		t.Fatalf("Init: %d %+v", st, c)
	}
	if st, _ := f.put(initReq(a.CorrelationID, a.Nonce, state.FactorTOTP)); st != 200 {
		t.Fatalf("the nonce should still be good after a failed delivery: %d", st)
	}
}

func TestAuthnXML(t *testing.T) {
	f := newAuthnFixture(t)
	body := `<?xml version="1.0"?><authnrequest><ClientInfo><CLIENTID>` + authnClientID + `</CLIENTID>
		<clientSecret>` + authnClientSecret + `</clientSecret></ClientInfo><userinfo><UserId>alice</UserId>
		<groups>Default</groups></userinfo><timeToLiveInSec> 60 </timeToLiveInSec></authnrequest>`
	w := f.do("POST", body, "Content-Type", "application/xml", "Accept", "application/xml")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/xml" {
		t.Fatalf("POST XML: %d %s", w.Code, w.Body)
	}
	var ans struct {
		XMLName xml.Name `xml:"UpdateAuthnResponse"`
		Status  struct {
			Code   string `xml:"code"`
			Status string `xml:"status"`
		} `xml:"status"`
		CorrelationID string `xml:"correlationId"`
		Nonce         string `xml:"nonce"`
		InitContext   struct {
			ChallengeInfo []struct {
				Factor string `xml:"factor"`
			} `xml:"challengeInfo"`
		} `xml:"initContext"`
	}
	if err := xml.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Status.Status != "pending verification" ||
		len(ans.InitContext.ChallengeInfo) != 4 {
		t.Fatalf("XML answer %v %+v: %s", err, ans, w.Body)
	}
	put := `<UpdateAuthnRequest><ChallengeOp>Init</ChallengeOp><correlationid>` + ans.CorrelationID +
		`</correlationid><NONCE>` + ans.Nonce + `</NONCE><challengeData><Factor>ChallengeEmail</Factor></challengeData></UpdateAuthnRequest>`
	w = f.do("PUT", put, "Content-Type", "text/xml", "Accept", "text/xml")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "<UpdateAuthnResponse>") {
		t.Fatalf("PUT XML: %d %s", w.Code, w.Body)
	}
	// Errors in XML, under the AuthnAPIResponse root; a JSON answer on request.
	w = f.do("PUT", `<UpdateAuthnRequest><challengeop>Validate</challengeop></UpdateAuthnRequest>`, "Content-Type", "application/xml", "Accept", "application/xml")
	if w.Code != 400 || !strings.Contains(w.Body.String(), "<AuthnAPIResponse><status><code>1003</code>") {
		t.Fatalf("XML error: %d %s", w.Code, w.Body)
	}
	w = f.do("PUT", `<Wrong/>`, "Content-Type", "application/xml", "Accept", "application/json")
	if w.Code != 400 || readAuthn(t, w).Status.Code != authnCodeBadRequest {
		t.Fatalf("wrong root: %d %s", w.Code, w.Body)
	}
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	w = f.do("PUT", `<UpdateAuthnRequest>`+deep+`</UpdateAuthnRequest>`, "Content-Type", "application/xml")
	if w.Code != 400 || !strings.Contains(w.Body.String(), "deeply") {
		t.Fatalf("deep XML: %d %s", w.Code, w.Body)
	}
}
