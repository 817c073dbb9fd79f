package filestore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

func TestCodecRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := fullSession(t, now, "dave")
	for name, key := range map[string][]byte{"plain": nil, "sealed": state.NewSealKey()} {
		c, err := newCodec(key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := c.encode(bucketSessions, s.Key[:], s.Deadline(), s)
		if err != nil {
			t.Fatal(err)
		}
		if rec[0] != recordVersion {
			t.Fatalf("%s: version byte %d", name, rec[0])
		}
		if d, ok := recordDeadline(rec); !ok || d != s.Deadline().UnixNano() {
			t.Fatalf("%s: header deadline %d, want %d", name, d, s.Deadline().UnixNano())
		}
		if sealed := bytes.Contains(rec, []byte("dave")); sealed == (key != nil) {
			t.Fatalf("%s: user id in the clear = %v", name, sealed)
		}
		got := new(state.Session)
		if err := c.decode(bucketSessions, s.Key[:], rec, got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("%s: decoded %+v, want %+v", name, got, s)
		}
		if key == nil {
			continue
		}
		// A sealed record is bound to its key and header.
		other := state.KeyOf(state.NewID())
		if err := c.decode(bucketSessions, other[:], rec, new(state.Session)); !errors.Is(err, errUnsealed) {
			t.Fatalf("record moved to another key: %v", err)
		}
		moved := append([]byte(nil), rec...)
		moved[9]++
		if err := c.decode(bucketSessions, s.Key[:], moved, new(state.Session)); !errors.Is(err, errUnsealed) {
			t.Fatalf("record with a changed deadline: %v", err)
		}
		plain, _ := newCodec(nil)
		if err := plain.decode(bucketSessions, s.Key[:], rec, new(state.Session)); err == nil {
			t.Fatal("sealed record decoded without a key")
		}
	}
}

func TestDeadlineNanos(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Unix(0, 5), 5},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 1},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1<<63 - 1},
	} {
		if got := deadlineNanos(tc.t); got != tc.want {
			t.Errorf("deadlineNanos(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

// FuzzDecodeRecord checks that no stored bytes make the decoder panic, with
// or without a key.
func FuzzDecodeRecord(f *testing.F) {
	plain, _ := newCodec(nil)
	sealed, _ := newCodec(make([]byte, state.SealKeySize))
	key := state.KeyOf("fuzz")
	s := &state.Session{Key: key, UserID: "u", Challenge: &state.Challenge{CorrelationID: "c"}}
	for _, c := range []*codec{plain, sealed} {
		rec, err := c.encode(bucketSessions, key[:], time.Unix(100, 0), s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{', '}'})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, c := range []*codec{plain, sealed} {
			_ = c.decode(bucketSessions, key[:], rec, new(state.Session))
			_ = c.decode(bucketUsers, key[:], rec, new(state.UserState))
		}
		_, _ = recordDeadline(rec)
		_ = headerError(rec)
	})
}

// TestCodecReadsJSONRecords: records of format 1 (JSON payloads, written by
// earlier releases) still decode.
func TestCodecReadsJSONRecords(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := fullSession(t, now, "erin")
	for name, key := range map[string][]byte{"plain": nil, "sealed": state.NewSealKey()} {
		c, err := newCodec(key)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, headerLen)
		hdr[0] = recordVersionJSON
		binary.BigEndian.PutUint64(hdr[2:], uint64(s.Deadline().UnixNano()))
		rec := append(hdr, payload...)
		if key != nil {
			hdr[1] = flagSealed
			nonce := make([]byte, c.aead.NonceSize())
			rec = c.aead.Seal(append(append([]byte(nil), hdr...), nonce...), nonce, payload, additionalData(bucketSessions, s.Key[:], hdr))
		}
		if d, ok := recordDeadline(rec); !ok || d != s.Deadline().UnixNano() {
			t.Fatalf("%s: header deadline %d, %v", name, d, ok)
		}
		got := new(state.Session)
		if err := c.decode(bucketSessions, s.Key[:], rec, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("%s: decoded %+v, want %+v", name, got, s)
		}
	}
}
