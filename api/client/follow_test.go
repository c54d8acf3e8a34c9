package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestFollowAudit_ResumesAcrossRestarts: a follow delivers every event in log
// order. When the node it follows is killed it resumes on the next address
// with Last-Event-ID; when that one is killed too it resumes on the first,
// restarted in the meantime (its audit log rebuilt from disk). In the end the
// events delivered are exactly the leader's log: no gap, no duplicate.
func TestFollowAudit_ResumesAcrossRestarts(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	fols := c.Followers(t)
	first, second := indexOfNode(c, fols[0]), indexOfNode(c, fols[1])
	rec := newRecorder(t)
	follower := newClient(t, []string{c.Nodes[first].URL, c.Nodes[second].URL}, client.WithHTTPClient(rec.client()),
		client.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	writer := newClient(t, c.URLs())
	ctx := ctxT(t)

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	// The test writes a few dozen events; the buffer holds them all, so the
	// follow never waits on the test.
	events := make(chan api.Event, 1024)
	ended := make(chan error, 1)
	go func() {
		defer close(events)
		for ev, err := range follower.FollowAudit(fctx, client.AuditQuery{}, "") {
			if err != nil {
				ended <- err
				return
			}
			events <- ev
		}
		ended <- errors.New("the follow ended without an error")
	}()
	var got []api.Event
	// until collects delivered events up to raft index idx.
	until := func(idx fsm.RaftIndex) {
		t.Helper()
		for len(got) == 0 || got[len(got)-1].Index < idx {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("follow ended at %d events, waiting for index %d: %v", len(got), idx, <-ended)
				}
				got = append(got, ev)
			case <-ctx.Done():
				t.Fatalf("no event at index %d within the deadline; %d delivered", idx, len(got))
			}
		}
	}
	// writes makes n writes, each with its own event, and returns the last index.
	on := false
	writes := func(n int) fsm.RaftIndex {
		t.Helper()
		var idx fsm.RaftIndex
		for i := 0; i < n; i++ {
			on = !on
			res, err := writer.Cordon(ctx, "w1", on)
			if err != nil {
				t.Fatal(err)
			}
			idx = res.Index
		}
		return idx
	}

	if _, err := writer.Register(ctx, api.RegisterRequest{Worker: "w1"}); err != nil {
		t.Fatal(err)
	}
	until(writes(5))
	beforeKill := client.EventCursor(got[len(got)-1])
	c.Kill(t, first)
	until(writes(5))
	c.Restart(t, first)
	c.Kill(t, second)
	until(writes(5))
	stop()
	for ev := range events {
		got = append(got, ev)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow ended with %v, want context.Canceled", err)
	}

	// Delivered = the log, in order, up to the last delivered index.
	last := got[len(got)-1].Index
	var want []string
	for _, ev := range allEvents(t, c) {
		if ev.Index <= last {
			want = append(want, fmt.Sprintf("%d.%d %s", ev.Index, ev.Seq, ev.Type()))
		}
	}
	var have []string
	for _, ev := range got {
		have = append(have, fmt.Sprintf("%d.%d %s", ev.Index, ev.Seq, ev.Type()))
	}
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Fatalf("delivered events differ from the log:\ndelivered:\n%s\nlog:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}

	// The connections: first on the first node from the start, then on the
	// second resuming after the last event seen before the kill, then back on
	// the restarted first.
	var conns []sent
	for _, s := range rec.take() {
		if strings.Contains(s.url, api.PathAuditFollow) {
			conns = append(conns, s)
		}
	}
	if len(conns) < 3 || !strings.HasPrefix(conns[0].url, c.Nodes[first].URL) || conns[0].lastEventID != "" {
		t.Fatalf("follow connections %+v: want the first on %s without Last-Event-ID", conns, c.Nodes[first].URL)
	}
	var onSecond, backOnFirst bool
	for _, s := range conns[1:] {
		switch {
		case strings.HasPrefix(s.url, c.Nodes[second].URL) && s.lastEventID == beforeKill:
			onSecond = true
		case strings.HasPrefix(s.url, c.Nodes[first].URL) && onSecond && s.lastEventID != "":
			backOnFirst = true
		}
	}
	if !onSecond || !backOnFirst {
		t.Fatalf("follow connections %+v: want one on %s after %s, then one back on %s", conns, c.Nodes[second].URL, beforeKill, c.Nodes[first].URL)
	}
}

// TestFollowAudit_BadQuery: a query the server refuses ends the follow with
// that error at once, without retrying.
func TestFollowAudit_BadQuery(t *testing.T) {
	c := testcluster.NewWithAPI(t, 1, server.Config{})
	cl := newClient(t, c.URLs())
	for name, q := range map[string]client.AuditQuery{
		"from above to": {From: 5, To: 2},
		"desc":          {Desc: true},
	} {
		t.Run(name, func(t *testing.T) {
			n := 0
			for _, err := range cl.FollowAudit(ctxT(t), q, "") {
				n++
				if !errors.Is(err, client.ErrBadRequest) && !errors.Is(err, client.ErrInvalidArgument) {
					t.Fatalf("follow: %v, want a bad request", err)
				}
			}
			if n != 1 {
				t.Fatalf("%d items, want one error", n)
			}
		})
	}
	for _, err := range cl.FollowAudit(ctxT(t), client.AuditQuery{}, "not-a-cursor") {
		if !errors.Is(err, client.ErrBadRequest) {
			t.Fatalf("follow from a bad cursor: %v", err)
		}
		break
	}
}
