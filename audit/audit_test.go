package audit

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/batonhq/baton/fsm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openLog opens a log in a fresh temporary directory, closed at cleanup.
func openLog(tb testing.TB, cfg Config) *Log {
	tb.Helper()
	l, err := Open(filepath.Join(tb.TempDir(), "audit.db"), cfg)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func testConfig(maxEvents int) Config {
	cfg := DefaultConfig()
	cfg.MaxEvents = maxEvents
	return cfg
}

func appendAll(tb testing.TB, l *Log, bs [][]fsm.Event) {
	tb.Helper()
	for _, b := range bs {
		if err := l.Append(b); err != nil {
			tb.Fatalf("append at %d: %v", b[0].Index, err)
		}
	}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// queryAll pages through q and returns every event, checking that paging
// terminates.
func queryAll(tb testing.TB, l *Log, q Query) []fsm.Event {
	tb.Helper()
	var out []fsm.Event
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			tb.Fatalf("query %+v does not terminate", q)
		}
		p, err := l.Query(ctxT(tb), q)
		if err != nil {
			tb.Fatalf("query %+v: %v", q, err)
		}
		out = append(out, p.Events...)
		if p.Next == nil {
			return out
		}
		q.After = p.Next
	}
}

// all returns every retained event in index order.
func all(tb testing.TB, l *Log) []fsm.Event {
	tb.Helper()
	return queryAll(tb, l, Query{Limit: MaxLimit})
}

// dump renders the current generation's logical content: every bucket but the
// held one, and the info bucket without its transaction clock.
func dump(tb testing.TB, l *Log) string {
	tb.Helper()
	var buf bytes.Buffer
	err := l.db.View(func(tx *bbolt.Tx) error {
		gen, err := currentGen(tx)
		if err != nil {
			return err
		}
		g := tx.Bucket(genName(gen))
		for _, name := range subBuckets {
			if bytes.Equal(name, bHeld) {
				continue
			}
			if err := g.Bucket(name).ForEach(func(k, v []byte) error {
				if bytes.Equal(name, bInfo) && bytes.Equal(k, infoClock) {
					return nil
				}
				fmt.Fprintf(&buf, "%s %x %x\n", name, k, v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("dump: %v", err)
	}
	return buf.String()
}

func encodeAll(evs []fsm.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(fsm.EncodeEvent(ev))
	}
	return out
}

// sameEvents fails unless got and want are the same events in the same order.
func sameEvents(tb testing.TB, what string, got, want []fsm.Event) {
	tb.Helper()
	g, w := encodeAll(got), encodeAll(want)
	if len(g) != len(w) {
		tb.Fatalf("%s: %d events, want %d", what, len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			tb.Fatalf("%s: event %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

func checkReplay(tb testing.TB, l *Log, live *fsm.State) {
	tb.Helper()
	r, err := l.Replay()
	if err != nil {
		tb.Fatalf("replay: %v", err)
	}
	if err := fsm.SameContent(r, live); err != nil {
		tb.Fatalf("replay differs from the live state (invariant 5): %v", err)
	}
}
