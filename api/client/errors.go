package client

import (
	"errors"
	"fmt"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/retry"
)

// Errors of the client itself. Each is wrapped with the operation and its ids
// ("client: register w1: ..."); compare with errors.Is.
var (
	// ErrInvalidOption is wrapped by every option that refuses its argument,
	// and so by New.
	ErrInvalidOption = errors.New("client: invalid option")
	// ErrNoAddresses is returned by New when it is given no server address.
	ErrNoAddresses = errors.New("client: no server addresses")
	// ErrInvalidAddress is returned by New for an address that is not an
	// http(s)://host[:port] URL.
	ErrInvalidAddress = errors.New("client: invalid server address")
	// ErrInvalidArgument is returned before any request is sent when an
	// argument cannot be valid (an empty worker or partition id, say).
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrUnreachable wraps a transport failure (connection refused or reset, a
	// dial time-out) or an attempt that got no answer within the attempt
	// timeout (a frozen node), for the last attempt when every attempt failed
	// that way.
	ErrUnreachable = errors.New("client: server unreachable")
	// ErrBadResponse is returned when a server answers with a body the client
	// cannot decode: a proxy in the way, or an incompatible server.
	ErrBadResponse = errors.New("client: bad response")
)

// API error codes as sentinels. A non-2xx response decodes into an *api.Error
// whose Is compares codes, so errors.Is(err, client.ErrNotFound) holds for a
// not_found answer, and errors.Is(err, fsm.ErrStaleEpoch) for a stale_epoch
// rejection (the state machine's codes need no sentinel here: use fsm's).
var (
	// ErrBadRequest: the request was malformed (a client bug, or a bad argument).
	ErrBadRequest = &api.Error{Code: api.CodeBadRequest}
	// ErrBodyTooLarge: the request body exceeds the server's bound.
	ErrBodyTooLarge = &api.Error{Code: api.CodeBodyTooLarge}
	// ErrUnauthorized: no token, or one the server does not know.
	ErrUnauthorized = &api.Error{Code: api.CodeUnauthorized}
	// ErrForbidden: the token's role may not do this.
	ErrForbidden = &api.Error{Code: api.CodeForbidden}
	// ErrNotFound: no such endpoint or object (Plan on a node with no planner).
	ErrNotFound = &api.Error{Code: api.CodeNotFound}
	// ErrNoLeader: the cluster had no leader through every retry.
	ErrNoLeader = &api.Error{Code: api.CodeNoLeader}
	// ErrNotLeader: the answering node could not reach the leader.
	ErrNotLeader = &api.Error{Code: api.CodeNotLeader}
	// ErrUnknownOutcome: a write may or may not have been applied and the
	// retries ran out; calling again with the same arguments is safe only for
	// idempotent writes (every write the server dedupes by request id is, but
	// a new call gets a new request id).
	ErrUnknownOutcome = &api.Error{Code: api.CodeUnknownOutcome}
	// ErrUnknownSession: the leader holds no session for this worker
	// incarnation (it expired): register again.
	ErrUnknownSession = &api.Error{Code: api.CodeUnknownSession}
	// ErrNotReady: the node is still catching up.
	ErrNotReady = &api.Error{Code: api.CodeNotReady}
	// ErrUnavailable: the node is shutting down or cannot serve.
	ErrUnavailable = &api.Error{Code: api.CodeUnavailable}
	// ErrTimeout: the server gave up waiting (for raft, for a read index).
	ErrTimeout = &api.Error{Code: api.CodeTimeout}
	// ErrInternal: a failure the server did not expect (a bug, or an error
	// of one node's raft, disk or encoding); a write's outcome is unknown.
	// Retried like a 503 (the same request id settles a write), and returned
	// when the retries run out.
	ErrInternal = &api.Error{Code: api.CodeInternal}
)

// retryable reports whether an API error may go away on another node or a
// little later (retry.Classify, the policy the consumer shares): the node has
// no leader, is not ready, is shutting down, timed out, failed unexpectedly
// (internal), or the write's outcome is unknown; a write is retried with the
// same request id, so the server dedupes. 4xx answers never are.
func retryable(e *api.Error) bool { return retry.Classify(e) != retry.Terminal }

// BatchError lists the rejected items of a batch write (drained, activated,
// checkpoints, released, declare, remove partitions). Items holds one entry per
// item sent, nil for accepted ones. errors.Is(err, fsm.ErrStaleEpoch) holds if
// any item was rejected with that code.
type BatchError struct {
	Items []*api.Error
}

func (e *BatchError) Error() string {
	n, first := 0, -1
	for i, it := range e.Items {
		if it != nil {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	if n == 0 {
		return "client: no item rejected"
	}
	if n == 1 {
		return fmt.Sprintf("client: item %d rejected: %v", first, e.Items[first])
	}
	return fmt.Sprintf("client: %d items rejected, first %d: %v", n, first, e.Items[first])
}

// Unwrap returns the item errors, so errors.Is and errors.As look at each.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, it := range e.Items {
		if it != nil {
			out = append(out, it)
		}
	}
	return out
}

// ItemErrors returns a *BatchError if any item of a batch write was rejected,
// and nil if all were accepted.
func ItemErrors(r api.WriteResponse) error {
	for _, it := range r.Items {
		if it != nil {
			return &BatchError{Items: r.Items}
		}
	}
	return nil
}
