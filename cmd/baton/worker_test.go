package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/consumer"
)

// TestWorkerRecord_Line: each handled message adds one line "partition seq
// epoch start end cancelled"; the first three fields are the older format's,
// start and end bracket the handler's run, and cancelled says whether its
// context was cancelled when it returned. A sleep cut short by its context
// handled nothing and records nothing.
func TestWorkerRecord_Line(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "w.rec")
	h, err := newWorkerHandler("count", rec)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := h.handle(context.Background(), &consumer.Msg{Partition: "p-1", Seq: 42, Epoch: 7}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.handle(cancelled, &consumer.Msg{Partition: "p-2", Seq: 43, Epoch: 8}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	h.close()

	sleeper, err := newWorkerHandler("sleep=1h", rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.handle(cancelled, &consumer.Msg{Partition: "p-3", Seq: 44, Epoch: 9}); err == nil {
		t.Error("a sleep whose context is cancelled returned no error")
	}
	sleeper.close()

	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", b)
	}
	for i, want := range []struct {
		head      string
		cancelled string
	}{{"p-1 42 7", "0"}, {"p-2 43 8", "1"}} {
		f := strings.Fields(lines[i])
		if len(f) != 6 {
			t.Fatalf("line %q: want 6 fields", lines[i])
		}
		if got := strings.Join(f[:3], " "); got != want.head {
			t.Errorf("line %q: first three fields %q, want %q", lines[i], got, want.head)
		}
		start, err1 := strconv.ParseInt(f[3], 10, 64)
		end, err2 := strconv.ParseInt(f[4], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("line %q: start or end is not an integer", lines[i])
		}
		if start < before.UnixNano() || end < start || end > after.UnixNano() {
			t.Errorf("line %q: start %d and end %d not within [%d, %d] in order", lines[i], start, end, before.UnixNano(), after.UnixNano())
		}
		if f[5] != want.cancelled {
			t.Errorf("line %q: cancelled %s, want %s", lines[i], f[5], want.cancelled)
		}
	}
}
