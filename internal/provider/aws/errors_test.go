package awsprov

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ohfp/ohfp/internal/provider"
)

// apiErr builds an error shaped like the SDK's: an operation error around a
// response error with the HTTP status around the API error.
func apiErr(status int, code, msg string) error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "RunInstances", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err: &smithy.GenericAPIError{Code: code, Message: msg}},
		RequestID: "req",
	}}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		kind provider.Kind
		code string
	}{
		{"RequestLimitExceeded", apiErr(503, "RequestLimitExceeded", "Request limit exceeded."), provider.Throttled, "RequestLimitExceeded"},
		{"Throttling", apiErr(400, "Throttling", "Rate exceeded"), provider.Throttled, "Throttling"},
		{"ThrottlingException", apiErr(400, "ThrottlingException", "Rate exceeded"), provider.Throttled, "ThrottlingException"},
		{"unknown code with 429", apiErr(429, "SomethingNew", "x"), provider.Throttled, "SomethingNew"},
		{"InternalError", apiErr(500, "InternalError", "An internal error has occurred"), provider.Transient, "InternalError"},
		{"ServiceUnavailable", apiErr(503, "ServiceUnavailable", "x"), provider.Transient, "ServiceUnavailable"},
		{"Unavailable", apiErr(503, "Unavailable", "x"), provider.Transient, "Unavailable"},
		{"unknown code with 502", apiErr(502, "BadGateway", "x"), provider.Transient, "BadGateway"},
		{"InsufficientInstanceCapacity", apiErr(500, "InsufficientInstanceCapacity", "x"), provider.Capacity, "InsufficientInstanceCapacity"},
		{"InsufficientCapacity", apiErr(500, "InsufficientCapacity", "x"), provider.Capacity, "InsufficientCapacity"},
		{"InstanceLimitExceeded", apiErr(400, "InstanceLimitExceeded", "x"), provider.Quota, "InstanceLimitExceeded"},
		{"MaxSpotInstanceCountExceeded", apiErr(400, "MaxSpotInstanceCountExceeded", "x"), provider.Quota, "MaxSpotInstanceCountExceeded"},
		{"SpotMaxPriceTooLow", apiErr(400, "SpotMaxPriceTooLow", "x"), provider.Capacity, "SpotMaxPriceTooLow"},
		{"InsufficientHostCapacity", apiErr(500, "InsufficientHostCapacity", "x"), provider.Capacity, "InsufficientHostCapacity"},
		{"Unsupported", apiErr(400, "Unsupported", "Your requested instance type (c7i.large) is not supported in your requested Availability Zone (us-east-1e)."), provider.Capacity, "Unsupported"},
		{"InvalidAMIID.NotFound", apiErr(400, "InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist"), provider.Fatal, "InvalidAMIID.NotFound"},
		{"InvalidAMIID.Malformed", apiErr(400, "InvalidAMIID.Malformed", "x"), provider.Fatal, "InvalidAMIID.Malformed"},
		{"InvalidParameterValue", apiErr(400, "InvalidParameterValue", "x"), provider.Fatal, "InvalidParameterValue"},
		{"UnauthorizedOperation", apiErr(403, "UnauthorizedOperation", "You are not authorized to perform this operation."), provider.Fatal, "UnauthorizedOperation"},
		{"AuthFailure", apiErr(401, "AuthFailure", "x"), provider.Fatal, "AuthFailure"},
		{"bare API error", &smithy.GenericAPIError{Code: "InvalidSubnetID.NotFound", Message: "x"}, provider.Fatal, "InvalidSubnetID.NotFound"},
		{"5xx without a code", &smithy.OperationError{Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 504}}, Err: errors.New("gateway timeout")}}}, provider.Transient, ""},
		{"after retries", &retry.MaxAttemptsError{Attempt: 3, Err: apiErr(503, "RequestLimitExceeded", "x")}, provider.Throttled, "RequestLimitExceeded"},
		{"connection refused", &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}}, provider.Transient, ""},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), provider.Transient, ""},
		{"EOF", fmt.Errorf("deserialize: %w", io.ErrUnexpectedEOF), provider.Transient, ""},
		{"dial timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, provider.Transient, ""},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), provider.Transient, ""},
		{"plain error", errors.New("serialization failed: bad field"), provider.Fatal, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := classify("RunInstances", c.err)
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("classify gave %T", err)
			}
			if pe.Kind != c.kind || pe.Code != c.code || pe.Op != "RunInstances" {
				t.Errorf("got kind %v code %q, want %v %q", pe.Kind, pe.Code, c.kind, c.code)
			}
			if !errors.Is(err, c.err) {
				t.Error("the cause is not reachable with errors.Is")
			}
			if again := classify("Other", err); again != err {
				t.Error("classifying twice changed the error")
			}
		})
	}
	if classify("X", nil) != nil {
		t.Error("classify(nil) != nil")
	}
	// AWS's message is kept verbatim.
	err := classify("RunInstances", apiErr(403, "UnauthorizedOperation", "You are not authorized to perform this operation. Encoded authorization failure message: abc"))
	if want := "RunInstances: UnauthorizedOperation: You are not authorized to perform this operation. Encoded authorization failure message: abc"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
