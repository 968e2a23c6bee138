package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/envelope"
	"github.com/tresor-gw/tresor/keystore"
)

// APIError is an S3 error as the client sees it: a code from the S3 API
// reference ("Error responses"), its HTTP status and a message.
type APIError struct {
	Code    string
	Status  int
	Message string
	// Header names the request header a refusal is about, ArgumentName
	// and ArgumentValue the argument an InvalidArgument is about; S3
	// sends them as elements of the error document. Empty ones are left
	// out.
	Header, ArgumentName, ArgumentValue string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// s3Errors is the one table of S3 error codes the gateway answers with.
// Handlers return errors; writeError maps them through here, so the
// vocabulary is audited in one place.
var s3Errors = map[string]APIError{
	"AccessDenied":                      {Status: http.StatusForbidden, Message: "Access Denied."},
	"AuthorizationHeaderMalformed":      {Status: http.StatusBadRequest, Message: "The authorization header is malformed."},
	"AuthorizationQueryParametersError": {Status: http.StatusBadRequest, Message: "Error parsing the X-Amz-Credential parameter."},
	"BadDigest":                         {Status: http.StatusBadRequest, Message: "The Content-MD5 or checksum you specified did not match what we received."},
	"BucketAlreadyExists":               {Status: http.StatusConflict, Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."},
	"BucketAlreadyOwnedByYou":           {Status: http.StatusConflict, Message: "Your previous request to create the named bucket succeeded and you already own it."},
	"BucketNotEmpty":                    {Status: http.StatusConflict, Message: "The bucket you tried to delete is not empty."},
	"EntityTooLarge":                    {Status: http.StatusBadRequest, Message: "Your proposed upload exceeds the maximum allowed object size."},
	"EntityTooSmall":                    {Status: http.StatusBadRequest, Message: "Your proposed upload is smaller than the minimum allowed object size."},
	"IncompleteBody":                    {Status: http.StatusBadRequest, Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                     {Status: http.StatusInternalServerError, Message: "We encountered an internal error. Please try again."},
	"InvalidAccessKeyId":                {Status: http.StatusForbidden, Message: "The AWS access key Id you provided does not exist in our records."},
	"InvalidArgument":                   {Status: http.StatusBadRequest, Message: "Invalid Argument."},
	"InvalidBucketName":                 {Status: http.StatusBadRequest, Message: "The specified bucket is not valid."},
	"InvalidDigest":                     {Status: http.StatusBadRequest, Message: "The Content-MD5 you specified is not valid."},
	"InvalidPart":                       {Status: http.StatusBadRequest, Message: "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	"InvalidPartOrder":                  {Status: http.StatusBadRequest, Message: "The list of parts was not in ascending order. The parts list must be specified in order by part number."},
	"InvalidPartNumber":                 {Status: http.StatusRequestedRangeNotSatisfiable, Message: "The requested partnumber is not satisfiable."},
	"InvalidRange":                      {Status: http.StatusRequestedRangeNotSatisfiable, Message: "The requested range is not satisfiable."},
	"InvalidRequest":                    {Status: http.StatusBadRequest, Message: "Invalid Request."},
	"KeyTooLongError":                   {Status: http.StatusBadRequest, Message: "Your key is too long."},
	"MalformedXML":                      {Status: http.StatusBadRequest, Message: "The XML you provided was not well-formed or did not validate against our published schema."},
	"MalformedTrailerError":             {Status: http.StatusBadRequest, Message: "The request contained trailing data that was not well-formed or did not conform to our published schema."},
	"MetadataTooLarge":                  {Status: http.StatusBadRequest, Message: "Your metadata headers exceed the maximum allowed metadata size."},
	"MethodNotAllowed":                  {Status: http.StatusMethodNotAllowed, Message: "The specified method is not allowed against this resource."},
	"MissingContentLength":              {Status: http.StatusLengthRequired, Message: "You must provide the Content-Length HTTP header."},
	"MissingSecurityHeader":             {Status: http.StatusBadRequest, Message: "Your request is missing a required header."},
	"NoSuchBucket":                      {Status: http.StatusNotFound, Message: "The specified bucket does not exist."},
	"NoSuchKey":                         {Status: http.StatusNotFound, Message: "The specified key does not exist."},
	"NoSuchUpload":                      {Status: http.StatusNotFound, Message: "The specified multipart upload does not exist. The upload ID might not be valid, or the multipart upload might have been aborted or completed."},
	"NoSuchVersion":                     {Status: http.StatusNotFound, Message: "The specified version does not exist."},
	"NotImplemented":                    {Status: http.StatusNotImplemented, Message: "A header or query you provided implies functionality that is not implemented."},
	"PreconditionFailed":                {Status: http.StatusPreconditionFailed, Message: "At least one of the preconditions you specified did not hold."},
	"RequestTimeTooSkewed":              {Status: http.StatusForbidden, Message: "The difference between the request time and the server's time is too large."},
	"ServiceUnavailable":                {Status: http.StatusServiceUnavailable, Message: "Please reduce your request rate."},
	"SignatureDoesNotMatch":             {Status: http.StatusForbidden, Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	"SlowDown":                          {Status: http.StatusServiceUnavailable, Message: "Please reduce your request rate."},
	"XAmzContentSHA256Mismatch":         {Status: http.StatusBadRequest, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."},

	// Request documents: a body over its bound, and CreateBucket's location
	// constraint (checkLocation).
	"MaxMessageLengthExceeded":           {Status: http.StatusBadRequest, Message: "Your request was too big."},
	"InvalidLocationConstraint":          {Status: http.StatusBadRequest, Message: "The specified location-constraint is not valid"},
	"IllegalLocationConstraintException": {Status: http.StatusBadRequest, Message: "The location constraint is incompatible for the region specific endpoint this request was sent to."},

	// Refusals of request headers that promise what tresor does not do
	// (headers.go), and of session tokens, which tresor never issues.
	"AccessControlListNotSupported":       {Status: http.StatusBadRequest, Message: "The bucket does not allow ACLs."},
	"InvalidBucketAclWithObjectOwnership": {Status: http.StatusBadRequest, Message: "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"},
	"InvalidStorageClass":                 {Status: http.StatusBadRequest, Message: "The storage class you specified is not valid"},
	"InvalidToken":                        {Status: http.StatusBadRequest, Message: "The provided token is malformed or otherwise invalid."},
	"KMS.NotFoundException":               {Status: http.StatusBadRequest, Message: "The request was rejected because the specified entity or resource could not be found."},
}

// s3Error returns the table's error for code with an optional message that
// replaces the generic one. An unknown code is a programming error and
// becomes InternalError.
func s3Error(code string, msg ...string) *APIError {
	e, ok := s3Errors[code]
	if !ok {
		e = s3Errors["InternalError"]
		code = "InternalError"
	}
	e.Code = code
	if len(msg) > 0 && msg[0] != "" {
		e.Message = msg[0]
	}
	return &e
}

// backendErrors maps the backend's sentinels to S3 codes.
var backendErrors = []struct {
	err  error
	code string
}{
	{backend.ErrNotFound, "NoSuchKey"},
	{backend.ErrUploadNotFound, "NoSuchUpload"},
	{backend.ErrInvalidPart, "InvalidPart"},
	{backend.ErrInvalidRange, "InvalidRange"},
	{backend.ErrIncompleteBody, "IncompleteBody"},
	{backend.ErrInvalidKey, "KeyTooLongError"},
	{backend.ErrInvalidBucket, "InvalidBucketName"},
	{backend.ErrPreconditionFailed, "PreconditionFailed"},
}

// toAPIError maps any error a handler returns to the S3 error the client
// gets. Errors nothing here recognises are internal errors: their text is
// logged, never sent.
func toAPIError(err error) *APIError {
	var api *APIError
	if errors.As(err, &api) {
		return api
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return s3Error(ae.Code, ae.Message)
	}
	if errors.Is(err, keystore.ErrStale) {
		// This node has not heard from the Raft leader within the keystore's
		// max-staleness: it refuses to serve from possibly stale keys and
		// rules, and the client retries, here or at another zone's node.
		return s3Error("ServiceUnavailable", "This node cannot confirm its keys are current; retry.")
	}
	// The object's tenant key version no longer decrypts: the tenant
	// disabled it or crypto-shredded it (or the tenant is suspended). Not
	// an integrity failure and nothing a retry fixes.
	if errors.Is(err, keystore.ErrDestroyed) {
		return s3Error("AccessDenied", "The key this object was encrypted under was destroyed: the object can no longer be read.")
	}
	if errors.Is(err, keystore.ErrDisabled) {
		return s3Error("AccessDenied", "The key this object was encrypted under is disabled.")
	}
	if errors.Is(err, errOverwritten) {
		return s3Error("ServiceUnavailable", "The object was overwritten while it was read, again and again; retry.")
	}
	if errors.Is(err, envelope.ErrSizeMismatch) {
		return s3Error("IncompleteBody")
	}
	if errors.Is(err, envelope.ErrAuthentication) || errors.Is(err, envelope.ErrMalformed) ||
		errors.Is(err, envelope.ErrUnsupportedVersion) || errors.Is(err, envelope.ErrUnsupportedSuite) {
		// The stored object, its envelope or its manifest did not
		// authenticate: tampered, swapped or truncated in the backend, or
		// its key version is gone. Nothing of it is served.
		return s3Error("InternalError", "The stored object failed integrity verification and cannot be served.")
	}
	for _, m := range backendErrors {
		if errors.Is(err, m.err) {
			return s3Error(m.code)
		}
	}
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads this answer.
		return s3Error("InternalError", "The request was canceled.")
	}
	return s3Error("InternalError")
}

// errorBody is S3's error document.
type errorBody struct {
	XMLName       xml.Name `xml:"Error"`
	Code          string   `xml:"Code"`
	Message       string   `xml:"Message"`
	Header        string   `xml:"Header,omitempty"`
	ArgumentName  string   `xml:"ArgumentName,omitempty"`
	ArgumentValue string   `xml:"ArgumentValue,omitempty"`
	Resource      string   `xml:"Resource,omitempty"`
	RequestID     string   `xml:"RequestId"`
	HostID        string   `xml:"HostId"`
}

// writeError answers with e as S3's XML error document. HEAD responses
// carry no body, as in S3.
func writeError(w http.ResponseWriter, r *http.Request, reqID string, e *APIError) {
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Del("Content-Length")
	h.Del("ETag")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorBody{
		Code:          e.Code,
		Message:       e.Message,
		Header:        e.Header,
		ArgumentName:  e.ArgumentName,
		ArgumentValue: e.ArgumentValue,
		Resource:      r.URL.Path,
		RequestID:     reqID,
		HostID:        reqID,
	})
}
