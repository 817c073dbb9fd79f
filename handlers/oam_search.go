package handlers

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// searchFilter is a compiled SessionSearchQuery.
type searchFilter struct {
	key       *state.Key
	userID    string
	clientIP  string
	idStore   string
	imp       *bool
	attrs     map[string]string
	createdAt time.Time
	updatedAt time.Time
	accessAt  time.Time
	expiresAt time.Time
}

func (f *searchFilter) match(s *state.Session) bool {
	switch {
	case f.key != nil && s.Key != *f.key,
		f.userID != "" && s.UserID != f.userID,
		f.clientIP != "" && s.ClientIP != f.clientIP,
		f.idStore != "" && s.IDStoreName != f.idStore,
		f.imp != nil && s.IsImpersonating != *f.imp,
		s.CreateTime.Before(f.createdAt),
		s.UpdateTime.Before(f.updatedAt),
		s.LastAccessTime.Before(f.accessAt),
		s.ExpiryTime.Before(f.expiresAt):
		return false
	}
	for k, v := range f.attrs {
		if got, ok := s.UserAttributes[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// compileSearch merges the query parameters and the optional body.
func compileSearch(r *http.Request, body []byte, env *Env) (*searchFilter, error) {
	var q oamSearchQuery
	if len(bytes.TrimSpace(body)) > 0 {
		if err := DecodeJSON(body, &q); err != nil {
			return nil, err
		}
	}
	qs := r.URL.Query()
	if v := qs.Get("sessionId"); v != "" {
		q.SessionID = v
	}
	if v := qs.Get("userId"); v != "" {
		q.UserID = v
	}
	if v := qs.Get("idStore"); v != "" {
		q.IDStoreName = v
	}
	if q.UserID != "" {
		k, err := env.UserKey(r.Context(), q.UserID)
		if err != nil {
			return nil, &FieldError{Field: "userId", Msg: err.Error()}
		}
		q.UserID = k
	}
	f := &searchFilter{userID: q.UserID, clientIP: q.ClientIP, idStore: q.IDStoreName}
	if q.SessionID != "" {
		k := state.KeyOf(q.SessionID)
		f.key = &k
	}
	if q.IsImpersonating != nil {
		b := bool(*q.IsImpersonating)
		f.imp = &b
	}
	if len(q.UserAttributes) > 0 {
		f.attrs = make(map[string]string, len(q.UserAttributes))
		for k, v := range q.UserAttributes {
			f.attrs[k] = v.AttrValue
		}
	}
	for _, t := range []struct {
		field string
		in    string
		out   *time.Time
	}{
		{"createTime", q.CreateTime, &f.createdAt},
		{"updateTime", q.UpdateTime, &f.updatedAt},
		{"lastAccessTime", q.LastAccessTime, &f.accessAt},
		{"expiryTime", q.ExpiryTime, &f.expiresAt},
	} {
		if t.in == "" {
			continue
		}
		v, err := parseTime(t.field, t.in)
		if err != nil {
			return nil, err
		}
		*t.out = v
	}
	return f, nil
}

func (o *OAM) search(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(w, r)
	if err != nil {
		oamBadInput(w, err)
		return
	}
	f, err := compileSearch(r, body, o.Env)
	if err != nil {
		oamBadInput(w, err)
		return
	}
	ctx, cancel := o.Env.StoreContext(r)
	defer cancel()
	var found []*state.Session
	switch {
	case f.key != nil:
		s, err := o.Env.Store.Get(ctx, *f.key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			o.oamStoreFail(w, r, "get", err)
			return
		}
		if s != nil && f.match(s) {
			found = append(found, s)
		}
	case f.userID != "":
		ss, err := o.Env.Store.ByUser(ctx, f.userID)
		if err != nil {
			o.oamStoreFail(w, r, "list", err)
			return
		}
		for _, s := range ss {
			if f.match(s) {
				found = append(found, s)
			}
		}
	default:
		err := o.Env.Store.Scan(ctx, func(s *state.Session) bool {
			if f.match(s) {
				found = append(found, s)
			}
			return true
		})
		if err != nil {
			o.oamStoreFail(w, r, "scan", err)
			return
		}
	}
	if len(found) == 0 {
		oamFail(w, http.StatusNotFound, "no session matches the query", "")
		return
	}
	// Oldest first, as stores list a user's sessions; sessionIndex breaks
	// ties (times have one-second precision), so the answer is stable.
	slices.SortFunc(found, func(a, b *state.Session) int {
		if c := a.CreateTime.Compare(b.CreateTime); c != 0 {
			return c
		}
		return strings.Compare(a.Index, b.Index)
	})
	res := oamSearchResult{TotalRecords: len(found)}
	for i, s := range found {
		if i == o.Env.Policy.SearchResults() {
			break
		}
		res.Sessions.SessionData = append(res.Sessions.SessionData, toOAM(s, o.Env.SessionID(s)))
	}
	WriteJSON(w, http.StatusOK, "", res)
}
