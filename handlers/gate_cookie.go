package handlers

import (
	"net/http"
	"net/textproto"
	"strings"
)

// cookieValue returns the value of the first valid cookie called name in
// h's Cookie lines, as (*http.Request).Cookie(name) does, without
// allocating: the gate runs it on every request. Like net/http it trims
// blanks, strips one pair of double quotes and skips values with bytes not
// allowed in a cookie value. Unlike net/http it sets no limit on the number
// of cookies, which only guards net/http's allocations; the header size
// limit bounds the work.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			n, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(n) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
