package consumer

import (
	"context"
	"errors"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Errors returned by the applier.
var (
	// ErrInvalidOption wraps every option and argument New refuses.
	ErrInvalidOption = errors.New("consumer: invalid option")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("consumer: closed")
	// ErrNotStarted is returned by Close before Start.
	ErrNotStarted = errors.New("consumer: not started")
	// ErrMaxSubjects is reported (Health, logs) when the assignment needs more
	// filter subjects than WithMaxSubjects allows; the consumer keeps its
	// current filters.
	ErrMaxSubjects = errors.New("consumer: too many filter subjects")
	// ErrWorkerMismatch is reported when the coordinator answers for another
	// worker id: the worker id of an applier never changes.
	ErrWorkerMismatch = errors.New("consumer: assignment for another worker")
	// ErrTemplateMismatch is reported when an assigned partition's subjects do
	// not follow WithSubjectTemplate.
	ErrTemplateMismatch = errors.New("consumer: partition subjects do not match the template")
	// ErrFenced is reported while the applier has stopped dispatching because
	// it could not renew its session within the TTL.
	ErrFenced = errors.New("consumer: fenced: session not renewed")
	// ErrStreamRetention is returned when the stream's retention is not one the
	// applier handles (Limits, Interest, WorkQueue).
	ErrStreamRetention = errors.New("consumer: unsupported stream retention")
)

// class is how an error is retried.
type class uint8

const (
	// transient: retry soon with backoff (timeouts, lost connections, no leader).
	transient class = 1 + iota
	// throttle: the other side asked us to wait or a resource is busy (rate
	// limits, a WorkQueue subject another consumer still holds); back off longer.
	throttle
	// terminal: retrying the same thing cannot help (bad configuration,
	// refused by the claim store, too many subjects); report and re-plan.
	terminal
)

func (c class) String() string {
	switch c {
	case transient:
		return "transient"
	case throttle:
		return "throttle"
	case terminal:
		return "terminal"
	}
	return "invalid"
}

// JetStream API error codes the classification names.
const (
	errCodeWQNotUnique      = 10100 // filtered consumer not unique on workqueue stream
	errCodeMaxConsumers     = 10026
	errCodeConsumerNotFound = 10014
	errCodeStreamNotFound   = 10059
)

// classify sorts an error into a retry class; retry policy depends on the class
// only (a table test pins every case).
func classify(err error) class {
	if err == nil {
		return transient
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == errCodeWQNotUnique, apiErr.Code == 429, apiErr.ErrorCode == errCodeMaxConsumers:
			return throttle
		case apiErr.ErrorCode == errCodeConsumerNotFound, apiErr.Code >= 500, apiErr.Code == 408:
			return transient
		case apiErr.ErrorCode == errCodeStreamNotFound:
			return terminal
		case apiErr.Code >= 400:
			return terminal
		}
		return transient
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case api.CodeNoLeader, api.CodeNotLeader, api.CodeUnknownOutcome, api.CodeNotReady,
			api.CodeUnavailable, api.CodeTimeout, api.CodeInternal:
			return transient
		}
		return terminal
	}
	var re *fsm.RejectError
	switch {
	case errors.As(err, &re):
		return terminal
	case errors.Is(err, ErrMaxSubjects), errors.Is(err, ErrWorkerMismatch), errors.Is(err, ErrTemplateMismatch),
		errors.Is(err, ErrStreamRetention), errors.Is(err, ErrInvalidOption):
		return terminal
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrMsgIteratorClosed):
		return transient
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrInvalidConsumerName):
		return terminal
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return transient
	}
	return transient
}
