package retry

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Class is how a failure is retried.
type Class uint8

const (
	// Transient: retry after a back-off (time-outs, lost connections, no
	// leader, an unknown outcome, a server error).
	Transient Class = 1 + iota
	// Throttle: the other side asked us to wait or a resource is busy (a rate
	// limit, the consumer limit, a WorkQueue subject another consumer still
	// holds); retry after a longer back-off.
	Throttle
	// Terminal: retrying the same thing cannot help (bad configuration, a
	// rejection by the claim store, a 4xx answer); report and re-plan.
	Terminal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttle:
		return "throttle"
	case Terminal:
		return "terminal"
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// JetStream API error codes Classify names that nats.go does not export.
const (
	// ErrCodeWorkQueueNotUnique is the server's answer to a consumer whose
	// filter overlaps another consumer's on a WorkQueue stream ("filtered
	// consumer not unique on workqueue stream"): the other consumer has not
	// dropped the subject yet, so it is Throttle.
	ErrCodeWorkQueueNotUnique jetstream.ErrorCode = 10100
)

// Classify sorts err into a retry class. A nil error is Transient (no failure
// to give up on). The first rule that matches err's chain decides:
//
//   - marked by MarkTerminal: Terminal;
//   - a JetStream API error: Throttle for a WorkQueue filter overlap, the
//     consumer limit or a 429; Transient for a missing consumer (being
//     recreated), a 408 or a 5xx; Terminal for a missing stream or another 4xx
//     (jetstream's sentinels such as ErrConsumerNotFound and ErrStreamNotFound
//     wrap an API error and are sorted here, by their code);
//   - an *api.Error: Terminal for any 4xx status; Transient for no_leader,
//     not_leader, unknown_outcome, not_ready, unavailable, timeout and internal
//     (see the package doc for internal); Terminal for every other code;
//   - an *fsm.RejectError: Terminal;
//   - context.DeadlineExceeded (an attempt's own deadline), a NATS time-out, a
//     closed connection, no responders, a missed pull heartbeat or a closed
//     message iterator: Transient;
//   - an invalid consumer name: Terminal;
//   - a net.Error: Transient;
//   - anything else (context.Canceled included: a cancellation says nothing
//     about the operation, and the loop's own context check stops it):
//     Transient.
func Classify(err error) Class {
	if err == nil {
		return Transient
	}
	var te *terminalError
	if errors.As(err, &te) {
		return Terminal
	}
	var je *jetstream.APIError
	if errors.As(err, &je) {
		return classifyJetStream(je)
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return classifyAPI(ae)
	}
	var re *fsm.RejectError
	switch {
	case errors.As(err, &re):
		return Terminal
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, jetstream.ErrMsgIteratorClosed):
		return Transient
	case errors.Is(err, jetstream.ErrInvalidConsumerName):
		return Terminal
	}
	// Explicit, though the default agrees: a lost connection stays Transient
	// whatever the default becomes.
	var ne net.Error
	if errors.As(err, &ne) {
		return Transient
	}
	return Transient
}

// classifyJetStream sorts a JetStream API error by its error code, then by its
// HTTP-like status.
func classifyJetStream(e *jetstream.APIError) Class {
	switch {
	case e.ErrorCode == ErrCodeWorkQueueNotUnique, e.ErrorCode == jetstream.JSErrCodeMaximumConsumersLimit,
		e.Code == 429:
		return Throttle
	case e.ErrorCode == jetstream.JSErrCodeConsumerNotFound, e.Code >= 500, e.Code == 408:
		return Transient
	case e.ErrorCode == jetstream.JSErrCodeStreamNotFound, e.Code >= 400:
		return Terminal
	}
	return Transient
}

// classifyAPI sorts an answer of Baton's API. The status is checked first:
// a 4xx answer is every node's answer, whatever code it carries (a proxy's 418
// decodes as internal).
func classifyAPI(e *api.Error) Class {
	if e.Status >= 400 && e.Status < 500 {
		return Terminal
	}
	switch e.Code {
	case api.CodeNoLeader, api.CodeNotLeader, api.CodeUnknownOutcome, api.CodeNotReady,
		api.CodeUnavailable, api.CodeTimeout, api.CodeInternal:
		return Transient
	}
	return Terminal
}

// MarkTerminal returns err marked so that Classify sorts it, and any error
// wrapping it, as Terminal; errors.Is and errors.As see through the mark, and
// its message is err's. A package marks its own sentinels this way when they
// mean that retrying cannot help (an option refused, a limit exceeded). It
// returns nil for nil.
func MarkTerminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err: err}
}

// terminalError is the mark MarkTerminal puts on an error.
type terminalError struct{ err error }

func (e *terminalError) Error() string { return e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }
