package controller_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/batonhq/baton/internal/testcluster"
)

// TestMain checks for leaked goroutines after every test of the package, the
// white-box ones (package controller) and the cluster ones alike: both kinds
// share this test binary. It lives in the external test package because
// testcluster imports controller.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testcluster.LeakOptions()...)
}
