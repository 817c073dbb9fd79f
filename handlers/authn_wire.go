package handlers

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
)

// The challenge flow's wire types (authn.md). Field names are matched in
// any letter case on input (encoding/json does so; XML is normalised to
// JSON first, see xmlToJSON) and emitted as documented.

// LooseString accepts a JSON string, number or boolean and keeps its text,
// so that an answer such as 123456 sent as a number still reads as a code.
type LooseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *LooseString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) > 0 && data[0] == '"':
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return typeError("string", "")
		}
		*s = LooseString(v)
	case len(data) > 0 && (data[0] == '-' || (data[0] >= '0' && data[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(data, &n); err != nil {
			return typeError(kindOf(data), "")
		}
		*s = LooseString(n.String())
	case string(data) == "true" || string(data) == "false":
		*s = LooseString(data)
	case string(data) == "null":
	default:
		return typeError(kindOf(data), "")
	}
	return nil
}

type authnClientInfo struct {
	ClientID     LooseString `json:"clientId"`
	ClientSecret LooseString `json:"clientSecret"`
	CType        LooseString `json:"ctype"`
}

type authnNameValue struct {
	Name  LooseString `json:"name"`
	Value LooseString `json:"value"`
}

type authnContext struct {
	IPAddress     LooseString      `json:"ipAddress"`
	UserAgent     LooseString      `json:"userAgent"`
	Resource      LooseString      `json:"resource"`
	Cookies       []authnNameValue `json:"cookies"`
	RequestParams []authnNameValue `json:"requestParams"`
	Headers       []authnNameValue `json:"headers"`
}

type authnUserInfo struct {
	UserID       LooseString   `json:"userId"`
	Groups       []LooseString `json:"groups"`
	UniqueUserID LooseString   `json:"uniqueUserId"`
	Locale       LooseString   `json:"locale"`
}

// authnRequest is the body of POST /authn/v1 (XML root AuthnRequest).
type authnRequest struct {
	ClientInfo      *authnClientInfo `json:"clientInfo"`
	Context         *authnContext    `json:"context"`
	TimeToLiveInSec *LooseInt        `json:"timeToLiveInSec"`
	UserInfo        *authnUserInfo   `json:"userInfo"`
	SessionID       LooseString      `json:"sessionId"`
}

type authnFactorAttrValue struct {
	Name      LooseString `json:"name"`
	Value     LooseString `json:"value"`
	IsEnabled *LooseBool  `json:"isEnabled"`
}

type authnFactorAttribute struct {
	FactorAttributeName  LooseString            `json:"factorAttributeName"`
	FactorAttributeValue []authnFactorAttrValue `json:"factorAttributeValue"`
}

type authnChallengeData struct {
	Factor           LooseString            `json:"factor"`
	UserID           LooseString            `json:"userId"`
	GroupID          LooseString            `json:"groupId"`
	UniqueUserID     LooseString            `json:"uniqueUserId"`
	FactorAttributes []authnFactorAttribute `json:"factorAttributes"`
}

// updateAuthnRequest is the body of PUT /authn/v1 (XML root
// UpdateAuthnRequest).
type updateAuthnRequest struct {
	ChallengeOp           LooseString         `json:"challengeop"`
	CorrelationID         LooseString         `json:"correlationId"`
	Nonce                 *LooseString        `json:"nonce"`
	ChallengeAnswer       *LooseString        `json:"challengeAnswer"`
	ChallengeData         *authnChallengeData `json:"challengedata"`
	ChallengeResult       LooseString         `json:"challengeResult"`
	ChallengeResultReason LooseString         `json:"challengeResultReason"`
}

// authnStatus is the status member of every answer.
type authnStatus struct {
	Code    string `json:"code" xml:"code"`
	Message string `json:"message" xml:"message"`
	Status  string `json:"status" xml:"status"`
}

type authnKeyValue struct {
	Key   string `json:"key" xml:"key"`
	Value string `json:"value" xml:"value"`
}

type authnAttrValue struct {
	Value string `json:"value" xml:"value"`
}

type authnAttr struct {
	Key   string         `json:"key" xml:"key"`
	Value authnAttrValue `json:"value" xml:"value"`
}

type authnFactorContext struct {
	ChallengeAttrMap []authnAttr     `json:"challengeAttrMap" xml:"challengeAttrMap"`
	Prompts          []authnKeyValue `json:"prompts" xml:"prompts"`
}

type authnChallengeInfo struct {
	Factor        string             `json:"factor" xml:"factor"`
	FactorContext authnFactorContext `json:"factorContext" xml:"factorContext"`
}

type authnInitContext struct {
	ChallengeInfo    []authnChallengeInfo `json:"challengeInfo" xml:"challengeInfo"`
	Cookies          []authnKeyValue      `json:"cookies" xml:"cookies"`
	FactorAttributes []authnKeyValue      `json:"factorAttributes" xml:"factorAttributes"`
	RequestParams    []authnKeyValue      `json:"requestParams" xml:"requestParams"`
}

// updateAuthnResponse is the 200 answer of both methods.
type updateAuthnResponse struct {
	XMLName       xml.Name          `json:"-" xml:"UpdateAuthnResponse"`
	Status        authnStatus       `json:"status" xml:"status"`
	CorrelationID string            `json:"correlationId" xml:"correlationId"`
	Nonce         string            `json:"nonce" xml:"nonce"`
	SessionID     string            `json:"sessionId,omitempty" xml:"sessionId,omitempty"`
	InitContext   *authnInitContext `json:"initContext,omitempty" xml:"initContext,omitempty"`
}

// authnAPIResponse is the error answer.
type authnAPIResponse struct {
	XMLName xml.Name    `json:"-" xml:"AuthnAPIResponse"`
	Status  authnStatus `json:"status" xml:"status"`
}

// maxXMLDepth bounds the nesting of an XML body.
const maxXMLDepth = 16

// authnListFields are the members that are arrays, by lower-case name: in
// XML a list is its element repeated, so one element must still decode as
// an array.
var authnListFields = map[string]bool{
	"groups": true, "cookies": true, "requestparams": true, "headers": true,
	"factorattributes": true, "factorattributevalue": true,
}

// decodeAuthn decodes body as JSON, or as XML with the given root element
// (any letter case) when asXML is set.
func decodeAuthn(body []byte, asXML bool, root string, v any) error {
	if !asXML {
		return DecodeJSON(body, v)
	}
	j, err := xmlToJSON(body, root)
	if err != nil {
		return err
	}
	return DecodeJSON(j, v)
}

// xmlNode is an element read by xmlToJSON.
type xmlNode struct {
	name     string
	text     strings.Builder
	children []*xmlNode
}

// xmlToJSON turns an XML document into the equivalent JSON object: an
// element with child elements becomes an object (repeated children and
// the members of authnListFields become arrays), any other element its
// text. Attributes are ignored. The root must be named root.
func xmlToJSON(body []byte, root string) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var stack []*xmlNode
	var top *xmlNode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &FieldError{Msg: "malformed XML"}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if top != nil && len(stack) == 0 {
				return nil, &FieldError{Msg: "malformed XML: more than one root element"}
			}
			if len(stack) >= maxXMLDepth {
				return nil, &FieldError{Msg: "XML nested too deeply"}
			}
			n := &xmlNode{name: t.Name.Local}
			if len(stack) == 0 {
				top = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.Directive:
			return nil, &FieldError{Msg: "XML directives (DOCTYPE) are not accepted"}
		}
	}
	if top == nil {
		return nil, &FieldError{Msg: "request body is empty"}
	}
	if !strings.EqualFold(top.name, root) {
		return nil, &FieldError{Msg: "the XML root element must be " + root}
	}
	return json.Marshal(top.value())
}

// value returns the JSON value of n.
func (n *xmlNode) value() any {
	if len(n.children) == 0 {
		return strings.TrimSpace(n.text.String())
	}
	obj := make(map[string]any, len(n.children))
	for _, c := range n.children {
		k := strings.ToLower(c.name)
		v := c.value()
		prev, seen := obj[k]
		switch {
		case !seen && authnListFields[k]:
			obj[k] = []any{v}
		case !seen:
			obj[k] = v
		default:
			// Only lists (and repetitions) hold []any: value() never
			// returns one for a single element.
			if list, ok := prev.([]any); ok {
				obj[k] = append(list, v)
			} else {
				obj[k] = []any{prev, v}
			}
		}
	}
	return obj
}

// writeAuthn writes v as XML or JSON.
func writeAuthn(w http.ResponseWriter, status int, asXML bool, v any) {
	if !asXML {
		WriteJSON(w, status, "", v)
		return
	}
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
