package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2E_Demo runs `baton demo` briefly as a user would and checks that it
// narrates handoffs, fails a crashed worker over, and ends with a clean
// verdict line and exit status 0.
func TestE2E_Demo(t *testing.T) {
	needBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, batonBin, "demo", "--duration", "10s", "--partitions", "4", "--rate", "200")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("baton demo: %v\n%s", err, out)
	}
	text := strings.TrimSpace(string(out))
	lines := strings.Split(text, "\n")
	last := lines[len(lines)-1]
	if m := regexp.MustCompile(`^produced=(\d+) processed=(\d+) lost=0 duplicated=0 reordered=0$`).FindStringSubmatch(last); m == nil || m[1] != m[2] || m[1] == "0" {
		t.Fatalf("last line %q\n%s", last, out)
	}
	for _, want := range []string{"scale out", "Prepared", "Drained", "Committed", "Activated", "WorkerLeft w3 (expired)", "FORCED (owner_left)", "crash_duplicates="} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s", last)
}
