package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// The binary encoding of a Session (AppendSession, DecodeSession) is what
// the memory store holds per session and what the file store persists. It
// is a flat byte string: nothing in it is a pointer, so a table of them
// costs the garbage collector one object per session instead of a graph.
//
//	byte 0   encoding version (sessionCodecVersion)
//	then     Key (32 bytes) and every field in declaration order: strings
//	         and byte strings as a uvarint length and the bytes, integers as
//	         varints, times as a kind byte and their value (timeAppend);
//	         optional parts (nil slices and maps, pointers, Challenge)
//	         behind a presence flag or a length+1 (0 = nil).
//
// A decoder refuses a version it does not know; a new field gets a new
// version.
const sessionCodecVersion byte = 1

// Presence flags of the encoding.
const (
	flagImpersonating = 1 << iota
	flagAuthStatus
	flagClientType
	flagChallenge
)

// AppendSession appends the binary encoding of s to dst.
func AppendSession(dst []byte, s *Session) []byte {
	b := append(dst, sessionCodecVersion)
	b = append(b, s.Key[:]...)
	b = appendBytes(b, s.SealedID)
	for _, f := range [...]string{s.Index, s.UserID, s.LoginName, s.GroupName, s.IDStoreName, s.ClientIP} {
		b = appendString(b, f)
	}
	var flags byte
	if s.IsImpersonating {
		flags |= flagImpersonating
	}
	if s.AuthenticationStatus != nil {
		flags |= flagAuthStatus
	}
	if s.ClientType != nil {
		flags |= flagClientType
	}
	if s.Challenge != nil {
		flags |= flagChallenge
	}
	b = append(b, flags)
	if s.UserAttributes == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(s.UserAttributes))+1)
		for k, v := range s.UserAttributes {
			b = appendString(appendString(b, k), v)
		}
	}
	for _, t := range [...]time.Time{s.CreateTime, s.UpdateTime, s.LastAccessTime, s.ExpiryTime} {
		b = appendTime(b, t)
	}
	b = binary.AppendVarint(b, int64(s.IdleTimeout))
	b = appendString(b, string(s.Status))
	b = appendTime(b, s.BlockedUntil)
	b = appendString(b, s.StatusReason)
	if s.AuthenticationStatus != nil {
		b = binary.AppendVarint(b, int64(*s.AuthenticationStatus))
	}
	if s.ClientType != nil {
		b = binary.AppendVarint(b, int64(*s.ClientType))
	}
	b = appendString(b, s.ClientApplication)
	b = appendString(b, s.ClientVersion)
	b = appendString(b, s.ExternalDeviceID)
	if s.Fingerprints == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(s.Fingerprints))+1)
		for _, f := range s.Fingerprints {
			b = appendString(appendString(appendString(b, f.Cookie), f.Fingerprint), f.CookieType)
		}
	}
	b = appendTime(b, s.AuthTime)
	if s.Factors == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(s.Factors))+1)
		for _, f := range s.Factors {
			b = appendString(b, f)
		}
	}
	if ch := s.Challenge; ch != nil {
		b = appendString(b, ch.CorrelationID)
		b = appendString(b, ch.Factor)
		b = appendBytes(b, ch.NonceHash)
		b = appendBytes(b, ch.AnswerHash)
		b = appendTime(b, ch.Expiry)
		b = binary.AppendVarint(b, int64(ch.Attempts))
		var cf byte
		if ch.Closed {
			cf |= 1
		}
		if ch.OTPUsed {
			cf |= 2
		}
		b = append(b, cf)
		b = appendTime(b, ch.OTPIssued)
		b = appendTime(b, ch.OTPExpiry)
	}
	return binary.AppendUvarint(b, s.Version)
}

// DecodeSession decodes a session encoded by AppendSession. Its strings
// share one copy of b, so b may be reused after.
func DecodeSession(b []byte) (*Session, error) {
	if err := checkCodecVersion(b); err != nil {
		return nil, err
	}
	var k Key
	if len(b) < 1+len(k) {
		return nil, errShort
	}
	copy(k[:], b[1:])
	return decodeFields(b, 1+len(k), k)
}

// The memory table keeps each session in its stored form: the encoding
// without its Key, which the table holds already as the session's map key
// (32 bytes a session fewer to keep).

// appendStoredForm appends the stored form of the encoding enc
// (AppendSession) to dst: its version byte, then the fields after the Key.
func appendStoredForm(dst, enc []byte) []byte {
	dst = append(dst, enc[0])
	return append(dst, enc[1+len(Key{}):]...)
}

// storedFieldsAt is where the fields after the Key begin in a stored form.
const storedFieldsAt = 1

// decodeStoredString decodes the stored form enc of the session under k.
// The decoded strings share enc's memory (strings never change), so a
// decoding costs no copy of it.
func decodeStoredString(k Key, enc string) (*Session, error) {
	b := unsafe.Slice(unsafe.StringData(enc), len(enc)) // read only
	if err := checkCodecVersion(b); err != nil {
		return nil, err
	}
	d := decoder{b: b, str: enc, off: storedFieldsAt}
	return d.fields(k)
}

func checkCodecVersion(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty session encoding")
	}
	if b[0] != sessionCodecVersion {
		return fmt.Errorf("session encoding version %d is not one this build reads (%d)", b[0], sessionCodecVersion)
	}
	return nil
}

// decodeFields decodes the fields that follow the Key in b, from off.
func decodeFields(b []byte, off int, k Key) (*Session, error) {
	d := decoder{b: b, str: string(b), off: off}
	return d.fields(k)
}

// fields decodes the fields that follow the Key, from d.off to the end.
func (d *decoder) fields(k Key) (*Session, error) {
	b := d.b
	s := &Session{Key: k}
	s.SealedID = d.bytes()
	for _, f := range [...]*string{&s.Index, &s.UserID, &s.LoginName, &s.GroupName, &s.IDStoreName, &s.ClientIP} {
		*f = d.string()
	}
	flags := d.byte()
	s.IsImpersonating = flags&flagImpersonating != 0
	if n := d.uvarint(); n > 0 && d.err == nil {
		n--
		if n > uint64(len(b)) {
			return nil, errShort
		}
		s.UserAttributes = make(map[string]string, n)
		for range n {
			k := d.string()
			s.UserAttributes[k] = d.string()
		}
	}
	for _, t := range [...]*time.Time{&s.CreateTime, &s.UpdateTime, &s.LastAccessTime, &s.ExpiryTime} {
		*t = d.time()
	}
	s.IdleTimeout = time.Duration(d.varint())
	s.Status = Status(d.string())
	s.BlockedUntil = d.time()
	s.StatusReason = d.string()
	if flags&flagAuthStatus != 0 {
		v := int(d.varint())
		s.AuthenticationStatus = &v
	}
	if flags&flagClientType != 0 {
		v := int(d.varint())
		s.ClientType = &v
	}
	s.ClientApplication = d.string()
	s.ClientVersion = d.string()
	s.ExternalDeviceID = d.string()
	if n := d.uvarint(); n > 0 && d.err == nil {
		n--
		if n > uint64(len(b)) {
			return nil, errShort
		}
		s.Fingerprints = make([]Fingerprint, n)
		for i := range s.Fingerprints {
			f := &s.Fingerprints[i]
			f.Cookie, f.Fingerprint, f.CookieType = d.string(), d.string(), d.string()
		}
	}
	s.AuthTime = d.time()
	if n := d.uvarint(); n > 0 && d.err == nil {
		n--
		if n > uint64(len(b)) {
			return nil, errShort
		}
		s.Factors = make([]string, n)
		for i := range s.Factors {
			s.Factors[i] = d.string()
		}
	}
	if flags&flagChallenge != 0 {
		ch := new(Challenge)
		ch.CorrelationID = d.string()
		ch.Factor = d.string()
		ch.NonceHash = d.bytes()
		ch.AnswerHash = d.bytes()
		ch.Expiry = d.time()
		ch.Attempts = int(d.varint())
		cf := d.byte()
		ch.Closed, ch.OTPUsed = cf&1 != 0, cf&2 != 0
		ch.OTPIssued = d.time()
		ch.OTPExpiry = d.time()
		s.Challenge = ch
	}
	s.Version = d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("session encoding has %d trailing bytes", len(b)-d.off)
	}
	return s, nil
}

var errShort = errors.New("session encoding is truncated")

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendBytes encodes p as its length+1, 0 for nil.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	return append(binary.AppendUvarint(b, uint64(len(p))+1), p...)
}

// Kinds of encoded times.
const (
	timeZero  = iota // time.Time{}
	timeUTC          // Unix seconds and nanoseconds, in UTC
	timeLocal        // the same, in time.Local
	timeOther        // time.Time.MarshalBinary (other zones)
)

// appendTime encodes t without its monotonic reading.
func appendTime(b []byte, t time.Time) []byte {
	switch {
	case t.IsZero() && t.Location() == time.UTC: // time.Time{}
		return append(b, timeZero)
	case t.Location() == time.UTC:
		b = append(b, timeUTC)
	case t.Location() == time.Local:
		b = append(b, timeLocal)
	default:
		m, err := t.MarshalBinary()
		if err != nil { // an offset that is not a whole minute: keep the instant
			return appendTime(b, t.UTC())
		}
		return appendBytes(append(b, timeOther), m)
	}
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	str string // one copy of b that decoded strings share
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
	d.off = len(d.b)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail()
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// span returns the bounds of the next n bytes.
func (d *decoder) span(n uint64) (int, int, bool) {
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return 0, 0, false
	}
	i := d.off
	d.off += int(n)
	return i, d.off, true
}

func (d *decoder) string() string {
	if i, j, ok := d.span(d.uvarint()); ok {
		return d.str[i:j]
	}
	return ""
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	if i, j, ok := d.span(n - 1); ok {
		return append(make([]byte, 0, j-i), d.b[i:j]...)
	}
	return nil
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case timeZero:
		return time.Time{}
	case timeUTC:
		sec := d.varint()
		return time.Unix(sec, int64(d.uvarint())).UTC()
	case timeLocal:
		sec := d.varint()
		return time.Unix(sec, int64(d.uvarint())).In(time.Local)
	case timeOther:
		var t time.Time
		if err := t.UnmarshalBinary(d.bytes()); err != nil && d.err == nil {
			d.err = fmt.Errorf("session encoding: %w", err)
		}
		return t
	default:
		if d.err == nil {
			d.err = errors.New("session encoding: unknown time kind")
		}
		return time.Time{}
	}
}
