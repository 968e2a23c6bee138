package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// Error is an admin API error as the client sees it.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

var (
	errForbidden = apiError(http.StatusForbidden, "AccessDenied", "Access Denied.")
	errNotFound  = apiError(http.StatusNotFound, "NotFound", "No such resource.")
	errTooLarge  = apiError(http.StatusRequestEntityTooLarge, "TooLarge", "The request body is too large.")
)

// codes is the one table from keystore errors to the API's codes and
// statuses.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{keystore.ErrNotFound, http.StatusNotFound, "NotFound"},
	{keystore.ErrExists, http.StatusConflict, "AlreadyExists"},
	{keystore.ErrInvalid, http.StatusBadRequest, "InvalidArgument"},
	{keystore.ErrNotEmpty, http.StatusConflict, "NotEmpty"},
	{keystore.ErrState, http.StatusConflict, "InvalidState"},
	{keystore.ErrDisabled, http.StatusConflict, "Disabled"},
	{keystore.ErrStale, http.StatusServiceUnavailable, "Unavailable"},
	{keystore.ErrClosed, http.StatusServiceUnavailable, "Unavailable"},
}

// toError maps err to what the client sees. Keystore messages name ids and
// names the caller gave or may see; anything unexpected is InternalError
// without details.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		status := http.StatusForbidden
		if ae.Code == "InvalidRequest" || ae.Code == "AuthorizationHeaderMalformed" || ae.Code == "InvalidArgument" {
			status = http.StatusBadRequest
		}
		return apiError(status, ae.Code, ae.Message)
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			if c.status == http.StatusNotFound {
				// Do not echo which record is missing: with tenant scoping
				// the message could tell another tenant's record from none.
				return errNotFound
			}
			return apiError(c.status, c.code, err.Error())
		}
	}
	return apiError(http.StatusInternalServerError, "InternalError", "Internal error; the server logged it.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
