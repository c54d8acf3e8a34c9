package audit

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*Config)
		fields []string
	}{
		{"default is valid", func(*Config) {}, nil},
		{"zero max events", func(c *Config) { c.MaxEvents = 0 }, []string{"MaxEvents"}},
		{"negative max age", func(c *Config) { c.MaxAge = -time.Second }, []string{"MaxAge"}},
		{"zero max scan", func(c *Config) { c.MaxScan = 0 }, []string{"MaxScan"}},
		{"bad fsm config", func(c *Config) { c.FSM.MaxWorkers = 0 }, []string{"FSM", "MaxWorkers"}},
		{"all at once", func(c *Config) { c.MaxEvents, c.MaxScan = -1, -1 }, []string{"MaxEvents", "MaxScan"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if (err == nil) != (tt.fields == nil) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if _, err := Open(filepath.Join(t.TempDir(), "a.db"), cfg); (err == nil) != (tt.fields == nil) {
				t.Errorf("Open() error = %v", err)
			}
		})
	}
}

func TestReplayEqualsLiveState(t *testing.T) {
	t.Parallel()
	e := workload(t, 1, 1500)
	l := openLog(t, testConfig(1_000_000))
	appendAll(t, l, groups(e.Events))
	checkReplay(t, l, e.State)
	sameEvents(t, "retained", all(t, l), compacted(e.Events))
	b := l.Bounds()
	if b.Base != 0 || b.Refs != 0 || b.Count != len(compacted(e.Events)) || b.Last != e.Events[len(e.Events)-1].Index ||
		b.First != e.Events[0].Index || l.LastIndex() != b.Last {
		t.Fatalf("bounds %+v", b)
	}
}

func TestCheckpointCompactionKeepsLatest(t *testing.T) {
	t.Parallel()
	e := workload(t, 2, 1500)
	l := openLog(t, testConfig(1_000_000))
	appendAll(t, l, groups(e.Events))
	latest := map[fsm.PartitionID]fsm.Event{}
	total := 0
	for _, ev := range e.Events {
		if cp, ok := ev.Body.(fsm.Checkpointed); ok {
			latest[cp.Partition] = ev
			total++
		}
	}
	got := queryAll(t, l, Query{Types: []fsm.EventType{fsm.EvCheckpointed}})
	if len(got) != len(latest) || total <= len(latest) {
		t.Fatalf("%d checkpoints retained for %d partitions (%d appended)", len(got), len(latest), total)
	}
	for _, ev := range got {
		p := ev.Body.(fsm.Checkpointed).Partition
		if want := latest[p]; want.Index != ev.Index || want.Seq != ev.Seq {
			t.Errorf("partition %s keeps checkpoint %d.%d, latest is %d.%d", p, ev.Index, ev.Seq, want.Index, want.Seq)
		}
	}
	// An older checkpoint appended again is ignored.
	for _, ev := range e.Events {
		if _, ok := ev.Body.(fsm.Checkpointed); ok {
			if err := l.Append([]fsm.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sameEvents(t, "checkpoints after re-append", queryAll(t, l, Query{Types: []fsm.EventType{fsm.EvCheckpointed}}), got)
}

// TestAppendIdempotent: raft re-applies entries after a restart; appending the
// same events again, in any batching, leaves the file byte for byte the same.
func TestAppendIdempotent(t *testing.T) {
	t.Parallel()
	for _, maxEvents := range []int{1_000_000, 120} {
		t.Run(map[bool]string{true: "no retention", false: "with retention"}[maxEvents > 1000], func(t *testing.T) {
			e := workload(t, 3, 1200)
			path := filepath.Join(t.TempDir(), "audit.db")
			l, err := Open(path, testConfig(maxEvents))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			appendAll(t, l, groups(e.Events))
			d0, b0 := dump(t, l), l.Bounds()
			f0, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 3))
			appendAll(t, l, batches(r, e.Events))
			appendAll(t, l, [][]fsm.Event{e.Events[len(e.Events)/2:]})
			f1, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if d1 := dump(t, l); d1 != d0 {
				t.Fatal("re-append changed the content")
			}
			if !bytes.Equal(f0, f1) {
				t.Fatal("re-append changed the file")
			}
			if b1 := l.Bounds(); b1 != b0 {
				t.Fatalf("bounds %+v, then %+v", b0, b1)
			}
			checkReplay(t, l, e.State)
		})
	}
}

func TestAppendConflict(t *testing.T) {
	t.Parallel()
	e := workload(t, 4, 50)
	l := openLog(t, testConfig(1000))
	appendAll(t, l, groups(e.Events))
	ev := e.Events[len(e.Events)-1]
	ev.Actor = "someone else"
	if err := l.Append([]fsm.Event{ev}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Append(changed event) = %v, want ErrConflict", err)
	}
	if err := l.Append([]fsm.Event{{Meta: fsm.Meta{Index: ev.Index + 1}}}); err == nil {
		t.Fatal("Append(event without body) succeeded")
	}
	sameEvents(t, "after refused appends", all(t, l), compacted(e.Events))
}

func TestReopen(t *testing.T) {
	t.Parallel()
	e := workload(t, 5, 800)
	path := filepath.Join(t.TempDir(), "audit.db")
	cfg := testConfig(150)
	l, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	half := groups(e.Events)
	appendAll(t, l, half[:len(half)/2])
	before, bounds, d := all(t, l), l.Bounds(), dump(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l, err = Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sameEvents(t, "after reopen", all(t, l), before)
	if l.Bounds() != bounds || dump(t, l) != d {
		t.Fatalf("bounds %+v after reopen, want %+v", l.Bounds(), bounds)
	}
	appendAll(t, l, half[len(half)/2:])
	checkReplay(t, l, e.State)
}

func TestClosed(t *testing.T) {
	t.Parallel()
	l := openLog(t, DefaultConfig())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ev := fsm.Event{Meta: fsm.Meta{Index: 1}, Body: fsm.RebalanceSet{Paused: true}}
	if err := l.Append([]fsm.Event{ev}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append = %v", err)
	}
	if _, err := l.Query(ctxT(t), Query{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Query = %v", err)
	}
	if _, err := l.Replay(); !errors.Is(err, ErrClosed) {
		t.Errorf("Replay = %v", err)
	}
	if _, err := l.Snapshot(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Snapshot = %v", err)
	}
	if err := l.Restore(strings.NewReader("")); !errors.Is(err, ErrClosed) {
		t.Errorf("Restore = %v", err)
	}
}
