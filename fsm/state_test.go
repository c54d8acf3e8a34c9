package fsm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPurity: fsm depends on the standard library only, imports nothing that
// brings randomness, goroutine coordination, logging or I/O into apply, and reads
// no clock (it uses package time only for the Duration in Config).
func TestPurity(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(strings.Split(dep, "/")[0], ".") && !strings.HasPrefix(dep, "github.com/batonhq/baton/fsm") {
			t.Errorf("fsm depends on non-standard package %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"math/rand": true, "math/rand/v2": true, "crypto/rand": true, "os": true,
		"net": true, "log": true, "log/slog": true, "sync": true, "sync/atomic": true, "runtime": true}
	for _, imp := range strings.Fields(string(out)) {
		if forbidden[imp] {
			t.Errorf("fsm imports %s", imp)
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{"time.Now", "time.Since", "time.Until", "time.After", "time.Sleep", "go func"} {
			if strings.Contains(string(src), call) {
				t.Errorf("%s uses %s", f, call)
			}
		}
	}
}

func TestRequestTable_EvictsOldestByCountAndAge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRequestIDs = 3
	cfg.RequestIDTTL = time.Minute
	s := newState(cfg)
	at := func(i int, sec int64) Result {
		return s.Apply(RaftIndex(i), 1, Command{
			Header: Header{RequestID: fmt.Sprintf("r%d", i%10), Time: sec * int64(time.Second)},
			Body:   SetRebalance{Paused: i%2 == 0},
		})
	}
	for i := 1; i <= 4; i++ {
		at(i, 0)
	}
	if s.requests.len() != 3 {
		t.Fatalf("table holds %d, want 3", s.requests.len())
	}
	if _, ok := s.requests.lookup("r1"); ok {
		t.Fatal("oldest id r1 kept beyond the count bound")
	}
	// Two minutes later every older entry has aged out.
	at(5, 120)
	if s.requests.len() != 1 {
		t.Fatalf("after aging: %d entries, want 1", s.requests.len())
	}
	// A forgotten id applies again (the caller retried too late).
	if res := at(12, 121); res.Duplicate {
		t.Fatal("evicted id r2 still deduped")
	}
}

func TestRequestTable_CompactsLongRuns(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRequestIDs = 10
	s := newState(cfg)
	for i := 1; i <= 5000; i++ {
		s.Apply(RaftIndex(i), 1, Command{Header: Header{RequestID: fmt.Sprintf("r%d", i), Time: int64(i)}, Body: SetRebalance{}})
	}
	if s.requests.len() != 10 || len(s.requests.order) > 2100 {
		t.Fatalf("live %d, backing %d", s.requests.len(), len(s.requests.order))
	}
	if _, ok := s.requests.lookup("r4999"); !ok {
		t.Fatal("recent id lost in compaction")
	}
}

func TestSubjectIndex_Overlap(t *testing.T) {
	stored := []string{"orders.1.>", "orders.2.created", "billing.*", "ship.*.eu"}
	x := NewSubjectIndex()
	for i, s := range stored {
		x.Add(s, PartitionID(fmt.Sprintf("p%d", i)))
	}
	tests := []struct {
		subject string
		want    PartitionID // "" = no overlap
	}{
		{"orders.1", ""},
		{"orders.1.x", "p0"},
		{"orders.1.x.y", "p0"},
		{"orders.*.created", "p0"},
		{"orders.2.created", "p1"},
		{"orders.2.updated", ""},
		{"orders.>", "p0"},
		{"billing.x", "p2"},
		{"billing.x.y", ""},
		{"billing", ""},
		{"ship.a.eu", "p3"},
		{"ship.a.us", ""},
		{"*.*.eu", "p0"}, // orders.1.eu matches both p0 and p3; the smallest id wins
		{"*.x.eu", "p3"},
		{">", "p0"},
		{"other", ""},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got, ok := x.Overlap(tt.subject)
			if (tt.want == "") == ok || got != tt.want {
				t.Fatalf("overlap(%q) = %q, %v; want %q", tt.subject, got, ok, tt.want)
			}
		})
	}
	x.Remove("orders.1.>")
	if _, ok := x.Overlap("orders.1.x"); ok {
		t.Fatal("removed subject still overlaps")
	}
	if _, ok := x.Overlap("orders.2.created"); !ok {
		t.Fatal("remove dropped a sibling")
	}
}

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "a.b.c": true, "a.*.c": true, "a.>": true, ">": true, "*": true,
		"": false, "a..b": false, ".a": false, "a.": false, "a.>.b": false, "a.b*": false,
		"a b": false, "a.\tb": false, "a.>>": false,
	} {
		if got := validSubject(s); got != want {
			t.Errorf("validSubject(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	var zero Config
	err := zero.Validate()
	if err == nil {
		t.Fatal("zero config accepted")
	}
	for _, field := range []string{"MaxPartitions", "MaxWorkers", "MaxItems", "MaxSubjects", "MaxLabels", "MaxWeight", "MaxRequestIDs", "RequestIDTTL"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	if _, err := New(zero); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestApply_RejectsOldIndexAndEmptyBody(t *testing.T) {
	s := newState(DefaultConfig())
	if r := s.Apply(5, 1, Command{Body: SetRebalance{Paused: true}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := s.Apply(5, 1, Command{Body: SetRebalance{Paused: false}}); r.Err == nil || !s.Paused() {
		t.Fatal("re-applied index 5")
	}
	if r := s.Apply(6, 1, Command{}); r.Err == nil {
		t.Fatal("command without body accepted")
	}
	if r := s.Apply(7, 1, Command{Header: Header{Time: -1}, Body: SetRebalance{}}); r.Err == nil {
		t.Fatal("negative time accepted")
	}
}
