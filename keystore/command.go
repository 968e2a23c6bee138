package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Op names what a command does. Op numbers are written into the log and the
// dedup records: never renumber or reuse one.
type Op uint8

// Operations. The payload of each is the struct named in its comment, kept
// in the file of the op's concept (tenants.go, users.go, ...).
const (
	OpBootstrap         Op = 1  // bootstrapPayload
	OpCreateTenant      Op = 2  // createTenantPayload
	OpSetTenantState    Op = 3  // setTenantStatePayload
	OpDeleteTenant      Op = 4  // deleteTenantPayload
	OpRotateKey         Op = 5  // rotateKeyPayload
	OpSetKeyState       Op = 6  // setKeyStatePayload
	OpCreateUser        Op = 7  // createUserPayload
	OpDeleteUser        Op = 8  // deleteUserPayload
	OpCreateAccessKey   Op = 9  // createAccessKeyPayload
	OpSetAccessKeyState Op = 10 // setAccessKeyStatePayload
	OpDeleteAccessKey   Op = 11 // deleteAccessKeyPayload
	OpCreateBucket      Op = 12 // createBucketPayload
	OpDeleteBucket      Op = 13 // deleteBucketPayload
	OpPutUpload         Op = 14 // putUploadPayload
	OpCompleteUpload    Op = 15 // completeUploadPayload
	OpAbortUpload       Op = 16 // abortUploadPayload
	OpPutManifest       Op = 17 // putManifestPayload
	OpDeleteManifest    Op = 18 // deleteManifestPayload
	OpSetUserRole       Op = 19 // setUserRolePayload
	// Ops 20 to 29: operators (operators.go), IP allowlists (allowlists.go)
	// and per-bucket grants (users.go).
	OpCreateOperator    Op = 20 // createOperatorPayload
	OpCreateOperatorKey Op = 21 // createOperatorKeyPayload
	OpSetAllowlist      Op = 22 // setAllowlistPayload
	OpSetUserGrant      Op = 23 // setUserGrantPayload
	// Ops 24 to 26: a tenant's admins created other than by its admins,
	// and its recovery key (recovery.go).
	OpCreateFirstAdmin  Op = 24 // createFirstAdminPayload
	OpRecoverTenant     Op = 25 // recoverTenantPayload
	OpRotateRecoveryKey Op = 26 // rotateRecoveryKeyPayload
	OpPrepareUpload     Op = 40 // prepareUploadPayload
	// Ops 30 to 39 are the audit log's, declared in audit.go.
)

var opNames = map[Op]string{
	OpBootstrap: "bootstrap", OpCreateTenant: "create-tenant", OpSetTenantState: "set-tenant-state",
	OpDeleteTenant: "delete-tenant", OpRotateKey: "rotate-key", OpSetKeyState: "set-key-state",
	OpCreateUser: "create-user", OpDeleteUser: "delete-user", OpCreateAccessKey: "create-access-key",
	OpSetAccessKeyState: "set-access-key-state", OpDeleteAccessKey: "delete-access-key",
	OpCreateBucket: "create-bucket", OpDeleteBucket: "delete-bucket", OpPutUpload: "put-upload",
	OpCompleteUpload: "complete-upload", OpAbortUpload: "abort-upload", OpPutManifest: "put-manifest",
	OpDeleteManifest: "delete-manifest", OpSetUserRole: "set-user-role", OpSetUserGrant: "set-user-grant",
	OpPrepareUpload:  "prepare-upload",
	OpCreateOperator: "create-operator", OpCreateOperatorKey: "create-operator-key", OpSetAllowlist: "set-allowlist",
	OpCreateFirstAdmin: "create-first-admin", OpRecoverTenant: "recover-tenant", OpRotateRecoveryKey: "rotate-recovery-key",
}

func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// commandVersion is the first byte of every encoded command.
const commandVersion = 1

// commandHeader is version, op and request id.
const commandHeader = 1 + 1 + 16

// MaxCommandSize bounds an encoded command. It keeps a batch of commands well
// inside one Badger transaction (whose limit is derived from the memtable
// size) and inside a Raft log entry; the largest legitimate command is a
// manifest of 10,000 parts, far below it.
const MaxCommandSize = 2 << 20

// Command is one change to the keystore, as it travels through the log.
// Everything apply needs is inside: it reads nothing else but the store.
type Command struct {
	Op Op
	// RequestID identifies the proposal for deduplication: the proposer
	// draws it at random and reuses it only to retry the same command.
	RequestID [16]byte
	// Payload is the op's payload struct, JSON encoded.
	Payload []byte
}

// MarshalBinary encodes c as described in the package documentation.
func (c Command) MarshalBinary() ([]byte, error) {
	if len(c.Payload)+commandHeader > MaxCommandSize {
		return nil, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrInvalid, len(c.Payload)+commandHeader, MaxCommandSize)
	}
	b := make([]byte, 0, commandHeader+len(c.Payload))
	b = append(b, commandVersion, byte(c.Op))
	b = append(b, c.RequestID[:]...)
	return append(b, c.Payload...), nil
}

// UnmarshalBinary decodes a command encoded by MarshalBinary.
func (c *Command) UnmarshalBinary(b []byte) error {
	if len(b) < commandHeader {
		return errors.New("keystore: command too short")
	}
	if b[0] != commandVersion {
		return fmt.Errorf("keystore: unknown command version %d", b[0])
	}
	c.Op = Op(b[1])
	copy(c.RequestID[:], b[2:commandHeader])
	c.Payload = append([]byte(nil), b[commandHeader:]...)
	return nil
}

// newCommand builds a command with payload p and a fresh request id.
func newCommand(op Op, requestID [16]byte, p any) (Command, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return Command{}, fmt.Errorf("keystore: encode %v payload: %w", op, err)
	}
	c := Command{Op: op, RequestID: requestID, Payload: b}
	if len(b)+commandHeader > MaxCommandSize {
		return Command{}, fmt.Errorf("%w: %v command of %d bytes exceeds %d", ErrInvalid, op, len(b)+commandHeader, MaxCommandSize)
	}
	return c, nil
}

// Result is what applying a command produced. It is stored with the request
// id, so a replayed command returns the very same Result.
type Result struct {
	// Code is CodeOK or the validation error that rejected the command.
	Code Code `json:"c"`
	// Message explains a rejection.
	Message string `json:"m,omitempty"`
	// Value is the JSON encoding of the op's outcome (the created record).
	Value json.RawMessage `json:"v,omitempty"`
}

// Err returns nil for CodeOK, else an error wrapping the code's sentinel.
func (r Result) Err() error {
	if r.Code == CodeOK {
		return nil
	}
	sentinel, ok := codeErrors[r.Code]
	if !ok {
		return fmt.Errorf("keystore: unknown result code %d: %s", r.Code, r.Message)
	}
	return fmt.Errorf("%w: %s", sentinel, r.Message)
}
