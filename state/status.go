package state

import (
	"fmt"
	"strings"
)

// Status is the authentication status of a session. The seven values are the
// challenge API's, kept verbatim on the wire by every family.
type Status string

// The seven statuses.
const (
	StatusPendingIdentification Status = "pending identification"
	StatusPendingVerification   Status = "pending verification"
	StatusAuthenticated         Status = "authenticated"
	StatusFailed                Status = "failed"
	StatusError                 Status = "error"
	StatusMissingRegistration   Status = "missing registration"
	StatusChallengeBlocked      Status = "challenge blocked"
)

// Statuses lists every status in a stable order.
var Statuses = []Status{
	StatusPendingIdentification,
	StatusPendingVerification,
	StatusAuthenticated,
	StatusFailed,
	StatusError,
	StatusMissingRegistration,
	StatusChallengeBlocked,
}

// ParseStatus returns the status spelled s, or an error naming the allowed
// values.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(Statuses))
	for i, st := range Statuses {
		names[i] = string(st)
	}
	return "", fmt.Errorf("unknown status %q: allowed values are %s", s, strings.Join(names, ", "))
}

// transitions is the status state machine: transitions[from][to] is true when
// a session may move from one status to the other. A status not listed as a
// target is unreachable from that origin.
//
//   - Nothing goes back to "pending identification": once a user is known the
//     session stays bound to it.
//   - "challenge blocked" is sticky: while the block lasts no transition leaves
//     it (see Session.SetStatus); once the block has expired it behaves like
//     "pending verification".
//   - An authenticated session may drop back to pending verification (step-up,
//     a new login OTP) or be marked failed/error by a later report.
var transitions = map[Status]map[Status]bool{
	StatusPendingIdentification: set(StatusPendingIdentification, StatusPendingVerification, StatusAuthenticated,
		StatusFailed, StatusError, StatusMissingRegistration, StatusChallengeBlocked),
	StatusPendingVerification: set(StatusPendingVerification, StatusAuthenticated, StatusFailed, StatusError,
		StatusMissingRegistration, StatusChallengeBlocked),
	StatusAuthenticated: set(StatusAuthenticated, StatusPendingVerification, StatusFailed, StatusError,
		StatusChallengeBlocked),
	StatusFailed: set(StatusFailed, StatusPendingVerification, StatusAuthenticated, StatusError,
		StatusMissingRegistration, StatusChallengeBlocked),
	StatusError: set(StatusError, StatusPendingVerification, StatusAuthenticated, StatusFailed,
		StatusMissingRegistration, StatusChallengeBlocked),
	StatusMissingRegistration: set(StatusMissingRegistration, StatusPendingVerification, StatusAuthenticated,
		StatusFailed, StatusError, StatusChallengeBlocked),
	StatusChallengeBlocked: set(StatusChallengeBlocked),
}

func set(ss ...Status) map[Status]bool {
	m := make(map[Status]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// CanTransition reports whether the state machine allows from → to, not
// counting the expiry of a block (see Session.SetStatus).
func CanTransition(from, to Status) bool {
	return transitions[from][to]
}
