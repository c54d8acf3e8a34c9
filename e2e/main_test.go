package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// batonBin is the binary built by TestMain; skipReason says why tests skip
// when it could not be built for lack of a go tool.
var batonBin, skipReason string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// A fuzz run (coordinator and workers) exercises the package's
		// decoders only: no test needs the binary.
		return m.Run()
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		skipReason = "the go tool is not on PATH: cannot build the baton binary"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "baton-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	batonBin = filepath.Join(dir, "baton")
	build := exec.Command(gobin, "build", "-o", batonBin, "./cmd/baton")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/baton: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: leaked goroutines: %v\n", err)
			return 1
		}
	}
	return code
}

// needBinary skips the test when the binary could not be built.
func needBinary(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
