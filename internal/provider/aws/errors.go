package awsprov

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ohfp/ohfp/internal/provider"
)

// throttleCodes are the AWS error codes that mean "slow down".
var throttleCodes = map[string]bool{
	"RequestLimitExceeded":                   true, // EC2
	"Throttling":                             true,
	"ThrottlingException":                    true, // SSM, Auto Scaling
	"ThrottledException":                     true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"EC2ThrottledException":                  true,
	"BandwidthLimitExceeded":                 true,
	"SlowDown":                               true,
	"PriorRequestNotComplete":                true,
}

// transientCodes are AWS error codes for a failure on AWS's side.
var transientCodes = map[string]bool{
	"InternalError":           true,
	"InternalFailure":         true,
	"InternalServerError":     true,
	"ServiceUnavailable":      true,
	"Unavailable":             true,
	"RequestTimeout":          true,
	"RequestTimeoutException": true,
}

// capacityCodes are the AWS error codes that mean the capacity asked for
// cannot be had now (in this pool, zone or account).
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity":         true,
	"InsufficientCapacity":                 true,
	"InsufficientHostCapacity":             true,
	"InsufficientReservedInstanceCapacity": true,
	"InsufficientCapacityOnHost":           true,
	"InsufficientFreeAddressesInSubnet":    true,
	"SpotMaxPriceTooLow":                   true,
	"UnfulfillableCapacity":                true,
	"Unsupported":                          true, // e.g. the type is not offered in the subnet's zone
}

// quotaCodes are the AWS error codes of an account limit reached (EC2 API
// Reference, "Error codes": InstanceLimitExceeded, VcpuLimitExceeded,
// MaxSpotInstanceCountExceeded, MaxSpotFleetRequestCountExceeded): no
// capacity for the account rather than for a pool, which waiting does not
// bring back. Kind provider.Quota.
var quotaCodes = map[string]bool{
	"InstanceLimitExceeded":            true,
	"VcpuLimitExceeded":                true,
	"MaxSpotInstanceCountExceeded":     true,
	"MaxSpotFleetRequestCountExceeded": true,
}

// poolCapacityCodes are the capacity codes that are about one pool (an
// instance type in an Availability Zone, at a price type): what the
// capacity memory remembers (capacity.go).
var poolCapacityCodes = map[string]bool{
	"InsufficientInstanceCapacity": true,
	"InsufficientCapacity":         true,
	"Unsupported":                  true,
}

// classifiedError is a *provider.Error that still unwraps to the error it
// was made from, so errors.Is(err, context.Canceled) and errors.As to a
// smithy.APIError keep working.
type classifiedError struct {
	pe    *provider.Error
	cause error
}

func (e *classifiedError) Error() string   { return e.pe.Error() }
func (e *classifiedError) Unwrap() []error { return []error{e.pe, e.cause} }

// classify turns an error of an AWS call into a *provider.Error (wrapped so
// that the cause stays reachable). nil stays nil; an error already
// classified is returned as is.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		return err
	}
	kind, code, msg := kindOf(err)
	return &classifiedError{pe: &provider.Error{Op: op, Code: code, Message: msg, Kind: kind}, cause: err}
}

// kindOf returns the kind of an AWS call's error, its AWS error code ("" if
// none) and the message to show: AWS's own message when there is one.
func kindOf(err error) (provider.Kind, string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		if msg == "" {
			msg = err.Error()
		}
		switch {
		case throttleCodes[code]:
			return provider.Throttled, code, msg
		case capacityCodes[code]:
			return provider.Capacity, code, msg
		case quotaCodes[code]:
			return provider.Quota, code, msg
		case transientCodes[code]:
			return provider.Transient, code, msg
		}
		switch status := httpStatus(err); {
		case status == 429:
			return provider.Throttled, code, msg
		case status >= 500:
			return provider.Transient, code, msg
		}
		return provider.Fatal, code, msg
	}
	if status := httpStatus(err); status == 429 {
		return provider.Throttled, "", err.Error()
	} else if status >= 500 {
		return provider.Transient, "", err.Error()
	}
	if isNetworkError(err) {
		return provider.Transient, "", err.Error()
	}
	return provider.Fatal, "", err.Error()
}

// httpStatus returns the HTTP status code of the response an error came
// with, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var sre *smithyhttp.ResponseError
	if errors.As(err, &sre) {
		return sre.HTTPStatusCode()
	}
	return 0
}

// isNetworkError reports whether err is a failure to reach AWS or a
// cut-off exchange (or the call's context ending): worth trying again.
func isNetworkError(err error) bool {
	var (
		send *smithyhttp.RequestSendError
		ne   net.Error
		ue   *url.Error
		oe   *net.OpError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &send), errors.As(err, &ne), errors.As(err, &ue), errors.As(err, &oe):
		return true
	}
	// Deserialization of a truncated body surfaces as a plain error.
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "unexpected EOF") ||
		strings.Contains(s, "use of closed network connection")
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiMessage returns the AWS error message of err, or "".
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// noRetryCapacity tells the SDK's retryer not to retry capacity errors.
func noRetryCapacity(err error) aws.Ternary {
	if c := apiCode(err); capacityCodes[c] || quotaCodes[c] {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}
