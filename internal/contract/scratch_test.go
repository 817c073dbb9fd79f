package contract

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authsession/caddy-authsession/docs/openapi"
)

func TestScratchLoad(t *testing.T) {
	for _, n := range openapi.Names() {
		b, _ := openapi.Document(n)
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(b)
		if err != nil {
			t.Fatal(n, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatal(n, err)
		}
		t.Log(n, doc.IsOpenAPI31OrLater())
	}
}
