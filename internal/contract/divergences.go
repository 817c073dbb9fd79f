package contract

import (
	"bytes"
	"slices"
	"strings"
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
var knownDivergences = []divergence{
	{
		defect: "store-down: 503 without Retry-After (spec: every 503 carries Retry-After)",
		match: func(p *Pair, problem string) bool {
			return p.Status == 503 && p.RespHeader.Get("Retry-After") == "" && strings.Contains(problem, `"Retry-After" missing`)
		},
	},
	{
		defect: "oam: a timed-out write or search answers 408 (spec: 408 only for a timed-out GET lookup, writes 503)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "oam" && p.Status == 408 && p.Method != "GET" && strings.Contains(problem, "status is not supported")
		},
	},
	{
		defect: "authn: an XML request with no Accept is answered in XML (spec: JSON is the default answer)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "authn" && strings.Contains(problem, "JSON is the default")
		},
	},
	{
		defect: "risk-analyzer: 405 without an Allow header",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "risk-analyzer" && p.Match.Route == nil && p.Status == 405 && strings.Contains(problem, "Allow header")
		},
	},
	{
		defect: "risk-analyzer: a JSON null body panics and drops the connection (spec: 400)",
		match: func(p *Pair, _ string) bool {
			return p.Match.Family() == "risk-analyzer" && p.Panicked && string(bytes.TrimSpace(p.ReqBody)) == "null"
		},
	},
	{
		defect: "risk-analyzer: create ignores ip {remoteIP, remoteHost, proxyIP} and fpList [{cookie, fingerprint, cookieType}] (spec: read, checked and stored)",
		match: func(p *Pair, problem string) bool {
			return p.Match.OperationID() == "raCreateSession" && (strings.Contains(problem, "/fpList") || strings.Contains(problem, "/ip/"))
		},
	},
	{
		defect: "authn: an oversize body answers 400 (spec: 413)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "authn" && strings.Contains(problem, "want 413")
		},
	},
	{
		defect: "authn: a body that is neither JSON nor XML is read as JSON (spec: 415)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "authn" && strings.Contains(problem, "want 415")
		},
	},
	{
		defect: "authn: an Accept that allows neither JSON nor XML is ignored (spec: 406)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "authn" && strings.Contains(problem, "want 406")
		},
	},
	{
		defect: "oam: a body that is not JSON (text/plain, a form) is read as JSON (spec: 415)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "oam" && (strings.Contains(problem, "want 415") ||
				(p.Status < 300 && strings.Contains(problem, "header Content-Type has unexpected value")))
		},
	},
	{
		defect: "oam: an Accept that excludes JSON (e.g. application/xml) is ignored (spec: 406)",
		match: func(p *Pair, problem string) bool {
			return p.Match.Family() == "oam" && (strings.Contains(problem, "want 406") || strings.Contains(problem, "which Accept"))
		},
	},
}

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
