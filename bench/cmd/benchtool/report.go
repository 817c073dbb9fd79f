package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchConfig is one line of configs.tsv: what run.sh measured.
type benchConfig struct {
	ID       string
	Label    string
	Terminal string // "proxy", "respond" or "none"
	Expect   int    // expected status: 200, or 401 for the miss path
}

// wrkRun is what one wrk run printed.
type wrkRun struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Non2xx   int64
	SockErrs int64
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

// runReport reads <dir>/configs.tsv and <dir>/wrk/<round>/<id>.txt and
// prints the Markdown tables: medians with ratios, then every round.
func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("dir", "", "run directory written by run.sh")
	_ = fs.Parse(args)
	configs, err := readConfigs(filepath.Join(*dir, "configs.tsv"))
	if err != nil {
		return err
	}
	rounds, _ := filepath.Glob(filepath.Join(*dir, "wrk", "*"))
	slices.Sort(rounds)
	if len(rounds) == 0 {
		return errors.New("no wrk rounds found")
	}
	runs := map[string][]wrkRun{}
	for _, rd := range rounds {
		for _, c := range configs {
			b, err := os.ReadFile(filepath.Join(rd, c.ID+".txt"))
			if err != nil {
				return err
			}
			w, err := parseWrk(string(b))
			if err != nil {
				return fmt.Errorf("%s/%s: %v", filepath.Base(rd), c.ID, err)
			}
			runs[c.ID] = append(runs[c.ID], w)
		}
	}
	type med struct {
		rps      float64
		p50, p99 time.Duration
	}
	meds := map[string]med{}
	for _, c := range configs {
		var rps, p50, p99 []float64
		for _, w := range runs[c.ID] {
			rps = append(rps, w.RPS)
			p50 = append(p50, float64(w.P50))
			p99 = append(p99, float64(w.P99))
		}
		meds[c.ID] = med{median(rps), time.Duration(median(p50)), time.Duration(median(p99))}
	}
	base, ok := meds["proxy"]
	if !ok {
		return errors.New("configs.tsv has no \"proxy\" baseline")
	}
	fmt.Printf("Medians of %d interleaved rounds. Ratios are against plain `reverse_proxy` "+
		"and against the same terminal handler without any auth (own baseline).\n\n", len(rounds))
	fmt.Println("| Configuration | req/s | p50 | p99 | req/s ÷ proxy | p50 ÷ proxy | p99 ÷ proxy | req/s ÷ own baseline | p99 ÷ own baseline | responses |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
	for _, c := range configs {
		m := meds[c.ID]
		own, p99own := "—", "—"
		if ref, ok := meds[c.Terminal]; ok && c.Terminal != c.ID && c.Expect == 200 {
			own = pct(m.rps / ref.rps)
			p99own = pct(float64(m.p99) / float64(ref.p99))
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			c.Label, m.rps, us(m.p50), us(m.p99),
			pct(m.rps/base.rps), pct(float64(m.p50)/float64(base.p50)), pct(float64(m.p99)/float64(base.p99)),
			own, p99own, check(c, runs[c.ID]))
	}
	fmt.Printf("\nEvery round, req/s (in run order within a round):\n\n| Configuration |")
	for i := range rounds {
		fmt.Printf(" round %d |", i+1)
	}
	fmt.Printf("\n|---|%s\n", strings.Repeat("--:|", len(rounds)))
	for _, c := range configs {
		fmt.Printf("| %s |", c.Label)
		for _, w := range runs[c.ID] {
			fmt.Printf(" %.0f |", w.RPS)
		}
		fmt.Println()
	}
	return nil
}

func readConfigs(path string) ([]benchConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []benchConfig
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 4 {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		exp, err := strconv.Atoi(parts[3])
		if err != nil {
			return nil, fmt.Errorf("%s: bad status in %q", path, sc.Text())
		}
		out = append(out, benchConfig{ID: parts[0], Label: parts[1], Terminal: parts[2], Expect: exp})
	}
	return out, sc.Err()
}

// check summarises whether every response had the expected kind of status.
func check(c benchConfig, runs []wrkRun) string {
	var reqs, non2xx, sock int64
	for _, w := range runs {
		reqs += w.Requests
		non2xx += w.Non2xx
		sock += w.SockErrs
	}
	var s string
	switch {
	case c.Expect < 300 && non2xx == 0:
		s = "all 2xx"
	case c.Expect >= 400 && non2xx == reqs:
		s = fmt.Sprintf("all %d", c.Expect)
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

func pct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
