package state

// NameAttribute is the user attribute that holds a session's display name
// (the identity store's User.Name), set when the session is bound to a
// user the store knows. The gate exposes it as {http.auth.user.name}.
const NameAttribute = "name"

// SetDisplayName records the display name of the session's user in its
// UserAttributes; an empty name changes nothing.
func (s *Session) SetDisplayName(name string) {
	if name == "" {
		return
	}
	if s.UserAttributes == nil {
		s.UserAttributes = map[string]string{}
	}
	s.UserAttributes[NameAttribute] = name
}

// DisplayName returns the session user's display name: the name the
// identity store gave, else the login name, else the user id.
func (s *Session) DisplayName() string {
	if n := s.UserAttributes[NameAttribute]; n != "" {
		return n
	}
	if s.LoginName != "" {
		return s.LoginName
	}
	return s.UserID
}
