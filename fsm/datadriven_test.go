package fsm_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/batonhq/baton/fsm/fsmtest"
)

// TestScenarios runs the scenario files in testdata/: each is a specification of
// one behaviour, written as directives and the exact events they produce. Run with
// -rewrite to regenerate the expected output, then review the diff like code.
func TestScenarios(t *testing.T) {
	// Only the scenario files: testdata/fuzz holds the fuzzers' corpora.
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) { runScenario(t, path) })
	}
}

func runScenario(t *testing.T, path string) {
	{
		env := fsmtest.New(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out := env.Handle(t, d)
			return out
		})
		// Every scenario ends with the audit trail folding back to the live state
		// and with a snapshot round trip.
		env.CheckReplay()
		env.SnapshotRestore()
	}
}
