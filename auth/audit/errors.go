package audit

import "errors"

// Errors callers decide on.
var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrUnavailable is returned by Append while the log cannot write:
	// it takes no records (fail closed) until it has recovered (Ready).
	ErrUnavailable = errors.New("audit: log unavailable")
	// ErrCorrupt means a file of the log does not parse.
	ErrCorrupt = errors.New("audit: corrupt")
	// ErrTampered means the log does not match its signed checkpoints;
	// Open refuses such a directory, Verify explains what is wrong.
	ErrTampered = errors.New("audit: log does not match its checkpoints")
	// ErrInvalid is a record or configuration that cannot be used.
	ErrInvalid = errors.New("audit: invalid")
	// ErrNoKey means the key to open a record's tenant fields is not
	// available (not given, disabled or destroyed: crypto-shredded).
	ErrNoKey = errors.New("audit: tenant key unavailable")
)
