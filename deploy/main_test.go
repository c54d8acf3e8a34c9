package deploy_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/batonhq/baton/internal/testcluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testcluster.LeakOptions()...)
}
