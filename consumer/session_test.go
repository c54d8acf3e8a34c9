package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

func TestHeartbeatTimeout(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ttl, interval time.Duration
		want          time.Duration
	}{
		{"the defaults: a quarter of the fencing margin of a 5 s TTL", 5 * time.Second, time.Second, 250 * time.Millisecond},
		{"a 10 s TTL", 10 * time.Second, 2 * time.Second, 500 * time.Millisecond},
		{"at least 100 ms: a slow answer is not a frozen node", 1500 * time.Millisecond, 250 * time.Millisecond, 100 * time.Millisecond},
		{"never more than half the interval", 10 * time.Second, 300 * time.Millisecond, 150 * time.Millisecond},
		{"half the interval wins over the floor", 50 * time.Millisecond, 10 * time.Millisecond, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := heartbeatTimeout(tc.ttl, tc.interval)
			if got != tc.want {
				t.Fatalf("heartbeatTimeout(%s, %s) = %s, want %s", tc.ttl, tc.interval, got, tc.want)
			}
			if margin := tc.ttl / 5; got > margin/2 {
				t.Fatalf("%s is more than half the fencing margin %s", got, margin)
			}
		})
	}
}

// stuckCoord is the real client whose next heartbeat, when armed, hangs
// until its deadline, as a call to a frozen node does; it records how long
// each heartbeat call was allowed.
type stuckCoord struct {
	hookCoord
	hang atomic.Bool

	mu      sync.Mutex // guards budgets and results, written by the session loop
	budgets []time.Duration
	results []error
}

func (s *stuckCoord) Heartbeat(ctx context.Context, w fsm.WorkerID, inc fsm.Incarnation) (time.Duration, error) {
	var budget time.Duration
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	var ttl time.Duration
	var err error
	if s.hang.CompareAndSwap(true, false) {
		<-ctx.Done()
		err = fmt.Errorf("injected: a frozen node: %w", ctx.Err())
	} else {
		ttl, err = s.hookCoord.Heartbeat(ctx, w, inc)
	}
	s.mu.Lock()
	s.budgets = append(s.budgets, budget)
	s.results = append(s.results, err)
	s.mu.Unlock()
	return ttl, err
}

// TestHeartbeat_StuckCallGivesWay: every heartbeat call is bounded by
// heartbeatTimeout, well under the fencing margin, so a call stuck on a
// frozen node cannot hold the lease renewal back; the next call follows, the
// session is renewed, and the worker never fences.
func TestHeartbeat_StuckCallGivesWay(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 2)
	sc := &stuckCoord{hookCoord: hookCoord{Client: e.client}}
	a := e.startWorkerWith("w1", sc, e.rec.handler("w1"))
	e.waitSettled()
	ttl, interval := controllerConfig().SessionTTL, controllerConfig().HeartbeatInterval
	limit := heartbeatTimeout(ttl, interval)

	sc.mu.Lock()
	from := len(sc.results)
	sc.mu.Unlock()
	sc.hang.Store(true)
	testcluster.Eventually(t, "a stuck heartbeat, then a renewal", func() error {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		stuck := -1
		for i := from; i < len(sc.results); i++ {
			if stuck < 0 && sc.results[i] != nil {
				stuck = i
			}
			if stuck >= 0 && sc.results[i] == nil {
				return nil
			}
		}
		return errors.New("not yet")
	})
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i, b := range sc.budgets {
		if b <= 0 || b > limit {
			t.Fatalf("heartbeat call %d was allowed %s, want at most %s (TTL %s, interval %s)", i, b, limit, ttl, interval)
		}
	}
	if n := testutil.ToFloat64(a.metrics.fenced); n != 0 {
		t.Fatalf("the worker fenced itself %v times", n)
	}
}
