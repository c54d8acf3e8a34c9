package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/internal/testcluster"
)

// TestMetrics_PendingMessages: baton_consumer_pending_messages shows the
// worker's lag, JetStream's count of messages it has not yet delivered to
// the worker's consumer: above zero while the worker is behind, zero once it
// has caught up.
func TestMetrics_PendingMessages(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 1)
	const n, blockAt = 60, 20
	var calls atomic.Int64
	first, later := make(chan struct{}), make(chan struct{})
	rec := e.rec.handler("w1")
	h := func(ctx context.Context, m *Msg) error {
		var gate chan struct{}
		switch calls.Add(1) {
		case 1:
			gate = first
		case blockAt:
			gate = later
		}
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return rec(ctx, m)
	}
	// At most 11 messages delivered and not acked: while the handler is
	// held, the server holds the rest back.
	a := e.startWorkerWith("w1", e.client, h, WithBatch(10), WithMaxAckPending(11))
	e.waitSettled()
	for i := range n {
		e.publishOne(context.Background(), e.parts[0], i)
	}
	close(first)
	testcluster.Eventually(t, fmt.Sprintf("handler call %d", blockAt), func() error {
		if c := calls.Load(); c < blockAt {
			return fmt.Errorf("%d calls", c)
		}
		return nil
	})
	// Everything delivered since the first release was delivered after the
	// last publish, at most blockAt-1 acked + 11 in flight of n.
	lag := testutil.ToFloat64(a.metrics.pending)
	t.Logf("pending while held at message %d of %d: %v", blockAt, n, lag)
	if lag < n-(blockAt-1+11) || lag >= n {
		t.Fatalf("pending %v while the worker is held at message %d of %d, want %d to %d", lag, blockAt, n, n-(blockAt-1+11), n-1)
	}
	close(later)
	e.waitHandled()
	testcluster.Eventually(t, "no lag once everything is handled", func() error {
		if v := testutil.ToFloat64(a.metrics.pending); v != 0 {
			return fmt.Errorf("pending %v", v)
		}
		return nil
	})
}

// TestMetrics_FencedGauge: baton_consumer_fenced is 1 while the worker is
// fenced and 0 again once it has a session, and each fence counts once in
// baton_consumer_fenced_total.
func TestMetrics_FencedGauge(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 2)
	hc := &hookCoord{Client: e.client}
	a := e.startWorkerWith("w1", hc, e.rec.handler("w1"))
	e.waitSettled()
	if v := testutil.ToFloat64(a.metrics.fencedNow); v != 0 {
		t.Fatalf("fenced gauge %v before any fence", v)
	}
	hc.failHeartbeats.Store(true)
	testcluster.Eventually(t, "w1 fenced", func() error {
		if err := a.Health(); !errors.Is(err, ErrFenced) {
			return fmt.Errorf("health %v", err)
		}
		if v := testutil.ToFloat64(a.metrics.fencedNow); v != 1 {
			return fmt.Errorf("fenced gauge %v", v)
		}
		return nil
	})
	hc.failHeartbeats.Store(false)
	testcluster.Eventually(t, "w1 unfenced", func() error {
		if v := testutil.ToFloat64(a.metrics.fencedNow); v != 0 {
			return fmt.Errorf("fenced gauge %v", v)
		}
		return nil
	})
	if v := testutil.ToFloat64(a.metrics.fenced); v != 1 {
		t.Fatalf("fenced_total %v after one fence", v)
	}
}
