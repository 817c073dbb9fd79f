package handlers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLooseBool(t *testing.T) {
	for in, want := range map[string]bool{`true`: true, `false`: false, `"true"`: true, `"false"`: false, `" true "`: true} {
		var v struct{ B LooseBool }
		if err := json.Unmarshal([]byte(`{"B":`+in+`}`), &v); err != nil || bool(v.B) != want {
			t.Errorf("%s → %v, %v", in, v.B, err)
		}
	}
	for _, in := range []string{`1`, `0`, `"yes"`, `"True"`, `""`, `{}`, `[]`, `"\u0074rue`} {
		var v struct{ B LooseBool }
		err := DecodeJSON([]byte(`{"B":`+in+`}`), &v)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a FieldError", in, err)
			continue
		}
		if in != `"\u0074rue` && (fe.Field != "B" || !strings.Contains(fe.Msg, "boolean")) {
			t.Errorf("%s: %+v", in, fe)
		}
	}
	b, _ := json.Marshal(struct{ B LooseBool }{true})
	if string(b) != `{"B":true}` {
		t.Errorf("LooseBool encodes as %s", b)
	}
}

func TestLooseInt(t *testing.T) {
	for in, want := range map[string]int{`5`: 5, `"999"`: 999, `-3`: -3, `"0"`: 0} {
		var v struct{ N LooseInt }
		if err := json.Unmarshal([]byte(`{"N":`+in+`}`), &v); err != nil || int(v.N) != want {
			t.Errorf("%s → %v, %v", in, v.N, err)
		}
	}
	for _, in := range []string{`1.5`, `"1.5"`, `"ten"`, `true`, `99999999999`, `""`, `null0`} {
		var v struct{ N LooseInt }
		err := DecodeJSON([]byte(`{"N":`+in+`}`), &v)
		if _, ok := errors.AsType[*FieldError](err); !ok {
			t.Errorf("%s: error %v, want a FieldError", in, err)
		}
	}
	b, _ := json.Marshal(struct{ N LooseInt }{7})
	if string(b) != `{"N":7}` {
		t.Errorf("LooseInt encodes as %s", b)
	}
}

func TestDecodeJSONNeverEchoesValues(t *testing.T) {
	const secret = "s3cr3t-value-xyz"
	for _, body := range []string{
		`{"userId":["` + secret + `"]}`,
		`{"isImpersonating":"` + secret + `"}`,
		`{"userId":"` + secret + `",}`,
		`{"` + secret + `"}`,
	} {
		var v oamSessionData
		err := DecodeJSON([]byte(body), &v)
		if err == nil {
			t.Errorf("%s accepted", body)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q echoes a value", err)
		}
	}
}

func TestTimestamp(t *testing.T) {
	if got := Timestamp(time.Time{}); got != "" {
		t.Errorf("zero time → %q", got)
	}
	loc := time.FixedZone("x", 3600)
	if got := Timestamp(time.Date(2026, 11, 22, 11, 0, 0, 500, loc)); got != "2026-11-22T10:00:00Z" {
		t.Errorf("Timestamp = %q", got)
	}
}
