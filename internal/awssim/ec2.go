package awssim

import "fmt"

func (r *Region) registerEC2() {
}

// amiError returns the error AWS gives for an AMI id it cannot use:
// InvalidAMIID.Malformed when the id is not ami- and 8 or 17 hex digits,
// else InvalidAMIID.NotFound.
func amiError(id string) *APIError {
	if !validID(id, "ami-") {
		return &APIError{Code: "InvalidAMIID.Malformed", Message: fmt.Sprintf("Invalid id: \"%s\" (expecting \"ami-...\")", id), Status: 400}
	}
	return &APIError{Code: "InvalidAMIID.NotFound", Message: fmt.Sprintf("The image id '[%s]' does not exist", id), Status: 400}
}

// validID reports whether id is prefix followed by 8 or 17 hex digits.
func validID(id, prefix string) bool {
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix {
		return false
	}
	h := id[len(prefix):]
	if len(h) != 8 && len(h) != 17 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
