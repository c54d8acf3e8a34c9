package main

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

func TestIDSource(t *testing.T) {
	tests := []struct {
		name          string
		ids, prefix   string
		count, start  int
		want          []fsm.PartitionID
		wantUsageFail string
	}{
		{name: "explicit ids", ids: "a, b,c", want: []fsm.PartitionID{"a", "b", "c"}},
		{name: "prefix and count", prefix: "orders-", count: 3, want: []fsm.PartitionID{"orders-0", "orders-1", "orders-2"}},
		{name: "padded to the widest number", prefix: "p", count: 3, start: 9, want: []fsm.PartitionID{"p09", "p10", "p11"}},
		{name: "padded from zero", prefix: "p", count: 11, want: []fsm.PartitionID{"p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10"}},
		{name: "ids and count exclude each other", ids: "a", count: 2, wantUsageFail: "either --ids"},
		{name: "neither", wantUsageFail: "needs --ids"},
		{name: "only commas", ids: ",,", wantUsageFail: "no partition id"},
		{name: "negative start", count: 2, start: -1, wantUsageFail: "--start"},
		{name: "start overflows", count: 2, start: math.MaxInt, wantUsageFail: "overflow"},
		{name: "above the cluster's partition limit", prefix: "p", count: 1_000_001, wantUsageFail: "at most 1000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := newIDSource(tt.ids, tt.prefix, tt.count, tt.start, fsm.DefaultConfig().MaxPartitions)
			if tt.wantUsageFail != "" {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.wantUsageFail) {
					t.Fatalf("got %v, want a usage error saying %q", err, tt.wantUsageFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []fsm.PartitionID
			for i := range src.len() {
				got = append(got, src.id(i))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSpecBatches_BoundedMemory checks that declaring many partitions never
// holds them all: the generator yields batches of at most n in one reused
// slice (capacity n), in order, covering every id once.
func TestSpecBatches_BoundedMemory(t *testing.T) {
	tests := []struct {
		name         string
		count, batch int
		wantBatches  int
	}{
		{name: "one partial batch", count: 3, batch: 1000, wantBatches: 1},
		{name: "exact batches", count: 3000, batch: 1000, wantBatches: 3},
		{name: "10001 needs a last batch of one", count: 10_001, batch: 1000, wantBatches: 11},
		{name: "a large count in the server's largest batches", count: 100_000, batch: fsm.DefaultConfig().MaxItems, wantBatches: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := newIDSource("", "p-", tt.count, 0, fsm.DefaultConfig().MaxPartitions)
			if err != nil {
				t.Fatal(err)
			}
			specs := specSource{ids: src, tpl: "orders.{{.Partition}}.>", weight: 1}
			next, batches := 0, 0
			for b, err := range specs.batches(tt.batch) {
				if err != nil {
					t.Fatal(err)
				}
				batches++
				if len(b) == 0 || len(b) > tt.batch || cap(b) > tt.batch {
					t.Fatalf("batch %d: len %d cap %d, want at most %d", batches, len(b), cap(b), tt.batch)
				}
				if b[0].ID != src.id(next) || b[len(b)-1].ID != src.id(next+len(b)-1) {
					t.Fatalf("batch %d holds %s..%s, want %s..%s", batches, b[0].ID, b[len(b)-1].ID, src.id(next), src.id(next+len(b)-1))
				}
				if want := "orders." + string(b[0].ID) + ".>"; b[0].Subjects[0] != want {
					t.Fatalf("subject %q, want %q", b[0].Subjects[0], want)
				}
				next += len(b)
			}
			if next != tt.count || batches != tt.wantBatches {
				t.Errorf("%d specs in %d batches, want %d in %d", next, batches, tt.count, tt.wantBatches)
			}
		})
	}
}

func TestSpecBatches_StopsAtABadSpec(t *testing.T) {
	src, err := newIDSource("ok-1,bad id,ok-2", "", 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []fsm.PartitionID
	var gotErr error
	for b, err := range (specSource{ids: src, tpl: "o.{{.Partition}}"}).batches(1) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, b[0].ID)
	}
	if !slices.Equal(got, []fsm.PartitionID{"ok-1"}) || !errors.Is(gotErr, fsm.ErrInvalidArgument) {
		t.Errorf("got %v then %v, want ok-1 then an invalid_argument error", got, gotErr)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"10m":                  now.Add(-10 * time.Minute),
		"2025-01-30T08:00:00Z": time.Date(2025, 1, 30, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q): want an error", bad)
		}
	}
}

func TestAuditQueryFlags(t *testing.T) {
	a := auditFlags{partition: "p1", handoff: "h7", types: "Prepared, Committed", from: 3, limit: 5, desc: true}
	q, err := a.query(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if q.Partition != "p1" || q.Handoff != 7 || !slices.Equal(q.Types, []fsm.EventType{fsm.EvPrepared, fsm.EvCommitted}) ||
		q.From != 3 || q.Limit != 5 || !q.Desc {
		t.Errorf("query %+v", q)
	}
	for _, bad := range []auditFlags{{types: "Nope"}, {handoff: "x"}, {since: "later"}} {
		if _, err := bad.query(time.Now()); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func ev(idx fsm.RaftIndex, ms int64, body fsm.EventBody) fsm.Event {
	return fsm.Event{Meta: fsm.Meta{Index: idx, Time: ms * int64(time.Millisecond)}, Body: body}
}

func TestTimeline(t *testing.T) {
	b := newTimelineBuilder()
	for _, e := range []fsm.Event{
		ev(10, 1000, fsm.Prepared{Handoff: 1, Partition: "p1", From: "w1", To: "w2", Epoch: 1, Reason: "rebalance"}),
		ev(11, 1010, fsm.Drained{Handoff: 1, Partition: "p1", From: "w1", Epoch: 1, ThroughSeq: 42}),
		ev(12, 1015, fsm.Committed{Handoff: 1, Partition: "p1", From: "w1", To: "w2", Epoch: 2, ResumeAfter: 42}),
		ev(13, 1055, fsm.Activated{Partition: "p1", Worker: "w2", Epoch: 2}),
		ev(14, 2000, fsm.Prepared{Handoff: 2, Partition: "p2", From: "w1", To: "w3", Epoch: 1, Reason: "operator_move"}),
		ev(15, 2500, fsm.Aborted{Handoff: 2, Partition: "p2", From: "w1", To: "w3", Reason: "target_left"}),
		ev(16, 3000, fsm.Committed{Partition: "p3", From: "w4", To: "w2", Epoch: 5, ResumeAfter: 7, Forced: true, ForceReason: fsm.ForceOwnerLeft}),
		ev(17, 3020, fsm.Activated{Partition: "p3", Worker: "w2", Epoch: 5}),
		ev(18, 4000, fsm.Prepared{Handoff: 3, Partition: "p1", From: "w2", To: "w1", Epoch: 2}),
	} {
		b.add(e)
	}
	tls := b.timelines()
	if len(tls) != 4 {
		t.Fatalf("%d timelines", len(tls))
	}
	h1, h2, forced, h3 := tls[0], tls[1], tls[2], tls[3]
	if h1.PrepareToDrainMS != 10 || h1.DrainToCommitMS != 5 || h1.CommitToActivateMS != 40 || h1.PrepareToActivateMS != 55 || h1.result() != "ok" {
		t.Errorf("h1 %+v %s", h1, h1.result())
	}
	if !strings.HasPrefix(h2.result(), "ABORTED: target_left") || h2.CommitToActivateMS != -1 {
		t.Errorf("h2 %+v %s", h2, h2.result())
	}
	if forced.Handoff != 0 || forced.CommitToActivateMS != 20 || !strings.Contains(forced.result(), "FORCED (owner_left) from checkpoint 7") {
		t.Errorf("forced %+v %s", forced, forced.result())
	}
	if h3.result() != "preparing" {
		t.Errorf("h3 %s", h3.result())
	}
}
