package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want class
	}{
		{"workqueue overlap", &jetstream.APIError{Code: 400, ErrorCode: errCodeWQNotUnique}, throttle},
		{"rate limited", &jetstream.APIError{Code: 429}, throttle},
		{"max consumers", &jetstream.APIError{Code: 400, ErrorCode: errCodeMaxConsumers}, throttle},
		{"consumer not found (api)", &jetstream.APIError{Code: 404, ErrorCode: errCodeConsumerNotFound}, transient},
		{"server error", &jetstream.APIError{Code: 503}, transient},
		{"stream not found", &jetstream.APIError{Code: 404, ErrorCode: errCodeStreamNotFound}, terminal},
		{"bad filter", &jetstream.APIError{Code: 400, ErrorCode: 10093}, terminal},
		{"consumer not found", jetstream.ErrConsumerNotFound, transient},
		{"no heartbeat", jetstream.ErrNoHeartbeat, transient},
		{"nats timeout", nats.ErrTimeout, transient},
		{"deadline", context.DeadlineExceeded, transient},
		{"connection closed", nats.ErrConnectionClosed, transient},
		{"no responders", nats.ErrNoResponders, transient},
		{"network", &net.OpError{Op: "dial", Err: errors.New("refused")}, transient},
		{"no leader", &api.Error{Code: api.CodeNoLeader}, transient},
		{"unknown outcome", &api.Error{Code: api.CodeUnknownOutcome}, transient},
		{"stale epoch (api)", &api.Error{Code: string(fsm.CodeStaleEpoch)}, terminal},
		{"forbidden", &api.Error{Code: api.CodeForbidden}, terminal},
		{"stale epoch (fsm)", fsm.ErrStaleEpoch, terminal},
		{"too many subjects", fmt.Errorf("x: %w", ErrMaxSubjects), terminal},
		{"worker mismatch", ErrWorkerMismatch, terminal},
		{"template", ErrTemplateMismatch, terminal},
		{"stream gone", jetstream.ErrStreamNotFound, terminal},
		{"wrapped transient", fmt.Errorf("update: %w", nats.ErrTimeout), transient},
		{"unknown", errors.New("something"), transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Fatalf("classify(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

// TestMatcher: a delivered message's concrete subject routes to the one
// partition whose pattern matches it.
func TestMatcher(t *testing.T) {
	m := fsm.NewSubjectIndex()
	m.Add("orders.p1.>", "p1")
	m.Add("orders.p2.created", "p2")
	m.Add("orders.*.eu", "p3")
	m.Add("billing", "p4")
	tests := map[string]fsm.PartitionID{
		"orders.p1.x": "p1", "orders.p1.x.y": "p1", "orders.p1": "",
		"orders.p2.created": "p2", "orders.p2.updated": "",
		"orders.zz.eu": "p3", "orders.zz.us": "",
		"billing": "p4", "billing.x": "", "other": "",
	}
	for subject, want := range tests {
		got, ok := m.Overlap(subject)
		if got != want || ok != (want != "") {
			t.Errorf("match(%q) = %q, %v; want %q", subject, got, ok, want)
		}
	}
}

func TestConsumerNames(t *testing.T) {
	for _, tt := range []struct {
		worker fsm.WorkerID
		inc    fsm.Incarnation
	}{{"w1", 7}, {"host.a.b", 12}, {"w_with_underscores", 3}} {
		name := consumerName("baton", tt.worker, tt.inc)
		if !validToken(name) {
			t.Fatalf("%q is not a valid consumer name", name)
		}
		w, inc, ok := parseConsumerName("baton", name)
		if !ok || w != sanitize(string(tt.worker)) || inc != tt.inc {
			t.Fatalf("parse %q = %q %d %v", name, w, inc, ok)
		}
	}
	for _, other := range []string{"other_w1_3", "baton_w1", "baton_w1_x", "baton__0", "baton_w1_0"} {
		if _, _, ok := parseConsumerName("baton", other); ok {
			t.Errorf("parsed foreign consumer %q", other)
		}
	}
	s, err := Subject("orders.{{.Partition}}.>", "p7")
	if err != nil || s != "orders.p7.>" {
		t.Fatalf("Subject = %q, %v", s, err)
	}
	for _, bad := range []string{"orders.>", "orders.{{.Nope}}", "orders.{{"} {
		if _, err := Subject(bad, "p"); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"batch of one stalls", WithBatch(1)},
		{"zero max ack pending", WithMaxAckPending(0)},
		{"short pull expiry", WithPullExpiry(10 * time.Millisecond)},
		{"short idle heartbeat", WithIdleHeartbeat(time.Millisecond)},
		{"zero concurrency", WithHandlerConcurrency(0)},
		{"negative coalesce", WithCoalesce(-time.Second)},
		{"tiny checkpoint interval", WithCheckpointInterval(time.Microsecond)},
		{"tiny drain timeout", WithDrainTimeout(time.Millisecond)},
		{"tiny ack wait", WithAckWait(time.Millisecond)},
		{"zero max subjects", WithMaxSubjects(0)},
		{"unknown empty policy", WithEmptyAssignment(9)},
		{"negative retries", WithRetry(-1, time.Millisecond, time.Second)},
		{"backoff max below initial", WithRetry(1, time.Second, time.Millisecond)},
		{"nil dead letter", WithDeadLetter(nil)},
		{"nil logger", WithLogger(nil)},
		{"nil registerer", WithRegisterer(nil)},
		{"bad prefix", WithConsumerPrefix("a.b")},
		{"zero weight", WithWeight(0)},
		{"template without partition", WithSubjectTemplate("orders.>")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultOptions()
			if err := tt.opt.apply(&o); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("got %v, want ErrInvalidOption", err)
			}
		})
	}
	t.Run("relations", func(t *testing.T) {
		o := defaultOptions()
		o.batch, o.maxAckPending = 500, 100
		o.setDefaults()
		if err := o.validate(); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("batch above max ack pending accepted: %v", err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		o := defaultOptions()
		o.setDefaults()
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		if o.idleHeartbeat != o.pullExpiry/2 {
			t.Fatalf("idle heartbeat %s, want half the expiry", o.idleHeartbeat)
		}
	})
}

// A WorkQueue stream's refusal of an overlapping filter reaches the core
// marked as core.ErrOverlap (still the server's error underneath); nothing
// else is marked.
func TestMarkOverlap(t *testing.T) {
	wq := fmt.Errorf("update consumer: %w", &jetstream.APIError{Code: 400, ErrorCode: errCodeWQNotUnique})
	if got := markOverlap(wq); !errors.Is(got, core.ErrOverlap) || classify(got) != throttle {
		t.Errorf("markOverlap(%v) = %v: want core.ErrOverlap, still throttle", wq, got)
	}
	for _, err := range []error{&jetstream.APIError{Code: 400, ErrorCode: 10093}, context.DeadlineExceeded, nil} {
		if got := markOverlap(err); got != err {
			t.Errorf("markOverlap(%v) = %v, want it unchanged", err, got)
		}
	}
}

// A refused overlapping filter also asks the janitor to look at once (a gone
// incarnation's consumer no partition lists is only its to find); other
// failures do not.
func TestUpdateFailed_OverlapPokesTheJanitor(t *testing.T) {
	a := &Applier{janitorNow: make(chan struct{}, 1)}
	poked := func() bool {
		select {
		case <-a.janitorNow:
			return true
		default:
			return false
		}
	}
	if err := a.updateFailed(context.DeadlineExceeded); err != context.DeadlineExceeded || poked() {
		t.Fatalf("a time-out: %v, or the janitor poked", err)
	}
	wq := &jetstream.APIError{Code: 400, ErrorCode: errCodeWQNotUnique}
	if err := a.updateFailed(wq); !errors.Is(err, core.ErrOverlap) || !poked() {
		t.Fatalf("an overlap: %v, janitor not poked", err)
	}
	// Pokes coalesce: one pending look covers the next.
	_ = a.updateFailed(wq)
	_ = a.updateFailed(wq)
	if !poked() || poked() {
		t.Fatal("two overlaps should leave exactly one look pending")
	}
}

// A gone worker's consumer that the server fails to update (500) is deleted
// instead, except on an Interest stream, where its subjects may be what keeps
// messages stored; other failures are retried as updates.
func TestDeleteInstead(t *testing.T) {
	internal := fmt.Errorf("update: %w", &jetstream.APIError{Code: 500, ErrorCode: 10012, Description: "open meta.inf.tmp: no such file or directory"})
	tests := []struct {
		name      string
		retention jetstream.RetentionPolicy
		err       error
		want      bool
	}{
		{"limits, internal error", jetstream.LimitsPolicy, internal, true},
		{"workqueue, internal error", jetstream.WorkQueuePolicy, internal, true},
		{"interest, internal error", jetstream.InterestPolicy, internal, false},
		{"workqueue, overlap", jetstream.WorkQueuePolicy, &jetstream.APIError{Code: 400, ErrorCode: errCodeWQNotUnique}, false},
		{"workqueue, timeout", jetstream.WorkQueuePolicy, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deleteInstead(tt.retention, tt.err); got != tt.want {
				t.Errorf("deleteInstead = %v, want %v", got, tt.want)
			}
		})
	}
}
