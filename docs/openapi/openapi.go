// Package openapi holds the OpenAPI 3.1 documents of the four API families,
// one file per family, written by hand from the product specification (not
// generated from the code). The `authsession api { openapi <path> }` option
// serves these bytes, and the contract tests (internal/contract) check every
// request and answer of the test suites against the same bytes.
package openapi

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Families lists the families that have a document, in the order the api
// handler mounts them; the document of family f is f + ".yaml".
var Families = []string{"oam", "risk-analyzer", "otp", "authn"}

// Document returns the document named name (e.g. "oam.yaml").
func Document(name string) ([]byte, bool) {
	if !strings.HasSuffix(name, ".yaml") || strings.Contains(name, "/") {
		return nil, false
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, false
	}
	return b, true
}

// Names returns the file names of every document, sorted.
func Names() []string {
	names, _ := fs.Glob(files, "*.yaml")
	slices.Sort(names)
	return names
}
