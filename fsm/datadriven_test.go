package fsm_test

import (
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/batonhq/baton/fsm/fsmtest"
)

// TestScenarios runs the scenario files in testdata/: each is a specification of
// one behaviour, written as directives and the exact events they produce. Run with
// -rewrite to regenerate the expected output, then review the diff like code.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		env := fsmtest.New(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out := env.Handle(t, d)
			return out
		})
		// Every scenario ends with the audit trail folding back to the live state
		// and with a snapshot round trip.
		env.CheckReplay()
		env.SnapshotRestore()
	})
}
