package auth

import "context"

// StaticSecrets is a Secrets over a fixed map, for tests in this and other
// packages: access key id -> secret. Every key signs for the zero Principal
// with role "admin" unless Principals names another.
type StaticSecrets struct {
	Keys       map[string]string
	Principals map[string]Principal
}

// Secret implements Secrets.
func (s StaticSecrets) Secret(_ context.Context, accessKeyID string) ([]byte, Principal, error) {
	secret, ok := s.Keys[accessKeyID]
	if !ok {
		return nil, Principal{}, ErrUnknownAccessKey
	}
	p, ok := s.Principals[accessKeyID]
	if !ok {
		p = Principal{Role: "admin"}
	}
	return []byte(secret), p, nil
}
