package contract

import (
	"slices"
	"sync"
)

// divergence is a known difference between today's handlers and the
// documents (which describe the specification's behaviour). Each names the
// defect; the branch that fixes it empties its entry.
type divergence struct {
	defect string
	match  func(p *Pair, problem string) bool
}

// knownDivergences is the one allow-list of the contract tests. When the
// handler fixes land, each entry stops matching anything; delete it then
// (the log line "known divergence" shows which entries still match).
var knownDivergences = []divergence{}

// seen records the defects that explained a mismatch in this test binary.
var seen sync.Map

// SeenDivergences returns the defects that explained a mismatch so far.
func SeenDivergences() []string {
	var out []string
	seen.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// KnownDivergence returns the defect that explains problem in p, or "".
func KnownDivergence(p *Pair, problem string) string {
	for _, d := range knownDivergences {
		if d.match(p, problem) {
			seen.Store(d.defect, true)
			return d.defect
		}
	}
	return ""
}
