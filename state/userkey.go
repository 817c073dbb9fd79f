package state

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// ErrBadUserID is returned for a user id or login that cannot name a user:
// empty, not UTF-8, or holding a control character (CR, LF, NUL, ...), a
// line or paragraph separator, or U+FFFD (what a JSON decoder makes of
// invalid UTF-8).
var ErrBadUserID = errors.New("user id must be UTF-8 text without control characters")

// ValidateUserName checks a caller-supplied user id or login: valid UTF-8
// without control characters, line separators or U+FFFD. A name is shown
// to upstreams in headers and written to logs; it must stay one line of
// text.
func ValidateUserName(s string) error {
	if !utf8.ValidString(s) {
		return ErrBadUserID
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return ErrBadUserID
		}
	}
	return nil
}

// foldName returns the normalised form of a user name: surrounding space
// trimmed, Unicode NFC, case-folded, NFC again (folding can undo it).
func foldName(s string) string {
	return norm.NFC.String(cases.Fold().String(norm.NFC.String(strings.TrimSpace(s))))
}

// UserKey returns the one key under which everything about the user named
// raw is kept: sessions and the per-user session index, replay guards,
// counters, trusted devices, revocation. Every API family and the portal
// call it on what a caller supplies, so "demo", "DEMO" and "Demo " are one
// user.
//
// A user of the users file (us, may be nil) is keyed by the file's id,
// whether raw names it by id or by login, in any letter case or Unicode
// form. Any other name is keyed by its normalised form (NFC, case-folded,
// trimmed). An empty name, invalid UTF-8 or a control character is
// ErrBadUserID.
func UserKey(us *Users, raw string) (string, error) {
	return DirectoryKey(context.Background(), us.Directory(""), raw)
}
