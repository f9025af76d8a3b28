// Package failure owns the classified errors that the core raises and the HTTP layer maps to
// status codes: the reference's IllegalArgumentException (400, plain-text message),
// IllegalStateException (503, plain-text message) and ImageValidationException (422/424/503 with a
// JSON error code). Anything else, including the Internal kind, is an unexpected error (500
// INTERNAL_ERROR) whose details are logged, never shown.
package failure

import (
	"errors"
	"fmt"
)

// Kind classifies an Error.
type Kind int

const (
	// InvalidArgument is the reference's IllegalArgumentException: 400 with the message as text.
	InvalidArgument Kind = iota + 1
	// Unavailable is the reference's IllegalStateException: 503 with the message as text. It is
	// the only kind a DEPLOYMENT registration with an endpointUrl degrades to POOL on.
	Unavailable
	// Internal is a failure the reference does not catch (e.g. a Kubernetes API error): 500
	// INTERNAL_ERROR with the generic body. The message is for logs only, and it never degrades.
	Internal
)

// Error is a classified failure. Its message is shown to clients verbatim, except for Internal
// errors, whose message only goes to the log.
type Error struct {
	Kind    Kind
	Message string
	Cause   error // optional; not shown to clients
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Cause }

// Invalidf returns an InvalidArgument error with a formatted message.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// Unavailablef returns an Unavailable error with a formatted message.
func Unavailablef(format string, args ...any) error {
	return &Error{Kind: Unavailable, Message: fmt.Sprintf(format, args...)}
}

// Internalf returns an Internal error with a formatted message and cause (which may be nil).
func Internalf(cause error, format string, args ...any) error {
	return &Error{Kind: Internal, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// IsKind reports whether err is (or wraps) an Error of the given kind.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// ImageValidation is the reference's ImageValidationException.
type ImageValidation struct {
	Code    string // IMAGE_NOT_FOUND, IMAGE_PULL_AUTH_REQUIRED, IMAGE_REGISTRY_UNAVAILABLE
	Status  int    // 422, 424, 503
	Message string
}

func (e *ImageValidation) Error() string { return e.Message }

// ImageNotFound returns the 422 IMAGE_NOT_FOUND error for image.
func ImageNotFound(image string) error {
	return &ImageValidation{Code: "IMAGE_NOT_FOUND", Status: 422, Message: "Image not found in registry: " + image}
}

// ImagePullAuthRequired returns the 424 IMAGE_PULL_AUTH_REQUIRED error for image.
func ImagePullAuthRequired(image string) error {
	return &ImageValidation{Code: "IMAGE_PULL_AUTH_REQUIRED", Status: 424, Message: "Image pull authentication failed for: " + image}
}

// ImageRegistryUnavailable returns the 503 IMAGE_REGISTRY_UNAVAILABLE error for image; details,
// when non-blank, are appended in parentheses.
func ImageRegistryUnavailable(image, details string) error {
	msg := "Unable to validate image in registry: " + image
	if details != "" {
		msg += " (" + details + ")"
	}
	return &ImageValidation{Code: "IMAGE_REGISTRY_UNAVAILABLE", Status: 503, Message: msg}
}
