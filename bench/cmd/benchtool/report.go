package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wrkRun is what one wrk run printed.
type wrkRun struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Non2xx   int64
	SockErrs int64
	// CPUMicros is the measured Caddy process's CPU time per request (µs),
	// from run.sh's <id>.txt.cpu; 0 when not recorded.
	CPUMicros float64
	// Round is the round the run belongs to (its directory's number).
	Round int
}

var (
	reRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	reLatency  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reRequests = regexp.MustCompile(`(?m)^\s+(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses: (\d+)`)
	reSockErr  = regexp.MustCompile(`(?m)^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(text string) (wrkRun, error) {
	var r wrkRun
	m := reRPS.FindStringSubmatch(text)
	if m == nil {
		return r, errors.New("no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range reLatency.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, errors.New("no latency distribution (wrk --latency)")
	}
	if m := reRequests.FindStringSubmatch(text); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(text); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSockErr.FindStringSubmatch(text); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SockErrs += n
		}
	}
	return r, nil
}

// series is every round of one measured configuration and its medians.
type series struct {
	runs     []wrkRun
	rps      float64
	p50, p99 time.Duration
	cpu      float64 // median Caddy CPU µs per request; 0 if not recorded
}

// loadSeries reads <dir>/<round>/<id>.txt for every round directory. A
// missing id yields an empty series (the part was not run).
func loadSeries(dir string) (map[string]*series, int, error) {
	rounds, _ := filepath.Glob(filepath.Join(dir, "*"))
	slices.SortFunc(rounds, func(a, b string) int {
		x, _ := strconv.Atoi(filepath.Base(a))
		y, _ := strconv.Atoi(filepath.Base(b))
		return x - y
	})
	out := map[string]*series{}
	for _, rd := range rounds {
		round, _ := strconv.Atoi(filepath.Base(rd))
		files, _ := filepath.Glob(filepath.Join(rd, "*.txt"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, 0, err
			}
			w, err := parseWrk(string(b))
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %v", f, err)
			}
			if c, err := os.ReadFile(f + ".cpu"); err == nil && w.Requests > 0 {
				secs, _ := strconv.ParseFloat(strings.TrimSpace(string(c)), 64)
				w.CPUMicros = secs * 1e6 / float64(w.Requests)
			}
			w.Round = round
			id := strings.TrimSuffix(filepath.Base(f), ".txt")
			if out[id] == nil {
				out[id] = &series{}
			}
			out[id].runs = append(out[id].runs, w)
		}
	}
	for _, s := range out {
		var rps, p50, p99, cpu []float64
		for _, w := range s.runs {
			rps = append(rps, w.RPS)
			p50 = append(p50, float64(w.P50))
			p99 = append(p99, float64(w.P99))
			if w.CPUMicros > 0 {
				cpu = append(cpu, w.CPUMicros)
			}
		}
		s.rps, s.p50, s.p99, s.cpu = median(rps), time.Duration(median(p50)), time.Duration(median(p99)), median(cpu)
	}
	return out, len(rounds), nil
}

// row is one line of a results table: a configuration and what it is
// compared with.
type row struct {
	id, label, base string
	expect          int // 200, or 401 for the miss path
}

// reporter writes the Markdown report of one run.sh run.
type reporter struct {
	w      io.Writer
	facts  map[string]string
	main   map[string]*series // parts (a) and (b): one set of rounds
	sweep  map[string]*series // part (d)
	rounds int
	sweepN int
}

// runReport reads what run.sh left in -dir (facts.tsv, wrk/<round>/*.txt,
// sweep/<round>/*.txt, restart.tsv) and prints the report's sections after
// its header: the targets of issue #16 with verdicts, then each part.
func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("dir", "", "run directory written by run.sh")
	_ = fs.Parse(args)
	facts, err := readFacts(filepath.Join(*dir, "facts.tsv"))
	if err != nil {
		return err
	}
	r := &reporter{w: os.Stdout, facts: facts}
	if r.main, r.rounds, err = loadSeries(filepath.Join(*dir, "wrk")); err != nil {
		return err
	}
	if r.sweep, r.sweepN, err = loadSeries(filepath.Join(*dir, "sweep")); err != nil {
		return err
	}
	restarts, err := readRestarts(filepath.Join(*dir, "restart.tsv"))
	if err != nil {
		return err
	}
	r.targets(restarts)
	r.partA()
	r.partB()
	r.partC()
	r.partD()
	r.partE(restarts)
	r.everyRound()
	return nil
}

func (r *reporter) printf(format string, a ...any) { fmt.Fprintf(r.w, format, a...) }

func (r *reporter) fact(k string) string {
	if v, ok := r.facts[k]; ok {
		return v
	}
	return "?"
}

func (r *reporter) factInt(k string) int64 {
	n, _ := strconv.ParseInt(r.facts[k], 10, 64)
	return n
}

// ratio returns the median over the rounds of a's req/s ÷ b's in the same
// round (0 when either was not measured). Each round measures a and b a
// few seconds apart, so the ratio of one round compares them under the
// same neighbours; its median over the rounds is steadier on a shared
// machine than the ratio of the two medians (ratioOfMedians), which mixes
// rounds the neighbours slowed down with rounds they did not.
func ratio(a, b *series) float64 {
	return pairedMedian(a, b, func(x, y wrkRun) float64 {
		if y.RPS == 0 {
			return 0
		}
		return x.RPS / y.RPS
	})
}

// pairedMedian is the median of f over the rounds that measured both a
// and b (0 when there are none).
func pairedMedian(a, b *series, f func(x, y wrkRun) float64) float64 {
	if a == nil || b == nil {
		return 0
	}
	var v []float64
	for _, x := range a.runs {
		for _, y := range b.runs {
			if x.Round == y.Round {
				if q := f(x, y); q > 0 {
					v = append(v, q)
				}
			}
		}
	}
	if len(v) == 0 {
		return 0
	}
	return median(v)
}

// ratioOfMedians is a's median req/s ÷ b's.
func ratioOfMedians(a, b *series) float64 {
	if a == nil || b == nil || b.rps == 0 {
		return 0
	}
	return a.rps / b.rps
}

// extraMicros is what a's request costs over b's on Caddy's one core, from
// the throughputs: 1/a − 1/b seconds, in µs. Caddy is pinned to one CPU and
// saturated by wrk on the other, so 1/req/s is its CPU time per request.
func extraMicros(a, b *series) float64 {
	if a == nil || b == nil || a.rps == 0 || b.rps == 0 {
		return 0
	}
	return 1e6/a.rps - 1e6/b.rps
}

// cpuRatio is the median over the rounds of b's Caddy CPU per request ÷
// a's: the throughput ratio a saturated Caddy core would show (0 when not
// recorded).
func cpuRatio(a, b *series) float64 {
	return pairedMedian(a, b, func(x, y wrkRun) float64 {
		if x.CPUMicros == 0 {
			return 0
		}
		return y.CPUMicros / x.CPUMicros
	})
}

// measured formats a req/s ratio with what the other figures say beside it.
func measured(a, b *series) string {
	out := fmt.Sprintf("%.3f (ratio of medians %.3f, %+.2f µs)", ratio(a, b), ratioOfMedians(a, b), extraMicros(a, b))
	if c := cpuRatio(a, b); c > 0 {
		out += fmt.Sprintf("; by Caddy CPU per request %.3f (medians %.2f vs %.2f µs)", c, a.cpu, b.cpu)
	}
	return out
}

func (r *reporter) targets(restarts []restart) {
	m := r.main
	r.printf("## Targets (issue #16)\n\n")
	r.printf("Each ratio is the median over the rounds of the ratio within one round (req/s ÷ req/s of the baseline, measured seconds apart under the same neighbours), as the issue measures them; the ratio of the two medians follows in brackets. \"+µs\" is 1/req/s − 1/req/s of the baseline medians: the extra time per request on Caddy's core, which is its CPU time only when that core is saturated. On a shared machine it is not always (other jobs take turns on it), so each ratio is followed by the same ratio computed from Caddy's own CPU time per request (utime + stime of the process from /proc/<pid>/stat over the wrk run ÷ requests), which the neighbours disturb much less.\n\n")
	r.printf("| measure | goal | measured | verdict |\n|---|---|---|---|\n")
	gate := ratio(m["a_gate"], m["a_respond"])
	basic := ratio(m["a_basic"], m["a_respond"])
	if m["a_gate"] != nil {
		r.printf("| gate hit + `respond` ÷ `respond`, same process | ≥ 0.97 (≤ +0.5 µs) | %s | %s |\n",
			measured(m["a_gate"], m["a_respond"]), verdictAtLeast(gate, 0.97))
		r.printf("| `basic_auth` (bcrypt cost 14, cached) + `respond` ÷ `respond`, same process | the gate stays ahead | %s | %s |\n",
			measured(m["a_basic"], m["a_respond"]), aheadVerdict(gate, basic))
		r.printf("| `forward_auth` + `respond` ÷ `respond`, same process | (for comparison) | %s | — |\n",
			measured(m["a_fwd"], m["a_respond"]))
		if m["a_noop"] != nil {
			r.printf("| a no-op handler (`vars`) + `respond` ÷ `respond`, same process | (for comparison: what Caddy charges for any second handler) | %s | — |\n",
				measured(m["a_noop"], m["a_respond"]))
			r.printf("| gate hit + `respond` ÷ no-op handler + `respond` | (for comparison: the gate's own cost) | %s | — |\n",
				measured(m["a_gate"], m["a_noop"]))
		}
	}
	n := r.fact("sessions_large")
	if m["b_large_respond"] != nil {
		x := ratio(m["b_large_respond"], m["b_small_respond"])
		r.printf("| `respond`: process holding %s sessions ÷ the same config holding 1 | ≥ 0.95 | %s | %s |\n",
			n, measured(m["b_large_respond"], m["b_small_respond"]), verdictAtLeast(x, 0.95))
		y := ratio(m["b_large_gate"], m["b_small_gate"])
		r.printf("| gate hit + `respond`: holding %s ÷ holding 1 | ≥ 0.95 | %s | %s |\n",
			n, measured(m["b_large_gate"], m["b_small_gate"]), verdictAtLeast(y, 0.95))
	}
	if per := r.rssPerSession("rss_large_preloaded", "rss_small_preloaded"); per > 0 {
		r.printf("| RSS per live session (created through the OAM API), after the preload | ≤ 1 KiB | %.0f B | %s |\n", per, verdictAtMost(per, 1024, "B"))
		if after := r.rssPerSession("rss_large_after", "rss_small_after"); after > 0 {
			r.printf("| the same, after the load rounds | ≤ 1 KiB | %.0f B | %s |\n", after, verdictAtMost(after, 1024, "B"))
		}
	}
	if s, b := r.sweep["d_sweep"], r.sweep["d_nosweep"]; s != nil && b != nil {
		p99 := float64(s.p99) / float64(b.p99)
		r.printf("| gate p99 during sweeps ÷ without (see (d) for the sessions held) | no jump (read here as ≤ 1.25) | %.2f (p50 %.2f) | %s |\n",
			p99, float64(s.p50)/float64(b.p50), verdictAtMost(p99, 1.25, "×"))
	}
	if len(restarts) > 0 {
		loaded := medianOf(restarts, func(x restart) float64 { return x.loaded })
		r.printf("| file store restart, %s sessions: until every session is loaded | ≤ 5 s | %.1f s (median of %d) | %s |\n",
			r.fact("file_sessions"), loaded, len(restarts), verdictAtMost(loaded, 5, "s"))
	}
	r.printf("\n")
}

func verdictAtLeast(v, goal float64) string {
	if v >= goal {
		return "met"
	}
	return fmt.Sprintf("missed by %.3f", goal-v)
}

func verdictAtMost(v, goal float64, unit string) string {
	if v <= goal {
		return "met"
	}
	return fmt.Sprintf("missed by %.2f %s", v-goal, unit)
}

func aheadVerdict(gate, basic float64) string {
	if gate > basic {
		return fmt.Sprintf("met (gate %.3f)", gate)
	}
	return fmt.Sprintf("missed: gate %.3f", gate)
}

// rssPerSession is (VmRSS of the large process − the small one's) ÷ the
// sessions it holds beyond the small one's, in bytes (facts in KiB).
func (r *reporter) rssPerSession(large, small string) float64 {
	l, s := r.factInt(large), r.factInt(small)
	n := r.factInt("sessions_large") - r.factInt("sessions_small")
	if l == 0 || s == 0 || n <= 0 {
		return 0
	}
	return float64(l-s) * 1024 / float64(n)
}

// table prints rows with their medians and their ratios to their baseline.
func (r *reporter) table(set map[string]*series, rows []row) {
	r.printf("| configuration | req/s | p50 | p99 | Caddy CPU per request | req/s ÷ baseline | +µs per request | ratio by CPU per request | p50 ÷ baseline | p99 ÷ baseline | responses |\n")
	r.printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, rw := range rows {
		s := set[rw.id]
		if s == nil {
			continue
		}
		rat, extra, cpur, p50, p99, cpu := "—", "—", "—", "—", "—", "—"
		if s.cpu > 0 {
			cpu = fmt.Sprintf("%.2f µs", s.cpu)
		}
		if b := set[rw.base]; b != nil && rw.base != rw.id {
			rat = fmt.Sprintf("%.3f", ratio(s, b))
			extra = fmt.Sprintf("%+.2f", extraMicros(s, b))
			if c := cpuRatio(s, b); c > 0 {
				cpur = fmt.Sprintf("%.3f", c)
			}
			p50 = fmt.Sprintf("%.2f", float64(s.p50)/float64(b.p50))
			p99 = fmt.Sprintf("%.2f", float64(s.p99)/float64(b.p99))
		}
		r.printf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			rw.label, s.rps, us(s.p50), us(s.p99), cpu, rat, extra, cpur, p50, p99, check(rw.expect, s.runs))
	}
	r.printf("\n")
}

var partARows = []row{
	{"a_respond", "`respond` (baseline)", "a_respond", 200},
	{"a_noop", "no-op handler (`vars`) + `respond`", "a_respond", 200},
	{"a_gate", "gate hit + `respond`", "a_respond", 200},
	{"a_basic", "`basic_auth` (bcrypt cost 14, cached) + `respond`", "a_respond", 200},
	{"a_fwd", "`forward_auth` + `respond`", "a_respond", 200},
	{"a_miss", "gate miss (no cookie → 401)", "a_respond", 401},
}

func (r *reporter) partA() {
	if r.main["a_respond"] == nil {
		return
	}
	r.printf("## (a) One Caddy process, several configurations\n\n")
	r.printf("The process holding %s session(s), each configuration on its own site address; the process holding %s was stopped (SIGSTOP) meanwhile. Baseline: `respond` in the same process, sent the same requests as the gate (with the session cookie; `basic_auth` gets its Authorization header instead). The `forward_auth` service (benchtool authsvc) runs on wrk's CPU, so that row also measures it competing with wrk. Load average over the rounds: %s.\n\n",
		r.fact("sessions_small"), r.fact("sessions_large"), r.fact("load_ab"))
	r.table(r.main, partARows)
}

func (r *reporter) partB() {
	if r.main["b_large_respond"] == nil {
		return
	}
	n, one := r.fact("sessions_large"), r.fact("sessions_small")
	r.printf("## (b) The same configuration holding %s and holding %s sessions\n\n", one, n)
	r.printf("Two Caddy processes from the same Caddyfile (ports aside), both pinned to the same CPU; whichever is not measured is stopped with SIGSTOP (and continued after), so they never compete. Interleaved with (a), round by round.\n\n")
	r.table(r.main, []row{
		{"b_small_respond", "`respond`, holding " + one, "b_small_respond", 200},
		{"b_large_respond", "`respond`, holding " + n, "b_small_respond", 200},
		{"b_small_gate", "gate hit + `respond`, holding " + one, "b_small_gate", 200},
		{"b_large_gate", "gate hit + `respond`, holding " + n, "b_small_gate", 200},
	})
}

func (r *reporter) partC() {
	if r.facts["rss_large_preloaded"] == "" {
		return
	}
	kib := func(k string) string { return fmt.Sprintf("%.1f MiB", float64(r.factInt(k))/1024) }
	r.printf("## (c) Memory per live session\n\n")
	r.printf("VmRSS from /proc/<pid>/status: the process holding %s sessions minus the one holding %s, ÷ the difference in sessions. Sessions created through the OAM API (one per user). RSS counts what the heap has grown to, garbage not yet collected included.\n\n",
		r.fact("sessions_large"), r.fact("sessions_small"))
	r.printf("| when | holding %s | holding %s | per session |\n|---|--:|--:|--:|\n", r.fact("sessions_small"), r.fact("sessions_large"))
	r.printf("| at start | %s | %s | — |\n", kib("rss_small_start"), kib("rss_large_start"))
	r.printf("| after the preload | %s | %s | %.0f B |\n", kib("rss_small_preloaded"), kib("rss_large_preloaded"), r.rssPerSession("rss_large_preloaded", "rss_small_preloaded"))
	if r.facts["rss_large_after"] != "" {
		r.printf("| after the load rounds | %s | %s | %.0f B |\n", kib("rss_small_after"), kib("rss_large_after"), r.rssPerSession("rss_large_after", "rss_small_after"))
	}
	r.printf("\nPreload: %s; %s.\n\n", r.fact("preload_small"), r.fact("preload_large"))
}

func (r *reporter) partD() {
	if r.sweep["d_sweep"] == nil {
		return
	}
	r.printf("## (d) The gate during sweeps\n\n")
	r.printf("A third process (gate + `respond` and the API as in (b), but `store memory { cleanup_interval 1s }`, `idle_timeout %s`, `touch_interval 1s`) was given %s sessions through the API, paced over at least %s s (%s). They expire in the order they were made, at the pace they were made, while wrk's session stays live (the gate touches it): its sweeper runs every second and removes the ~%s sessions that expired since the last sweep. %s Compared with the process of (b), whose %s sessions do not expire (`cleanup_interval` at its default of 1 min). Each measured with the other stopped, %d rounds interleaved within the expiry window; load average %s.\n\n",
		r.fact("sweep_idle"), r.fact("sweep_sessions"), r.fact("sweep_span"), r.fact("preload_sweep"), r.fact("sweep_per_second"), r.sweepHeld(), r.fact("sessions_large"), r.sweepN, r.fact("load_d"))
	r.table(r.sweep, []row{
		{"d_nosweep", "gate hit + `respond`, nothing expiring", "d_nosweep", 200},
		{"d_sweep", "gate hit + `respond`, sessions expiring, sweeps every 1 s", "d_nosweep", 200},
	})
}

// sweepHeld says how many sessions part (d)'s process held when its rounds
// began: all of them if the preload took less than the idle timeout, else
// those made in its last idle-timeout seconds (the earlier ones had expired
// and been swept during the preload).
func (r *reporter) sweepHeld() string {
	n := float64(r.factInt("sweep_sessions"))
	idle, err := time.ParseDuration(r.fact("sweep_idle"))
	m := regexp.MustCompile(`seconds=([0-9.]+)`).FindStringSubmatch(r.fact("preload_sweep"))
	if n == 0 || err != nil || m == nil {
		return ""
	}
	took, _ := strconv.ParseFloat(m[1], 64)
	if took <= idle.Seconds() {
		return fmt.Sprintf("It held all %.0f when the rounds began, fewer as they ran.", n)
	}
	return fmt.Sprintf("The preload took longer than the idle timeout, so sessions were already expiring (and being swept) while it ran: the process held about %.0f (those made in its last %s) when the rounds began, fewer as they ran.",
		n*idle.Seconds()/took, idle)
}

// restart is one timed restart of the file-store process.
type restart struct {
	stop, serve, loaded float64 // seconds
}

func readRestarts(path string) ([]restart, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []restart
	for line := range strings.Lines(string(b)) {
		var x restart
		if _, err := fmt.Sscan(line, &x.stop, &x.serve, &x.loaded); err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		out = append(out, x)
	}
	return out, nil
}

func medianOf(rs []restart, f func(restart) float64) float64 {
	v := make([]float64, len(rs))
	for i, x := range rs {
		v[i] = f(x)
	}
	return median(v)
}

func (r *reporter) partE(restarts []restart) {
	if len(restarts) == 0 {
		return
	}
	r.printf("## (e) File store restart\n\n")
	r.printf("A Caddy process with `store file` given %s sessions through the OAM API (%s; file %s), then stopped (SIGTERM) and started again, %d times. Not pinned: loading uses every CPU. \"Serving\" is the first 200 from the gate for wrk's session; \"loaded\" is the first answer to an OAM search by user (`POST /sessions?userId=`), which waits until every session is in memory. Load average %s.\n\n",
		r.fact("file_sessions"), r.fact("preload_file"), r.fact("file_size"), len(restarts), r.fact("load_e"))
	r.printf("| restart | stop took | serving after | every session loaded after |\n|---|--:|--:|--:|\n")
	for i, x := range restarts {
		r.printf("| %d | %.2f s | %.2f s | %.2f s |\n", i+1, x.stop, x.serve, x.loaded)
	}
	r.printf("| median | %.2f s | %.2f s | %.2f s |\n\n",
		medianOf(restarts, func(x restart) float64 { return x.stop }),
		medianOf(restarts, func(x restart) float64 { return x.serve }),
		medianOf(restarts, func(x restart) float64 { return x.loaded }))
}

// everyRound prints every round's req/s and p99, to show the noise.
func (r *reporter) everyRound() {
	print := func(title string, set map[string]*series, rows []row, n int) {
		if n == 0 {
			return
		}
		r.printf("%s\n\n| configuration |", title)
		for i := range n {
			r.printf(" round %d |", i+1)
		}
		r.printf("\n|---|%s\n", strings.Repeat("--:|", n))
		for _, rw := range rows {
			s := set[rw.id]
			if s == nil {
				continue
			}
			r.printf("| %s |", rw.label)
			for _, w := range s.runs {
				r.printf(" %.0f req/s, p99 %s", w.RPS, us(w.P99))
				if w.CPUMicros > 0 {
					r.printf(", %.2f µs CPU", w.CPUMicros)
				}
				r.printf(" |")
			}
			r.printf("\n")
		}
		r.printf("\n")
	}
	r.printf("## Every round\n\n")
	main := append(slices.Clone(partARows),
		row{"b_small_respond", "`respond`, holding " + r.fact("sessions_small"), "", 200},
		row{"b_large_respond", "`respond`, holding " + r.fact("sessions_large"), "", 200},
		row{"b_small_gate", "gate hit + `respond`, holding " + r.fact("sessions_small"), "", 200},
		row{"b_large_gate", "gate hit + `respond`, holding " + r.fact("sessions_large"), "", 200})
	print("Parts (a) and (b), in run order within odd rounds (even rounds run them in reverse):", r.main, main, r.rounds)
	print("Part (d):", r.sweep, []row{
		{"d_nosweep", "nothing expiring", "", 200},
		{"d_sweep", "sessions expiring, sweeps every 1 s", "", 200},
	}, r.sweepN)
}

func readFacts(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		out[k] = v
	}
	return out, sc.Err()
}

// check summarises whether every response had the expected kind of status.
func check(expect int, runs []wrkRun) string {
	var reqs, non2xx, sock int64
	for _, w := range runs {
		reqs += w.Requests
		non2xx += w.Non2xx
		sock += w.SockErrs
	}
	var s string
	switch {
	case expect < 300 && non2xx == 0:
		s = "all 2xx"
	case expect >= 400 && non2xx == reqs:
		s = fmt.Sprintf("all %d", expect)
	default:
		s = fmt.Sprintf("UNEXPECTED: %d of %d not 2xx", non2xx, reqs)
	}
	if sock > 0 {
		s += fmt.Sprintf(", %d socket errors", sock)
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
