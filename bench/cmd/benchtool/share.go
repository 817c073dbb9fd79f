package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// runShare reads the samples of `perf script -F ip,sym` (a call graph per
// sample, leaf first, samples separated by blank lines) and prints the
// share of them spent in a handler's own work: samples whose stack holds
// -func (matched at the end of a frame's symbol) but not, below its
// outermost call, a frame containing -next (the next handler). It then
// lists what that work was, by the function the handler called.
func runShare(args []string) error {
	fs := flag.NewFlagSet("share", flag.ContinueOnError)
	fn := fs.String("func", "", "the handler's ServeHTTP, as the end of its symbol")
	next := fs.String("next", "caddyhttp.HandlerFunc.ServeHTTP", "a frame of the next handler's call, as part of its symbol")
	top := fs.Int("top", 12, "callees to list")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fn == "" {
		return errors.New("-func is required")
	}
	sh, err := shareOf(os.Stdin, *fn, *next)
	if err != nil {
		return err
	}
	if sh.total == 0 {
		return errors.New("no samples on standard input")
	}
	fmt.Printf("samples %d, own %d, share %.2f%%\n", sh.total, sh.own, 100*float64(sh.own)/float64(sh.total))
	type kv struct {
		k string
		n int
	}
	var calls []kv
	for k, n := range sh.callees {
		calls = append(calls, kv{k, n})
	}
	slices.SortFunc(calls, func(a, b kv) int { return cmp.Or(b.n-a.n, strings.Compare(a.k, b.k)) })
	for i, c := range calls {
		if i == *top {
			break
		}
		fmt.Printf("  %6.2f%%  %s\n", 100*float64(c.n)/float64(sh.total), c.k)
	}
	return nil
}

// share is what shareOf counted.
type share struct {
	total, own int
	// callees counts the own samples by the frame just below the
	// handler's ("(self)" when the handler itself ran).
	callees map[string]int
}

// shareOf counts the samples of r (see runShare).
func shareOf(r io.Reader, fn, next string) (share, error) {
	sh := share{callees: map[string]int{}}
	var frames []string
	flush := func() {
		if len(frames) == 0 {
			return
		}
		sh.total++
		at := -1 // the outermost frame of fn
		for i, f := range frames {
			if strings.HasSuffix(f, fn) {
				at = i
			}
		}
		if at >= 0 && !slices.ContainsFunc(frames[:at], func(f string) bool { return strings.Contains(f, next) }) {
			sh.own++
			callee := "(self)"
			if at > 0 {
				callee = frames[at-1]
			}
			sh.callees[callee]++
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		// "<address> <symbol>"; a frame without a symbol keeps its address.
		if _, sym, ok := strings.Cut(line, " "); ok {
			line = sym
		}
		frames = append(frames, line)
	}
	flush()
	return sh, sc.Err()
}
