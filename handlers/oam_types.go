package handlers

import (
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// OAMBase is the access-manager family's base path.
const OAMBase = "/oam/services/rest/access/api/v1"

// nameValue is OAM's NameValueAttribute.
type nameValue struct {
	AttrName  string `json:"attrName"`
	AttrValue string `json:"attrValue"`
}

// oamSessionData is OAM's SessionData, as received and as answered.
type oamSessionData struct {
	UserID          *string              `json:"userId"`
	SessionID       string               `json:"sessionId,omitempty"`
	SessionIndex    string               `json:"sessionIndex,omitempty"`
	ClientIP        string               `json:"clientIp,omitempty"`
	CreateTime      string               `json:"createTime,omitempty"`
	UpdateTime      string               `json:"updateTime,omitempty"`
	LastAccessTime  string               `json:"lastAccessTime,omitempty"`
	ExpiryTime      string               `json:"expiryTime,omitempty"`
	IDStoreName     string               `json:"idStoreName,omitempty"`
	IsImpersonating *LooseBool           `json:"isImpersonating,omitempty"`
	UserAttributes  map[string]nameValue `json:"userAttributes,omitempty"`
}

// oamSearchQuery is OAM's SessionSearchQuery. Time fields select sessions
// whose corresponding time is at or after the given instant [D].
type oamSearchQuery struct {
	SessionID       string               `json:"sessionId"`
	UserID          string               `json:"userId"`
	ClientIP        string               `json:"clientIp"`
	IDStoreName     string               `json:"idStoreName"`
	IsImpersonating *LooseBool           `json:"isImpersonating"`
	UserAttributes  map[string]nameValue `json:"userAttributes"`
	CreateTime      string               `json:"createTime"`
	UpdateTime      string               `json:"updateTime"`
	LastAccessTime  string               `json:"lastAccessTime"`
	ExpiryTime      string               `json:"expiryTime"`
	FromIndex       *LooseInt            `json:"fromIndex"`
	PageSize        *LooseInt            `json:"pageSize"`
}

type oamSearchResult struct {
	TotalRecords int `json:"totalRecords"`
	Sessions     struct {
		SessionData []oamSessionData `json:"sessionData"`
	} `json:"sessions"`
}

// oamError is the family's error body.
type oamError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Fields  string `json:"fields,omitempty"`
}

// toOAM renders s as SessionData; id is the clear session id if known.
func toOAM(s *state.Session, id string) oamSessionData {
	uid := s.UserID
	imp := LooseBool(s.IsImpersonating)
	d := oamSessionData{
		UserID:          &uid,
		SessionID:       id,
		SessionIndex:    s.Index,
		ClientIP:        s.ClientIP,
		CreateTime:      Timestamp(s.CreateTime),
		UpdateTime:      Timestamp(s.UpdateTime),
		LastAccessTime:  Timestamp(s.LastAccessTime),
		ExpiryTime:      Timestamp(s.ExpiryTime),
		IDStoreName:     s.IDStoreName,
		IsImpersonating: &imp,
	}
	if len(s.UserAttributes) > 0 {
		d.UserAttributes = make(map[string]nameValue, len(s.UserAttributes))
		for k, v := range s.UserAttributes {
			d.UserAttributes[k] = nameValue{AttrName: k, AttrValue: v}
		}
	}
	return d
}

// parseTime parses an RFC 3339 wire time.
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Msg: "must be an RFC 3339 date-time"}
	}
	return t.UTC(), nil
}
