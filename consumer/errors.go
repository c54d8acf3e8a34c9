package consumer

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/internal/retry"
)

// Errors returned by the applier. Those after which a retry cannot help are
// marked with retry.MarkTerminal, so that classify, and retry.Do wherever it
// runs, sort them (and anything wrapping them) as terminal.
var (
	// ErrInvalidOption wraps every option and argument New refuses.
	ErrInvalidOption = retry.MarkTerminal(errors.New("consumer: invalid option"))
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("consumer: closed")
	// ErrNotStarted is returned by Close before Start.
	ErrNotStarted = errors.New("consumer: not started")
	// ErrMaxSubjects is reported (Health, logs) when the assignment needs more
	// filter subjects than WithMaxSubjects allows; the consumer keeps its
	// current filters.
	ErrMaxSubjects = retry.MarkTerminal(errors.New("consumer: too many filter subjects"))
	// ErrWorkerMismatch is reported when the coordinator answers for another
	// worker id: the worker id of an applier never changes.
	ErrWorkerMismatch = retry.MarkTerminal(errors.New("consumer: assignment for another worker"))
	// ErrTemplateMismatch is reported when an assigned partition's subjects do
	// not follow WithSubjectTemplate.
	ErrTemplateMismatch = retry.MarkTerminal(errors.New("consumer: partition subjects do not match the template"))
	// ErrFenced is reported while the applier has stopped dispatching because
	// it could not renew its session within the TTL.
	ErrFenced = errors.New("consumer: fenced: session not renewed")
	// ErrStreamRetention is returned when the stream's retention is not one the
	// applier handles (Limits, Interest, WorkQueue).
	ErrStreamRetention = retry.MarkTerminal(errors.New("consumer: unsupported stream retention"))
)

// class is how an error is retried: retry's classes, under the names the
// package's loops use.
type class = retry.Class

const (
	// transient: retry soon with backoff (timeouts, lost connections, no leader).
	transient = retry.Transient
	// throttle: the other side asked us to wait or a resource is busy (rate
	// limits, a WorkQueue subject another consumer still holds); back off longer.
	throttle = retry.Throttle
	// terminal: retrying the same thing cannot help (bad configuration,
	// refused by the claim store, too many subjects); report and re-plan.
	terminal = retry.Terminal
)

// JetStream API error codes that classify sorts apart (retry names the one
// nats.go does not), under the names the package's tests use.
const (
	errCodeWQNotUnique      = retry.ErrCodeWorkQueueNotUnique
	errCodeMaxConsumers     = jetstream.JSErrCodeMaximumConsumersLimit
	errCodeConsumerNotFound = jetstream.JSErrCodeConsumerNotFound
	errCodeStreamNotFound   = jetstream.JSErrCodeStreamNotFound
)

// classify sorts an error into a retry class (retry.Classify: the policy
// api/client shares); the package's own terminal sentinels are marked with
// retry.MarkTerminal above. Retry policy depends on the class only.
func classify(err error) class { return retry.Classify(err) }
