package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authsession/caddy-authsession/docs/openapi"
)

// TestOpenAPIServed fetches the OpenAPI documents from a live server
// (`authsession api { openapi /openapi }`): the served families' documents
// are the embedded bytes and load as valid OpenAPI 3.1; the others are not
// served, and without the option nothing is.
func TestOpenAPIServed(t *testing.T) {
	_, port := newTester(t, `{
	{ADMIN}
	http_port {PORT}
}
http://localhost:{PORT} {
	route /openapi/* {
		authsession api oam authn {
			openapi /openapi
		}
	}
	authsession api risk_analyzer
	respond "next handler" 200
}
`)
	base := fmt.Sprintf("http://localhost:%d", port)
	get := func(method, path string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	for _, name := range []string{"oam.yaml", "authn.yaml"} {
		code, hdr, body := get("GET", "/openapi/"+name)
		want, _ := openapi.Document(name)
		if code != 200 || hdr.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, want) {
			t.Fatalf("GET /openapi/%s: %d %q, %d bytes (want %d)", name, code, hdr.Get("Content-Type"), len(body), len(want))
		}
		doc, err := openapi3.NewLoader().LoadFromData(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code, _, body := get("HEAD", "/openapi/"+name); code != 200 || len(body) != 0 {
			t.Errorf("HEAD /openapi/%s: %d, %d bytes", name, code, len(body))
		}
		if code, hdr, _ := get("POST", "/openapi/"+name); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST /openapi/%s: %d, Allow %q", name, code, hdr.Get("Allow"))
		}
	}
	// Families the handler does not serve, and unknown names, go on to the
	// next handler; so does everything when the option is off.
	for _, path := range []string{"/openapi/otp.yaml", "/openapi/risk-analyzer.yaml", "/openapi/nope.yaml", "/openapi/oam.yaml/x"} {
		if code, _, body := get("GET", path); code != 200 || string(body) != "next handler" {
			t.Errorf("GET %s: %d %q, want the next handler", path, code, body)
		}
	}
}
