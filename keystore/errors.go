package keystore

import (
	"errors"
	"fmt"
)

// Errors callers decide on. Every error the keystore returns wraps at most one
// of these; compare with errors.Is. Validation errors travel through the log
// as a result Code (see codeErrors) so every replica reports the same one.
var (
	// ErrNotFound: no such tenant, key version, user, access key, bucket,
	// upload or manifest (or it belongs to another tenant).
	ErrNotFound = errors.New("keystore: not found")
	// ErrExists: the name or id is taken, or retired (tenant names are
	// never re-used once their tenant is deleted).
	ErrExists = errors.New("keystore: already exists")
	// ErrInvalid: a malformed name, role, state or argument.
	ErrInvalid = errors.New("keystore: invalid argument")
	// ErrNotEmpty: a bucket that still has uploads or manifests, or a tenant
	// that still owns buckets.
	ErrNotEmpty = errors.New("keystore: not empty")
	// ErrState: the requested transition is not allowed from the current
	// state (for example disabling the active key version).
	ErrState = errors.New("keystore: not allowed in the current state")
	// ErrDisabled: the access key, user, tenant or key version exists but
	// must not be used now.
	ErrDisabled = errors.New("keystore: disabled")
	// ErrExpired: the access key is past its expiry.
	ErrExpired = errors.New("keystore: expired")
	// ErrDestroyed: the key version was crypto-shredded; what it encrypted
	// is gone for good.
	ErrDestroyed = errors.New("keystore: key destroyed")
	// ErrSealed: a sealed record does not open under the storage key with its
	// identity: tampered, moved to another record, or from another root key.
	ErrSealed = errors.New("keystore: sealed record does not open")
	// ErrRootKey: the root key file is missing, too open or malformed.
	ErrRootKey = errors.New("keystore: root key unusable")
	// ErrSnapshot: a snapshot is malformed, truncated, tampered with or
	// written under another root key.
	ErrSnapshot = errors.New("keystore: bad snapshot")
	// ErrClosed: the store or log was closed.
	ErrClosed = errors.New("keystore: closed")
)

// Code is a command's outcome as recorded in its Result. Codes are part of the
// log format (dedup records keep them): never renumber.
type Code uint8

// Result codes.
const (
	CodeOK       Code = 0
	CodeNotFound Code = 1
	CodeExists   Code = 2
	CodeInvalid  Code = 3
	CodeNotEmpty Code = 4
	CodeState    Code = 5
	CodeDisabled Code = 6
)

var codeErrors = map[Code]error{
	CodeNotFound: ErrNotFound,
	CodeExists:   ErrExists,
	CodeInvalid:  ErrInvalid,
	CodeNotEmpty: ErrNotEmpty,
	CodeState:    ErrState,
	CodeDisabled: ErrDisabled,
}

// rejection is a validation error raised inside apply. It becomes the
// command's Result; any other error in apply is a panic.
type rejection struct {
	code Code
	msg  string
}

func (r *rejection) Error() string { return r.msg }

func reject(code Code, format string, args ...any) error {
	return &rejection{code: code, msg: fmt.Sprintf(format, args...)}
}
