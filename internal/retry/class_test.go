package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

func TestClassify(t *testing.T) {
	errBadOption := retry.MarkTerminal(errors.New("pkg: invalid option"))
	for _, tc := range []struct {
		name string
		err  error
		want retry.Class
	}{
		{"nil is no failure to give up on", nil, retry.Transient},

		// Marked by the caller.
		{"marked terminal", errBadOption, retry.Terminal},
		{"marked terminal, wrapped", fmt.Errorf("new: %w", errBadOption), retry.Terminal},
		{"the mark wins over a transient error inside it", retry.MarkTerminal(nats.ErrTimeout), retry.Terminal},

		// JetStream API errors, by error code, then by status.
		{"workqueue filter overlap", &jetstream.APIError{Code: 400, ErrorCode: retry.ErrCodeWorkQueueNotUnique}, retry.Throttle},
		{"consumer limit", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeMaximumConsumersLimit}, retry.Throttle},
		{"rate limited", &jetstream.APIError{Code: 429}, retry.Throttle},
		{"consumer not found (api)", &jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeConsumerNotFound}, retry.Transient},
		{"jetstream 503", &jetstream.APIError{Code: 503}, retry.Transient},
		{"jetstream 500", &jetstream.APIError{Code: 500, ErrorCode: 10999}, retry.Transient},
		{"jetstream request timeout", &jetstream.APIError{Code: 408}, retry.Transient},
		{"stream not found (api)", &jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeStreamNotFound}, retry.Terminal},
		{"bad filter", &jetstream.APIError{Code: 400, ErrorCode: 10093}, retry.Terminal},
		{"a jetstream error without a status", &jetstream.APIError{ErrorCode: 10999}, retry.Transient},
		{"consumer not found (sentinel)", jetstream.ErrConsumerNotFound, retry.Transient},
		{"stream not found (sentinel)", jetstream.ErrStreamNotFound, retry.Terminal},
		{"stream not found, wrapped", fmt.Errorf("info: %w", jetstream.ErrStreamNotFound), retry.Terminal},

		// Baton API answers.
		{"no leader", &api.Error{Code: api.CodeNoLeader, Status: 503}, retry.Transient},
		{"not leader", &api.Error{Code: api.CodeNotLeader, Status: 503}, retry.Transient},
		{"unknown outcome", &api.Error{Code: api.CodeUnknownOutcome, Status: 503}, retry.Transient},
		{"not ready", &api.Error{Code: api.CodeNotReady, Status: 503}, retry.Transient},
		{"unavailable", &api.Error{Code: api.CodeUnavailable, Status: 503}, retry.Transient},
		{"server timeout", &api.Error{Code: api.CodeTimeout, Status: 504}, retry.Transient},
		{"internal: outcome unknown, may differ on another node", &api.Error{Code: api.CodeInternal, Status: 500}, retry.Transient},
		{"internal without a status", &api.Error{Code: api.CodeInternal}, retry.Transient},
		{"a proxy's 418 decodes as internal but is a 4xx", &api.Error{Code: api.CodeInternal, Status: 418}, retry.Terminal},
		{"a 4xx status wins over a retryable code", &api.Error{Code: api.CodeNoLeader, Status: 409}, retry.Terminal},
		{"unknown session: register again", &api.Error{Code: api.CodeUnknownSession, Status: 404}, retry.Terminal},
		{"request body timeout", &api.Error{Code: api.CodeRequestTimeout, Status: 408}, retry.Terminal},
		{"forbidden", &api.Error{Code: api.CodeForbidden}, retry.Terminal},
		{"bad request", &api.Error{Code: api.CodeBadRequest, Status: 400}, retry.Terminal},
		{"stale epoch (api)", &api.Error{Code: string(fsm.CodeStaleEpoch), Status: 409}, retry.Terminal},
		{"a code this version does not know, 5xx", &api.Error{Code: "from_the_future", Status: 503}, retry.Terminal},
		{"api error, wrapped", fmt.Errorf("client: heartbeat w1: %w", &api.Error{Code: api.CodeNoLeader}), retry.Transient},

		// State machine rejections.
		{"stale epoch (fsm)", fsm.ErrStaleEpoch, retry.Terminal},
		{"not owner, wrapped", fmt.Errorf("drain p1: %w", &fsm.RejectError{Code: fsm.CodeNotOwner, Msg: "p1"}), retry.Terminal},

		// Contexts, NATS and the network.
		{"an attempt's deadline", context.DeadlineExceeded, retry.Transient},
		{"cancelled: says nothing about the operation", context.Canceled, retry.Transient},
		{"nats timeout", nats.ErrTimeout, retry.Transient},
		{"nats timeout, wrapped", fmt.Errorf("update: %w", nats.ErrTimeout), retry.Transient},
		{"connection closed", nats.ErrConnectionClosed, retry.Transient},
		{"no responders", nats.ErrNoResponders, retry.Transient},
		{"no heartbeat", jetstream.ErrNoHeartbeat, retry.Transient},
		{"message iterator closed", jetstream.ErrMsgIteratorClosed, retry.Transient},
		{"invalid consumer name", jetstream.ErrInvalidConsumerName, retry.Terminal},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, retry.Transient},
		{"dns", &net.DNSError{Err: "no such host", Name: "nats.invalid"}, retry.Transient},
		{"network, wrapped", fmt.Errorf("client: unreachable: %w", &net.OpError{Op: "read", Err: errors.New("reset")}), retry.Transient},

		{"unknown", errors.New("something"), retry.Transient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retry.Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

// TestClassify_EveryAPICode: an answer of Baton's API, as the server sends it,
// is retried exactly when its status is 5xx.
func TestClassify_EveryAPICode(t *testing.T) {
	for _, code := range api.Codes() {
		t.Run(code, func(t *testing.T) {
			status := api.StatusOf(code)
			want := retry.Terminal
			if status >= 500 {
				want = retry.Transient
			}
			if got := retry.Classify(api.Errorf(code, "m")); got != want {
				t.Fatalf("Classify(%s, status %d) = %s, want %s", code, status, got, want)
			}
		})
	}
}

func TestMarkTerminal(t *testing.T) {
	if retry.MarkTerminal(nil) != nil {
		t.Fatal("MarkTerminal(nil) is not nil")
	}
	base := errors.New("pkg: too many subjects")
	marked := retry.MarkTerminal(base)
	if marked.Error() != base.Error() {
		t.Fatalf("message %q, want %q", marked, base)
	}
	if !errors.Is(fmt.Errorf("x: %w", marked), base) || !errors.Is(fmt.Errorf("x: %w", marked), marked) {
		t.Fatal("errors.Is does not see through the mark")
	}
	var ae *api.Error
	if !errors.As(retry.MarkTerminal(&api.Error{Code: api.CodeNoLeader}), &ae) || ae.Code != api.CodeNoLeader {
		t.Fatal("errors.As does not see through the mark")
	}
}

func TestClass_String(t *testing.T) {
	for c, want := range map[retry.Class]string{
		retry.Transient: "transient", retry.Throttle: "throttle", retry.Terminal: "terminal", 0: "Class(0)",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(c), got, want)
		}
	}
}
