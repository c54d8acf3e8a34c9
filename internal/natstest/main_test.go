package natstest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// embedded server must be shut down and every client closed by cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
