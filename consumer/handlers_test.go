package consumer

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/consumer/internal/core"
)

// TestRunJob_LeaseCheckedAtTheCall: the handler pool checks the lease right
// before every handler call, not only when the core dispatched: a process
// that froze between the decision and the call wakes up past its lease and
// must not run the handler (nor a retry of it). The message is reported not
// processed, so that it is read again by whoever owns the partition.
func TestRunJob_LeaseCheckedAtTheCall(t *testing.T) {
	var calls atomic.Int32
	fail := errors.New("try again")
	a := &Applier{opts: defaultOptions(), log: slog.New(slog.NewTextHandler(discard{}, nil)), metrics: newMetrics(nil, "w1")}
	a.opts.retries, a.opts.retryBackoff, a.opts.retryMaxBackoff = 3, time.Millisecond, time.Millisecond
	job := func() *job {
		return &job{
			Dispatch: core.Dispatch{Partition: "p1", Epoch: 1, Gen: 1, Success: core.SettleNone, DeadLetter: core.SettleNone,
				Msg: &core.Delivery{Seq: 7, Subject: "p1.x", FromRead: true, Payload: &message{subject: "p1.x"}}},
			ctx: context.Background(),
		}
	}
	setLease := func(d time.Duration) {
		l := time.Now().Add(d)
		a.lease.Store(&l)
	}

	a.handler = func(ctx context.Context, m *Msg) error { calls.Add(1); return nil }
	setLease(-time.Millisecond) // woke up past the lease
	if r := a.runJob(job()); r.processed || calls.Load() != 0 {
		t.Fatalf("past the lease: processed=%v, handler called %d times; want no call", r.processed, calls.Load())
	}

	setLease(time.Minute)
	if r := a.runJob(job()); !r.processed || calls.Load() != 1 {
		t.Fatalf("within the lease: processed=%v, handler called %d times; want one call", r.processed, calls.Load())
	}

	// A retry is a call too: the lease runs out during the first attempt.
	calls.Store(0)
	a.handler = func(ctx context.Context, m *Msg) error {
		calls.Add(1)
		setLease(-time.Millisecond)
		return fail
	}
	setLease(time.Minute)
	if r := a.runJob(job()); r.processed || calls.Load() != 1 {
		t.Fatalf("lease ran out during a failing attempt: processed=%v, handler called %d times; want 1 call, not processed", r.processed, calls.Load())
	}
}
