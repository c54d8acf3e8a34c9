package audit

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// bruteForce is the reference: filter the full list and order it as Query
// documents.
func bruteForce(events []fsm.Event, q Query) []fsm.Event {
	types := map[fsm.EventType]bool{}
	for _, t := range q.Types {
		types[t] = true
	}
	var out []fsm.Event
	for _, ev := range events {
		switch {
		case q.FromIndex != 0 && ev.Index < q.FromIndex, q.ToIndex != 0 && ev.Index > q.ToIndex:
		case q.Since != 0 && ev.Time < q.Since, q.Until != 0 && ev.Time > q.Until:
		case q.Handoff != 0 && ev.Handoff() != q.Handoff:
		case q.Partition != "" && !slices.Contains(ev.Partitions(), q.Partition):
		case q.Worker != "" && !slices.Contains(ev.Workers(), q.Worker):
		case len(types) > 0 && !types[ev.Type()]:
		default:
			out = append(out, ev)
		}
	}
	timed := q.Handoff == 0 && q.Partition == "" && q.Worker == "" && len(types) != 1 && (q.Since != 0 || q.Until != 0)
	if timed {
		slices.SortStableFunc(out, func(a, b fsm.Event) int { return cmp.Compare(a.Time, b.Time) })
	}
	if q.Desc {
		slices.Reverse(out)
	}
	return out
}

func TestQueryMatchesBruteForce(t *testing.T) {
	t.Parallel()
	e := workload(t, 7, 2500)
	want := compacted(e.Events)
	mid := want[len(want)/2]
	var part fsm.PartitionID
	var worker fsm.WorkerID
	var handoff fsm.HandoffID
	var handoffPart fsm.PartitionID
	timeBackwards := false
	for i, ev := range want {
		if ps := ev.Partitions(); len(ps) > 0 && part == "" && i > 100 {
			part = ps[0]
		}
		if ws := ev.Workers(); len(ws) > 0 && worker == "" && i > 50 {
			worker = ws[0]
		}
		if h := ev.Handoff(); h != 0 && handoff == 0 && ev.Type() == fsm.EvCommitted {
			handoff, handoffPart = h, ev.Partitions()[0]
		}
		if i > 0 && ev.Time < want[i-1].Time {
			timeBackwards = true
		}
	}
	if part == "" || worker == "" || handoff == 0 || !timeBackwards {
		t.Fatalf("workload lacks variety: %q %q %v %v", part, worker, handoff, timeBackwards)
	}
	queries := []struct {
		name string
		q    Query
	}{
		{"everything", Query{}},
		{"index range", Query{FromIndex: mid.Index - 40, ToIndex: mid.Index + 40}},
		{"single index", Query{FromIndex: mid.Index, ToIndex: mid.Index}},
		{"partition", Query{Partition: part}},
		{"partition and index range", Query{Partition: part, FromIndex: mid.Index}},
		{"partition and types", Query{Partition: part, Types: []fsm.EventType{fsm.EvClaimed, fsm.EvCommitted}}},
		{"worker", Query{Worker: worker}},
		{"worker and time", Query{Worker: worker, Since: mid.Time - 20e9, Until: mid.Time}},
		{"handoff", Query{Handoff: handoff}},
		{"handoff and partition", Query{Handoff: handoff, Partition: handoffPart}},
		{"handoff and another partition", Query{Handoff: handoff, Partition: "p999"}},
		{"single type", Query{Types: []fsm.EventType{fsm.EvPrepared}}},
		{"single type repeated", Query{Types: []fsm.EventType{fsm.EvDrained, fsm.EvDrained}}},
		{"type and time", Query{Types: []fsm.EventType{fsm.EvCheckpointed}, Since: mid.Time}},
		{"two types", Query{Types: []fsm.EventType{fsm.EvWorkerJoined, fsm.EvWorkerLeft}}},
		{"time range", Query{Since: mid.Time - 60e9, Until: mid.Time + 60e9}},
		{"since", Query{Since: mid.Time}},
		{"until", Query{Until: mid.Time}},
		{"time and index", Query{Since: mid.Time - 60e9, FromIndex: mid.Index - 10, ToIndex: mid.Index + 50}},
		{"time and two types", Query{Since: mid.Time - 60e9, Types: []fsm.EventType{fsm.EvActivated, fsm.EvClaimed}}},
		{"unknown partition", Query{Partition: "nope"}},
		{"no match", Query{Worker: worker, Types: []fsm.EventType{fsm.EvRebalanceSet}}},
	}
	for _, scan := range []int{50_000, 13} {
		cfg := testConfig(1_000_000)
		cfg.MaxScan = scan
		l := openLog(t, cfg)
		appendAll(t, l, groups(e.Events))
		for _, tt := range queries {
			for _, desc := range []bool{false, true} {
				for _, limit := range []int{0, 7, MaxLimit} {
					if scan < 50_000 && limit != 0 {
						continue // the scan bound cuts pages anyway
					}
					q := tt.q
					q.Desc, q.Limit = desc, limit
					got := queryAll(t, l, q)
					ref := bruteForce(want, q)
					if len(ref) == 0 && !slices.Contains([]string{"unknown partition", "no match", "handoff and another partition"}, tt.name) {
						t.Fatalf("%s: the reference finds nothing", tt.name)
					}
					sameEvents(t, tt.name, got, ref)
				}
			}
		}
	}
}

func TestQueryPagesAreBounded(t *testing.T) {
	t.Parallel()
	e := workload(t, 8, 600)
	cfg := testConfig(1_000_000)
	cfg.MaxScan = 10
	l := openLog(t, cfg)
	appendAll(t, l, groups(e.Events))
	q := Query{Types: []fsm.EventType{fsm.EvRebalanceSet, fsm.EvPartitionPinned}}
	short := false
	for {
		p, err := l.Query(ctxT(t), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > 10 {
			t.Fatalf("%d events from a scan of 10 entries", len(p.Events))
		}
		short = short || (len(p.Events) < DefaultLimit && p.Next != nil)
		if p.Next == nil {
			break
		}
		q.After = p.Next
	}
	if !short {
		t.Fatal("no page was cut short by MaxScan")
	}
}

func TestQueryValidation(t *testing.T) {
	t.Parallel()
	l := openLog(t, DefaultConfig())
	tests := []struct {
		name string
		q    Query
	}{
		{"negative limit", Query{Limit: -1}},
		{"limit above max", Query{Limit: MaxLimit + 1}},
		{"inverted index range", Query{FromIndex: 10, ToIndex: 9}},
		{"inverted time range", Query{Since: 10, Until: 9}},
		{"negative since", Query{Since: -1}},
		{"negative until", Query{Until: -5}},
		{"zero type", Query{Types: []fsm.EventType{0}}},
		{"unknown type", Query{Types: []fsm.EventType{fsm.EvClaimed, 200}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Query(ctxT(t), tt.q); !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("Query(%+v) = %v, want ErrInvalidQuery", tt.q, err)
			}
		})
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if _, err := l.Query(ctx, Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Query(canceled) = %v", err)
	}
	for _, q := range []Query{{FromIndex: 5, ToIndex: 5}, {FromIndex: 5}, {Since: 3, Until: 3}, {Limit: MaxLimit}} {
		if _, err := l.Query(ctxT(t), q); err != nil {
			t.Errorf("Query(%+v) = %v", q, err)
		}
	}
}
