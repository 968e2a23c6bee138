package auth

import "context"

// Secrets looks up the secret of an access key id. The keystore implements
// it; SigV4 needs the secret itself (not a hash) because the verifier
// recomputes the signature.
type Secrets interface {
	// Secret returns the secret access key of accessKeyID and the
	// principal it signs for. An unknown, disabled or expired key is
	// ErrUnknownAccessKey. The returned slice is not retained after Verify
	// has derived the signing key from it.
	Secret(ctx context.Context, accessKeyID string) (secret []byte, p Principal, err error)
}

// Principal is who a verified request acts for, as the keystore fills it.
// It is deliberately minimal: what authorization decides on. A caller that
// needs more (the user's name, the key's state) looks the key up again by
// Result.AccessKeyID.
type Principal struct {
	Tenant [16]byte // the tenant the user is a team member of
	User   [16]byte // the user the access key belongs to
	Role   string   // the user's role in the tenant, e.g. "admin", "writer", "reader"
	// Confined principals reach only the buckets in Grants (bucket name to
	// role); keystore.BucketRole is the rule.
	Confined bool
	Grants   map[string]string
}
