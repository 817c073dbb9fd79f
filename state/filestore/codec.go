package filestore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// The persisted form of a record, as the file store writes it (one bbolt
// value per session or user):
//
//	byte 0      format version (recordVersion; recordVersionJSON is read too)
//	byte 1      flags (flagSealed: the payload is encrypted)
//	bytes 2-9   deadline, Unix nanoseconds, big-endian; 0 = none
//	bytes 10-   payload: a session in the binary encoding of
//	            state.AppendSession (format 2), anything else (user states,
//	            the key check) as JSON; or, when sealed, a 12-byte nonce
//	            followed by the AES-256-GCM sealing of that payload
//
// Format 1 (recordVersionJSON, written before format 2) held every payload
// as JSON; it is still read, and rewritten in format 2 with the record's next
// write. The binary session encoding decodes several times faster than
// JSON, which is what a start with a million sessions spends its time on.
// The JSON uses the short tags of state.Session and state.UserState, so a
// later release that adds fields still reads older records, and the version
// byte lets it tell formats apart. The deadline sits outside the payload so the sweeper
// and the loader can skip expired records without decoding (or decrypting)
// them. When sealed, the bucket name, the record's key and the 10-byte
// header are the additional data: a record cannot be moved to another key or
// have its deadline changed without failing authentication.
const (
	recordVersion     byte = 2
	recordVersionJSON byte = 1
	flagSealed        byte = 1 << 0
	headerLen              = 10
)

// errUnsealed is returned when a record cannot be authenticated with the
// configured encryption key.
var errUnsealed = errors.New("record does not open with the encryption key")

// codec encodes and decodes records, sealing them when it has an AEAD.
type codec struct{ aead cipher.AEAD }

// newCodec returns a codec; key is nil (no encryption) or 32 bytes.
func newCodec(key []byte) (*codec, error) {
	if key == nil {
		return &codec{}, nil
	}
	if len(key) != state.SealKeySize {
		return nil, fmt.Errorf("encryption key must be %d bytes, got %d", state.SealKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &codec{aead: aead}, nil
}

// encode returns the record of v, stored under key in bucket.
func (c *codec) encode(bucket, key []byte, deadline time.Time, v any) ([]byte, error) {
	var payload []byte
	if s, ok := v.(*state.Session); ok {
		payload = state.AppendSession(nil, s)
	} else {
		var err error
		if payload, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encoding record: %w", err)
		}
	}
	hdr := make([]byte, headerLen)
	hdr[0] = recordVersion
	binary.BigEndian.PutUint64(hdr[2:], uint64(deadlineNanos(deadline)))
	if c.aead == nil {
		return append(hdr, payload...), nil
	}
	hdr[1] = flagSealed
	ns := c.aead.NonceSize()
	out := make([]byte, headerLen+ns, headerLen+ns+len(payload)+c.aead.Overhead())
	copy(out, hdr)
	nonce := out[headerLen:]
	_, _ = rand.Read(nonce)
	return c.aead.Seal(out, nonce, payload, additionalData(bucket, key, hdr)), nil
}

// decode parses the record rec stored under key in bucket into v.
func (c *codec) decode(bucket, key, rec []byte, v any) error {
	if s, ok := v.(*state.Session); ok {
		d, _, err := c.decodeSession(bucket, key, rec)
		if err != nil {
			return err
		}
		*s = *d
		return nil
	}
	payload, err := c.open(bucket, key, rec)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("decoding record: %w", err)
	}
	return nil
}

// decodeSession parses the session record rec stored under key in bucket,
// and returns with it its binary encoding (state.AppendSession), nil for a
// record of format 1. The encoding may point into rec, or into a buffer of
// its own when the record is sealed.
func (c *codec) decodeSession(bucket, key, rec []byte) (*state.Session, []byte, error) {
	payload, err := c.open(bucket, key, rec)
	if err != nil {
		return nil, nil, err
	}
	if rec[0] == recordVersion {
		s, err := state.DecodeSession(payload)
		if err != nil {
			return nil, nil, fmt.Errorf("decoding record: %w", err)
		}
		return s, payload, nil
	}
	s := new(state.Session)
	if err := json.Unmarshal(payload, s); err != nil {
		return nil, nil, fmt.Errorf("decoding record: %w", err)
	}
	return s, nil, nil
}

// open checks the header of the record rec stored under key in bucket and
// returns its payload, unsealed.
func (c *codec) open(bucket, key, rec []byte) ([]byte, error) {
	if len(rec) < headerLen {
		return nil, errors.New("record too short")
	}
	if !knownVersion(rec[0]) {
		return nil, headerError(rec)
	}
	payload := rec[headerLen:]
	switch rec[1] {
	case 0:
	case flagSealed:
		if c.aead == nil {
			return nil, errors.New("record is encrypted and no encryption key is configured")
		}
		ns := c.aead.NonceSize()
		if len(payload) < ns+c.aead.Overhead() {
			return nil, errors.New("sealed record too short")
		}
		var err error
		payload, err = c.aead.Open(nil, payload[:ns], payload[ns:], additionalData(bucket, key, rec[:headerLen]))
		if err != nil {
			return nil, errUnsealed
		}
	default:
		return nil, fmt.Errorf("record has unknown flags %#x", rec[1])
	}
	return payload, nil
}

func knownVersion(v byte) bool { return v == recordVersion || v == recordVersionJSON }

// recordDeadline returns the deadline in a record's header (Unix
// nanoseconds, 0 for none), or ok=false if rec has no valid header.
func recordDeadline(rec []byte) (nanos int64, ok bool) {
	if len(rec) < headerLen || !knownVersion(rec[0]) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(rec[2:headerLen])), true
}

// headerError describes what is wrong with a record's header.
func headerError(rec []byte) error {
	if len(rec) > 0 && !knownVersion(rec[0]) {
		return fmt.Errorf("record format %d is not one this build reads (%d or %d)", rec[0], recordVersionJSON, recordVersion)
	}
	return errors.New("record too short")
}

// deadlineNanos converts a deadline to Unix nanoseconds, clamping instants
// outside int64's range; the zero time means no deadline.
func deadlineNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Year() >= 2262:
		return math.MaxInt64
	case t.Year() < 1970:
		return 1
	}
	return t.UnixNano()
}

func additionalData(bucket, key, hdr []byte) []byte {
	ad := make([]byte, 0, len(bucket)+1+len(key)+len(hdr))
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	ad = append(ad, key...)
	return append(ad, hdr...)
}
