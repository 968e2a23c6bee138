package bench

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// errClass names the kind of a failed request, with bounded cardinality,
// for the report: the S3 error code and HTTP status when the gateway
// answered, else what the connection did.
func errClass(err error) string {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	status := ""
	if errors.As(err, &re) {
		status = " " + strconv.Itoa(re.HTTPStatusCode())
	}
	switch {
	case errors.As(err, &ae):
		return ae.ErrorCode() + status
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case strings.Contains(err.Error(), "EOF"):
		return "connection closed"
	case status != "":
		return "http" + status
	}
	return "other"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
