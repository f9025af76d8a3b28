package metrics

import (
	"testing"

	"go.uber.org/goleak"
)

// Summaries flush on short-lived goroutines and the scrape test runs an HTTP server; none may
// outlive the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
