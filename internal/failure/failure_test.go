package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestInternalf_KindMessageAndCause(t *testing.T) {
	cause := errors.New("connection refused")
	err := Internalf(cause, "Kubernetes API error: cannot %s %s", "create", "Service")
	if !IsKind(err, Internal) || IsKind(err, Unavailable) || IsKind(err, InvalidArgument) {
		t.Fatalf("kind of %#v, want Internal only", err)
	}
	if got := err.Error(); got != "Kubernetes API error: cannot create Service" {
		t.Fatalf("message = %q", got)
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable through errors.Is")
	}
	if !IsKind(fmt.Errorf("provision: %w", err), Internal) {
		t.Fatal("wrapped Internal error not recognised")
	}
	if err := Internalf(nil, "no cause"); errors.Unwrap(err) != nil {
		t.Fatalf("Unwrap = %v, want nil", errors.Unwrap(err))
	}
}

// The outermost classified error decides the kind, so an Internal error caused by an
// Unavailable one is not mistaken for it (it must not degrade to POOL).
func TestIsKind_OutermostClassificationWins(t *testing.T) {
	err := Internalf(Unavailablef("inner"), "outer")
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != Internal {
		t.Fatalf("errors.As found %#v, want the Internal error", fe)
	}
}
