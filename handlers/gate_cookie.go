package handlers

import (
	"encoding/binary"
	"math/bits"
	"net/http"
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
		if sc := scanCookieLine(line, name); sc.valid {
			return sc.value, true
		}
	}
	return "", false
}

// withoutCookie returns the Cookie header line without the cookies named
// name, and whether it had any. When the cookies that stay are side by
// side (the session cookie first or last, or alone) the result is a part
// of line and costs no allocation; only a session cookie between two
// others makes a new string.
func withoutCookie(line, name string) (string, bool) {
	sc := scanCookieLine(line, name)
	return sc.without(name)
}

// cookieLine is what one pass over a Cookie header line found: the first
// valid value of the session cookie, and where the other cookies lie.
type cookieLine struct {
	lines       []string // the request's Cookie lines, when line is the only one
	line        string
	value       string
	valid       bool // value is the session cookie's first valid value
	found       bool // the line has the session cookie, valid or not
	first, last int  // byte span of the cookies that stay (first < 0: none)
	gap         bool // a session cookie lies between two that stay
}

// scanCookieLine reads line once for both cookieValue and withoutCookie,
// so that the gate's hit path scans the Cookie header a single time.
func scanCookieLine(line, name string) cookieLine {
	var sc cookieLine
	sc.scan(line, name)
	return sc
}

// scan fills sc with what line holds (scanCookieLine), in place: the gate
// keeps sc on its stack, and a cookieLine is a dozen words to copy.
func (sc *cookieLine) scan(line, name string) {
	*sc = cookieLine{line: line, first: -1, last: -1}
	if !sc.scanOne(name) {
		sc.scanParts(name)
	}
}

// scanParts is scan cookie by cookie, on a freshly reset sc.
func (sc *cookieLine) scanParts(name string) {
	line := sc.line
	removedSince := false
	for off := 0; off < len(line); {
		start := off
		end := off + strings.IndexByte(line[off:], ';')
		if end < off {
			end = len(line)
		}
		off = end + 1
		part := line[start:end]
		if v, ok := cookieOf(part, name); ok {
			sc.found, removedSince = true, true
			if !sc.valid {
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if validCookieValue(v) {
					sc.value, sc.valid = v, true
				}
			}
			continue
		}
		if !blankOnly(part) {
			if sc.first < 0 {
				sc.first = start
			} else if removedSince {
				sc.gap = true
			}
			sc.last, removedSince = end, false
		}
	}
}

// scanOne is scan's fast path for the line of almost every request: one
// cookie called name, with a value, and name nowhere after it. It looks for
// name at the start of each cookie only, and reads the value and what lies
// around it from where it found it, instead of trimming and testing every
// cookie. It reports false, having set nothing, for any other
// line (the name alone, or found again further on), which scan then reads
// cookie by cookie; both ways give the same cookieLine (FuzzCookieValue).
func (sc *cookieLine) scanOne(name string) bool {
	line := sc.line
	if name == "" {
		return false
	}
	var start, i int // the cookie's part, and its '='
	for start = 0; ; {
		at := start
		for at < len(line) && isBlank(line[at]) {
			at++
		}
		// The first byte first: a call to compare the rest costs more
		// than the test, and most cookies differ at once.
		if at < len(line) && line[at] == name[0] && strings.HasPrefix(line[at:], name) {
			i = at + len(name)
			for i < len(line) && isBlank(line[i]) {
				i++
			}
			if i < len(line) && line[i] == '=' {
				break
			}
			if i == len(line) || line[i] == ';' {
				return false // the name alone: a session cookie without a value
			}
		}
		j := strings.IndexByte(line[at:], ';')
		if j < 0 {
			return true // no session cookie
		}
		start = at + j + 1
	}
	// The value runs to the next ';'. In one pass over the bytes that
	// follow the '=', find the first not allowed in a value: where it is
	// that ';' (or there is none), the value is valid without further
	// ado, as ';' is not allowed either. Otherwise (quotes, a blank other
	// than ' ' to trim, a bad byte) cut and check it as scanParts does.
	rest := line[i+1:]
	n := validPrefix(rest)
	end := i + 1 + n
	valid := n == len(rest) || rest[n] == ';'
	if !valid {
		end = len(line)
		if j := strings.IndexByte(rest, ';'); j >= 0 {
			end = i + 1 + j
		}
	}
	if end < len(line) && strings.Contains(line[end:], name) {
		return false // maybe another session cookie
	}
	v := line[i+1 : end]
	for len(v) > 0 && isBlank(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	if !valid {
		if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		valid = validCookieValue(v)
	}
	sc.found = true
	if valid {
		sc.value, sc.valid = v, true
	}
	// The cookies that stay lie before and after this one. Trimmed of the
	// blanks and ';' of empty parts, a side holds exactly what scan's
	// first and last bound, give or take blanks that without trims.
	bFirst, bLast := keptSpan(line, 0, start)
	aFirst, aLast := keptSpan(line, min(end+1, len(line)), len(line))
	switch {
	case bFirst >= 0 && aFirst >= 0:
		sc.first, sc.last, sc.gap = bFirst, aLast, true
	case bFirst >= 0:
		sc.first, sc.last = bFirst, bLast
	case aFirst >= 0:
		sc.first, sc.last = aFirst, aLast
	}
	return true
}

// keptSpan returns the span of line[from:to] without its leading and
// trailing blanks and ';', or -1, -1 when nothing else is there.
func keptSpan(line string, from, to int) (int, int) {
	for from < to && (isBlank(line[from]) || line[from] == ';') {
		from++
	}
	for to > from && (isBlank(line[to-1]) || line[to-1] == ';') {
		to--
	}
	if from == to {
		return -1, -1
	}
	return from, to
}

// without returns the line without the session cookie, and whether it had
// one.
func (sc *cookieLine) without(name string) (string, bool) {
	switch {
	case !sc.found:
		return sc.line, false
	case sc.first < 0:
		return "", true
	case !sc.gap:
		return strings.TrimSpace(sc.line[sc.first:sc.last]), true
	}
	var b strings.Builder
	b.Grow(len(sc.line))
	for off := 0; off < len(sc.line); {
		part := nextCookie(sc.line, &off)
		if _, ok := cookieOf(part, name); ok || blankOnly(part) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimSpace(part))
	}
	return b.String(), true
}

func blankOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBlank(s[i]) {
			return false
		}
	}
	return true
}

// nextCookie returns the part of line from *off to the next ';' (or the
// end) and moves *off past that ';'.
func nextCookie(line string, off *int) string {
	i := *off
	end := strings.IndexByte(line[i:], ';')
	if end < 0 {
		*off = len(line)
		return line[i:]
	}
	*off = i + end + 1
	return line[i : i+end]
}

// cookieOf reports whether the Cookie header part is a cookie called name
// and returns its value: as net/http reads a part, blanks around the part
// and the name are trimmed, the value keeps a leading blank, and a part
// without '=' is a cookie with an empty value.
func cookieOf(part, name string) (string, bool) {
	i := 0
	for i < len(part) && isBlank(part[i]) {
		i++
	}
	if len(part)-i < len(name) || part[i:i+len(name)] != name {
		return "", false
	}
	i += len(name)
	for i < len(part) && isBlank(part[i]) {
		i++
	}
	if i == len(part) {
		return "", true
	}
	if part[i] != '=' {
		return "", false
	}
	v := part[i+1:]
	e := len(v)
	for e > 0 && isBlank(v[e-1]) {
		e--
	}
	return v[:e], true
}

// isBlank is textproto's notion of ASCII space, which net/http trims.
func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// cookieOctets are the bytes net/http accepts in a cookie value.
var cookieOctets = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = b != '"' && b != ';' && b != '\\'
	}
	return t
}()

// validCookieValue reports whether every byte of v is one net/http accepts
// in a cookie value (cookieOctets).
func validCookieValue(v string) bool { return validPrefix(v) == len(v) }

// validPrefix returns the length of the longest prefix of v made of bytes
// that net/http accepts in a cookie value (cookieOctets). It tests eight
// bytes at a time, as the gate runs it on every request's session id.
func validPrefix(v string) int {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		if bad := badCookieBytes(binary.LittleEndian.Uint64([]byte(v[i : i+8]))); bad != 0 {
			return i + bits.TrailingZeros64(bad)/8
		}
	}
	if i == len(v) {
		return i
	}
	if i >= 8 {
		// The last eight bytes, the first of which are known good:
		// the lowest mark is at or after i, and exact.
		if bad := badCookieBytes(binary.LittleEndian.Uint64([]byte(v[len(v)-8:]))); bad != 0 {
			return len(v) - 8 + bits.TrailingZeros64(bad)/8
		}
		return len(v)
	}
	for i < len(v) && cookieOctets[v[i]] {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// badCookieBytes returns w's bytes (w read little-endian, so the first
// byte is the lowest) with the high bit of the first byte not allowed in
// a cookie value set: at or above 0x80 or 0x7f, below 0x20, or one of '"',
// ';', '\\'; 0 when all eight are allowed. Bytes above the first bad one
// may be marked wrongly (a borrow or a carry runs up from it); the lowest
// mark is exact.
func badCookieBytes(w uint64) uint64 {
	// b+1 sets the high bit for b = 0x7f (and carries only from a byte
	// at 0xff, itself bad), b-0x20 borrows for b < 0x20 (and ^b masks the
	// bytes at or above 0xa0), and a byte equal to c is a zero byte of
	// w^(c·ones).
	q, sc, bs := w^('"'*ones), w^(';'*ones), w^('\\'*ones)
	return (w | (w + ones) | (w-0x20*ones)&^w |
		(q-ones)&^q | (sc-ones)&^sc | (bs-ones)&^bs) & highs
}
