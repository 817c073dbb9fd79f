package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"strings"
	"testing"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

func TestOTPTOTPEnroll(t *testing.T) {
	f := newOTPFixture(t, true)
	w := f.do(t, "POST", "/user/totp/enroll", `{"userId":"alice"}`)
	if w.Code != 201 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var a totpEnrollAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if a.Secret == totpSecret || !strings.HasPrefix(a.URI, "otpauth://totp/") || !strings.Contains(a.URI, a.Secret) {
		t.Fatalf("answer %+v", a)
	}
	raw, err := base64.StdEncoding.DecodeString(a.QRPNG)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	// The new secret verifies a session of alice; the old one no longer does.
	answerOf(t, f.do(t, "PUT", "/sessions/"+seedID, `{"userId":"alice-id","passedLoginOTP":false}`), 200)
	old, _ := totp.GenerateCodeCustom(totpSecret, f.clock(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix})
	jsonAPI(t, f.do(t, "POST", "/user/otp/verify", `{"otp":"`+old+`","types":["totp"],"sessionId":"`+seedID+`"}`), 404, "invalid-otp")
	code, _ := totp.GenerateCodeCustom(a.Secret, f.clock(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix})
	if w := f.do(t, "POST", "/user/otp/verify", `{"otp":"`+code+`","types":["totp"],"sessionId":"`+seedID+`"}`); w.Code != 204 {
		t.Fatalf("verify with the enrolled secret: %d %s", w.Code, w.Body)
	}
	jsonAPI(t, f.do(t, "POST", "/user/totp/enroll", `{"userId":"nobody"}`), 404, "user-not-found")
	jsonAPI(t, f.do(t, "POST", "/user/totp/enroll", `{}`), 400, "bad-request")
	jsonAPI(t, f.do(t, "POST", "/user/totp/enroll", `{"userId":"alice"}`, "Authorization", ""), 401, "unauthorized")
	if f.logs.FilterMessage("totp enrolled").Len() != 1 {
		t.Fatal("enrolment not logged")
	}
	for _, e := range f.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(line), a.Secret) || strings.Contains(e.Message, a.Secret) {
			t.Fatalf("secret logged: %s", line)
		}
	}
}

// FuzzOTPBodies feeds arbitrary bodies to every endpoint of the family: no
// panic, and every answer is either a success or a JSON:API error.
func FuzzOTPBodies(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u","passedLoginOTP":true}`, `{"userId":"u","passedLoginOTP":"false"}`,
		`{"otp":"123456","types":["login","totp"],"sessionId":"` + seedID + `"}`,
		`{"sessionId":"` + seedID + `"}`, `{"userId":1}`, `[]`, `{"types":[1]}`, `null`, ``, `{"otp":"1"}{}`,
	} {
		f.Add(s)
	}
	for _, s := range hostileVariants(`{"userId":"u","passedLoginOTP":true}`, `{"otp":"123456","types":["login","totp"],"sessionId":"`+seedID+`"}`) {
		f.Add(s)
	}
	fx := newOTPFixture(f, false)
	f.Fuzz(func(t *testing.T, body string) {
		for _, ep := range []struct{ m, p string }{
			{"PUT", "/sessions/" + seedID},
			{"POST", "/user/otp/verify"},
			{"POST", "/user/otp"},
			{"POST", "/user/totp/enroll"},
		} {
			w := fx.do(t, ep.m, ep.p, body)
			if w.Code >= 400 && w.Header().Get("Content-Type") != JSONAPIContentType {
				t.Fatalf("%s %s %q: %d with %q", ep.m, ep.p, body, w.Code, w.Header().Get("Content-Type"))
			}
		}
	})
}
