package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

func TestPartitionIDs(t *testing.T) {
	tests := []struct {
		ids, prefix   string
		count, start  int
		want          []fsm.PartitionID
		wantUsageFail bool
	}{
		{ids: "a, b,c", want: []fsm.PartitionID{"a", "b", "c"}},
		{prefix: "orders-", count: 3, want: []fsm.PartitionID{"orders-0", "orders-1", "orders-2"}},
		{prefix: "p", count: 3, start: 9, want: []fsm.PartitionID{"p09", "p10", "p11"}},
		{prefix: "p", count: 11, want: []fsm.PartitionID{"p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10"}},
		{ids: "a", count: 2, wantUsageFail: true},
		{wantUsageFail: true},
		{count: 2, start: -1, wantUsageFail: true},
	}
	for _, tt := range tests {
		got, err := partitionIDs(tt.ids, tt.prefix, tt.count, tt.start)
		if (err != nil) != tt.wantUsageFail || !slices.Equal(got, tt.want) {
			t.Errorf("partitionIDs(%q, %q, %d, %d) = %v, %v", tt.ids, tt.prefix, tt.count, tt.start, got, err)
		}
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
