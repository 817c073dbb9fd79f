package caddymodule

import (
	"testing"
)

func TestParseOIDCRejections(t *testing.T) {
	ok := "issuer https://idp.example.com\nclient_id c\n"
	tests := []rejection{
		{"no name", "authsession {\noidc {\n" + ok + "}\n}", "'oidc'"},
		{"two names", "authsession {\noidc a b {\n" + ok + "}\n}", "'b'"},
		{"bad name", "authsession {\noidc Corp {\n" + ok + "}\n}", "lower-case letters"},
		{"no issuer", "authsession {\noidc corp {\nclient_id c\n}\n}", "needs an issuer and a client_id"},
		{"no client", "authsession {\noidc corp {\nissuer https://idp.example.com\n}\n}", "needs an issuer and a client_id"},
		{"issuer not a URL", "authsession {\noidc corp {\nissuer idp.example.com\nclient_id c\n}\n}", "http(s) URL"},
		{"unknown option", "authsession {\noidc corp {\n" + ok + "bogus 1\n}\n}", `unrecognized oidc option "bogus"`},
		{"repeated issuer", "authsession {\noidc corp {\n" + ok + "issuer https://x\n}\n}", "oidc issuer given twice"},
		{"second_factor bad", "authsession {\noidc corp {\n" + ok + "second_factor maybe\n}\n}", "second_factor must be"},
		{"flag with argument", "authsession {\noidc corp {\n" + ok + "backchannel_logout yes\n}\n}", "'yes'"},
		{"scopes empty", "authsession {\noidc corp {\n" + ok + "scopes\n}\n}", "'scopes'"},
		{"claims odd", "authsession {\noidc corp {\n" + ok + "claims id\n}\n}", "pairs of a name and a value"},
		{"claims field", "authsession {\noidc corp {\n" + ok + "claims {\nname x\n}\n}\n}", `unrecognized claims field "name"`},
		{"timeout bad", "authsession {\noidc corp {\n" + ok + "timeout soon\n}\n}", `"soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseApp(tt.input)
			assertRejected(t, err, tt.want)
		})
	}
}

func TestParseOIDCBlock(t *testing.T) {
	a, err := parseApp("authsession {\noidc corp {\nissuer https://idp.example.com\nclient_id c\nclaims {\nid oid login upn\nmail email\n}\nallowed_groups a b\n}\noidc other {\nissuer http://127.0.0.1:9\nclient_id d\n}\n}")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.OIDCProviders) != 2 {
		t.Fatalf("providers %+v", a.OIDCProviders)
	}
	c := a.OIDCProviders[0]
	if c.Claims == nil || c.Claims.ID != "oid" || c.Claims.Login != "upn" || c.Claims.Mail != "email" || len(c.AllowedGroups) != 2 {
		t.Fatalf("provider %+v", c)
	}
	a.OIDCProviders = append(a.OIDCProviders, a.OIDCProviders[1])
	if err := a.validateOIDC(); err == nil {
		t.Fatal("two providers of one name validated")
	}
}
