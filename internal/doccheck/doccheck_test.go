// Package doccheck checks the repository's Markdown: every relative link or
// image must point at a file that exists and, for a #fragment into a
// Markdown file, at a heading that produces that anchor on GitHub. It also
// keeps the README small. It has tests only.
package doccheck

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// maxREADME is the README's size limit in bytes.
const maxREADME = 12 * 1024

// skipDirs are directories never searched for Markdown files.
var skipDirs = []string{".git", "bin", "artifacts", "node_modules"}

func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	problems, files, err := checkTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no Markdown file found under %s", root)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func TestREADMESize(t *testing.T) {
	fi, err := os.Stat(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxREADME {
		t.Errorf("README.md is %d bytes; keep it at most %d and move details to docs/", fi.Size(), maxREADME)
	}
}

// TestCheckerFindsBrokenLinks runs the checker on a small tree with one of
// each kind of good and broken link.
func TestCheckerFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", strings.Join([]string{
		"# Title",
		"[ok](docs/a.md) [ok](docs/a.md#the-gate-authsession-gate) [ok](#title) [ok](<docs/a.md>)",
		"![ok](img.png) [ok](https://example.com/x.md) [ok](mailto:a@example.com) [ok](docs/)",
		"[bad file](docs/missing.md)",
		"[bad anchor](docs/a.md#nowhere)",
		"[bad here](#no-such-heading)",
		"![bad image](missing.png)",
		"[bad outside](../outside.md)",
		"[ref bad][r]",
		"",
		"[r]: docs/nope.md",
		"",
		"```",
		"[ignored](in/a/code/block.md)",
		"```",
		"and `[ignored](in/code/span.md)` too",
	}, "\n"))
	write("img.png", "")
	write("docs/a.md", strings.Join([]string{
		"# The gate: `authsession gate`",
		"Setext heading",
		"==============",
		"[ok](../README.md#title) [ok](a.md#setext-heading) [ok](#the-gate-authsession-gate-1)",
		"## The gate: `authsession gate`",
	}, "\n"))

	problems, files, err := checkTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 {
		t.Errorf("checked %d files, want 2", files)
	}
	want := []string{"docs/missing.md", "docs/a.md#nowhere", "#no-such-heading", "missing.png", "../outside.md", "docs/nope.md"}
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "("+w+")") }) {
			t.Errorf("no problem reported for %s; got:\n%s", w, strings.Join(problems, "\n"))
		}
	}
}

func TestSlug(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Two commands", "two-commands"},
		{"The gate: `authsession gate`", "the-gate-authsession-gate"},
		{"The challenge flow API (`/authn/v1`)", "the-challenge-flow-api-authnv1"},
		{"What \"log in as anyone\" means", "what-log-in-as-anyone-means"},
		{"store_timeout and `max_ttl`", "store_timeout-and-max_ttl"},
		{"A [link](x.md) in it", "a-link-in-it"},
		{"Ünïcode – dash", "ünïcode--dash"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

// repoRoot is the directory holding go.mod, above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// checkTree checks every Markdown file under root and returns the problems
// found and the number of files checked.
func checkTree(root string) ([]string, int, error) {
	var mds []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && slices.Contains(skipDirs, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == ".git" {
			return nil // a worktree's .git file
		}
		if strings.EqualFold(filepath.Ext(p), ".md") {
			mds = append(mds, p)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	c := &checker{root: root, docs: map[string]*doc{}}
	var problems []string
	for _, p := range mds {
		d, err := c.load(p)
		if err != nil {
			return nil, 0, err
		}
		for _, l := range d.links {
			if msg := c.check(p, l.target); msg != "" {
				rel, _ := filepath.Rel(root, p)
				problems = append(problems, fmt.Sprintf("%s:%d: link (%s): %s", filepath.ToSlash(rel), l.line, l.target, msg))
			}
		}
	}
	return problems, len(mds), nil
}

// link is one link or image target of a file.
type link struct {
	target string
	line   int
}

// doc is what the checker needs of a Markdown file.
type doc struct {
	links   []link
	anchors map[string]bool
}

type checker struct {
	root string
	docs map[string]*doc
}

var (
	// inlineLink matches [text](target "title") and ![alt](target).
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDef matches a link reference definition: [label]: target
	refDef   = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	atx      = regexp.MustCompile(`^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$`)
	setext   = regexp.MustCompile(`^ {0,3}(=+|-+)\s*$`)
	fence    = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	codeSpan = regexp.MustCompile("(`+)[^`]*?`+")
	htmlID   = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	scheme   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// load reads and parses the Markdown file at p, once.
func (c *checker) load(p string) (*doc, error) {
	if d, ok := c.docs[p]; ok {
		return d, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	addHeading := func(text string) {
		s := slug(text)
		if n := seen[s]; n > 0 {
			d.anchors[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			d.anchors[s] = true
		}
		seen[s]++
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var inFence string
	prev := "" // the previous line, if it could be a setext heading's text
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case inFence == "":
				inFence = m[1]
			case m[1][0] == inFence[0] && len(m[1]) >= len(inFence):
				inFence = ""
			}
			prev = ""
			continue
		}
		if inFence != "" {
			continue
		}
		for _, m := range htmlID.FindAllStringSubmatch(line, -1) {
			d.anchors[m[1]] = true
		}
		if m := atx.FindStringSubmatch(line); m != nil {
			addHeading(m[2])
			prev = ""
			continue
		}
		if setext.MatchString(line) && strings.TrimSpace(prev) != "" {
			addHeading(strings.TrimSpace(prev))
			prev = ""
			continue
		}
		// Code spans may hold text that looks like a link: blank them out
		// (keeping the length) before looking for links.
		text := codeSpan.ReplaceAllStringFunc(line, func(s string) string { return strings.Repeat("x", len(s)) })
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			d.links = append(d.links, link{target: strings.Trim(m[1], "<>"), line: n})
		}
		if m := refDef.FindStringSubmatch(text); m != nil {
			d.links = append(d.links, link{target: strings.Trim(m[1], "<>"), line: n})
		}
		prev = line
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "|") {
			prev = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	c.docs[p] = d
	return d, nil
}

// check returns what is wrong with target, a link in the file from, or "".
func (c *checker) check(from, target string) string {
	if target == "" {
		return "empty target"
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // http:, https:, mailto: and other absolute URLs are not checked
	}
	pathPart, frag, _ := strings.Cut(target, "#")
	if i := strings.IndexByte(pathPart, '?'); i >= 0 {
		pathPart = pathPart[:i]
	}
	dest := from
	if pathPart != "" {
		unescaped, err := url.PathUnescape(pathPart)
		if err != nil {
			return "bad escape in path"
		}
		if strings.HasPrefix(unescaped, "/") {
			dest = filepath.Join(c.root, filepath.FromSlash(unescaped))
		} else {
			dest = filepath.Join(filepath.Dir(from), filepath.FromSlash(unescaped))
		}
		rel, err := filepath.Rel(c.root, dest)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "points outside the repository"
		}
		if _, err := os.Stat(dest); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "no such file"
			}
			return err.Error()
		}
	}
	if frag == "" || !strings.EqualFold(filepath.Ext(dest), ".md") {
		return ""
	}
	d, err := c.load(dest)
	if err != nil {
		return err.Error()
	}
	anchor, err := url.PathUnescape(frag)
	if err != nil {
		return "bad escape in anchor"
	}
	if !d.anchors[strings.ToLower(anchor)] {
		return "no heading makes the anchor #" + anchor
	}
	return ""
}

// mdLink matches a Markdown link inside heading text, to keep its text.
var mdLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// slug returns the anchor GitHub makes for a heading: the text without
// Markdown links, lowercased, with every character that is not a letter, a
// digit, a space, '-' or '_' dropped, and each space turned into '-'.
func slug(heading string) string {
	heading = mdLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
