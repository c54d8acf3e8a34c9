package client

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
)

// Option configures a Client. Options are created by the With functions; each
// checks its argument, and New returns the first failure (wrapping
// ErrInvalidOption).
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// Consistency is how fresh a read must be (the server's ?consistency=).
type Consistency uint8

// Read consistency levels.
const (
	// ConsistencyDefault reads on the leader (followers forward): current
	// unless a partition has just deposed the leader without its knowing.
	ConsistencyDefault Consistency = 1 + iota
	// ConsistencyStale reads the answering node's own state: fast, served by
	// any node, possibly behind.
	ConsistencyStale
	// ConsistencyLinearizable reads on the leader after it confirms its
	// leadership with a quorum.
	ConsistencyLinearizable
)

func (c Consistency) String() string {
	switch c {
	case ConsistencyDefault:
		return "default"
	case ConsistencyStale:
		return "stale"
	case ConsistencyLinearizable:
		return "linearizable"
	}
	return fmt.Sprintf("invalid(%d)", uint8(c))
}

func (c Consistency) valid() bool { return c >= ConsistencyDefault && c <= ConsistencyLinearizable }

// Defaults.
const (
	// DefaultTimeout bounds a call whose context has no deadline.
	DefaultTimeout = 10 * time.Second
	// DefaultAttemptTimeout is how long an attempt of a call (one request to
	// one node) waits for its answer before the node is checked: a healthy
	// node answers far sooner, a raft commit included; a frozen one never
	// does, and one and a half times this (the wait, then an unanswered
	// /healthz) is how long it holds the call up. It is also about how late after an election the
	// first attempt to reach the new leader may start (the attempts sent
	// before it are stuck on the frozen leader, or on followers forwarding to
	// it). A node that is only slow (a write whose commit takes seconds under
	// fsync load) answers the check and is waited for: retrying elsewhere
	// would only add work to it.
	DefaultAttemptTimeout = 500 * time.Millisecond
	// DefaultRetries is how many times a call is retried after the first
	// attempt (on another node, after a back-off).
	DefaultRetries = 10
	// DefaultBackoffMin and DefaultBackoffMax bound the jittered exponential
	// back-off between attempts.
	DefaultBackoffMin = 25 * time.Millisecond
	DefaultBackoffMax = 2 * time.Second
	// maxRetries bounds WithRetries: retry loops are never unbounded.
	maxRetries = 1000
)

type options struct {
	token       string
	httpClient  *http.Client
	timeout     time.Duration
	attempt     time.Duration
	keepAlive   time.Duration // the servers' audit follow keep-alive; tests shorten it
	retries     int
	backoffMin  time.Duration
	backoffMax  time.Duration
	logger      *slog.Logger
	consistency Consistency
}

// unset marks an int option the caller did not give (0 retries is meaningful).
const unset = -1

func newOptions() options {
	return options{retries: unset}
}

// setDefaults fills in every option the caller left unset, once all options
// have been applied.
func (o *options) setDefaults() {
	if o.timeout == 0 {
		o.timeout = DefaultTimeout
	}
	if o.attempt == 0 {
		o.attempt = DefaultAttemptTimeout
	}
	if o.keepAlive == 0 {
		o.keepAlive = api.FollowKeepAlive
	}
	if o.retries == unset {
		o.retries = DefaultRetries
	}
	if o.backoffMin == 0 {
		o.backoffMin, o.backoffMax = DefaultBackoffMin, DefaultBackoffMax
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.consistency == 0 {
		o.consistency = ConsistencyDefault
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithToken sends token as "Authorization: Bearer <token>" on every request.
func WithToken(token string) Option {
	return optionFunc(func(o *options) error {
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			return invalid("WithToken: the token must be non-empty and contain no whitespace")
		}
		o.token = token
		return nil
	})
}

// WithHTTPClient makes the client send its requests through hc (for TLS
// settings or a proxy). hc must not set a Timeout shorter than the longest
// blocking query or audit follow: the client bounds every call by its context.
// Close leaves hc's connections alone.
func WithHTTPClient(hc *http.Client) Option {
	return optionFunc(func(o *options) error {
		if hc == nil {
			return invalid("WithHTTPClient: nil *http.Client")
		}
		o.httpClient = hc
		return nil
	})
}

// WithTimeout bounds each call whose context has no deadline, retries
// included (default DefaultTimeout). Blocking queries get their wait on top of
// it; audit follows are bounded only by their context.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithTimeout: %s must be > 0", d)
		}
		o.timeout = d
		return nil
	})
}

// WithAttemptTimeout sets how long each attempt of a call (one request to one
// node, until its answer has been read) waits before the node is checked
// (default DefaultAttemptTimeout): the client then asks the node's /healthz,
// bounded by d/2. A node that answers it is slow, not frozen, and the
// attempt goes on (checked again every d; the answer also names the leader
// that node knows, which moves a leader-bound attempt waiting on a follower's
// forward to a frozen leader once another is elected). A node that does not
// (frozen by a SIGSTOP, a VM pause or a long GC pause) is given up for this
// call, which goes on at the next address at once. For five attempt timeouts calls then
// stop starting at that node, and it is forgotten as the leader; unless the
// attempt may only have been waiting on a follower's forward to a frozen
// leader, other nodes naming it as leader are not believed meanwhile
// (followers keep naming a frozen leader until they elect another). A
// blocking query's attempt gets its wait on top, and its node is checked
// every d while it waits (parked on a node that froze, it moves within about
// 1.5 d); an audit follow's
// connection is bounded by d until the node answers, then given up when it
// stays silent (no event, no keep-alive) for 2×api.FollowKeepAlive+d. The
// call's context and WithTimeout still bound the whole call: a call whose
// deadline is nearer than d makes one attempt, and the next call starts
// elsewhere if that one got no answer.
func WithAttemptTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d <= 0 {
			return invalid("WithAttemptTimeout: %s must be > 0", d)
		}
		o.attempt = d
		return nil
	})
}

// WithRetries sets how many times a call is retried after its first attempt
// (default DefaultRetries; 0 disables retries; at most 1000). Only connection
// failures, attempt time-outs and 5xx answers (internal, no leader, not ready,
// unknown outcome, unavailable, timeout) are retried, on the next address (or
// the leader, once a node has named it); 4xx answers never are.
func WithRetries(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 || n > maxRetries {
			return invalid("WithRetries: %d not in [0, %d]", n, maxRetries)
		}
		o.retries = n
		return nil
	})
}

// WithBackoff bounds the jittered exponential back-off between attempts: each
// back-off of a call waits a random time in [d/2, d], where d is initial for
// the first and doubles for each next one, up to max. (Attempts that timed out
// or were redirected go on at once, without one.) Defaults DefaultBackoffMin
// and DefaultBackoffMax.
func WithBackoff(initial, max time.Duration) Option {
	return optionFunc(func(o *options) error {
		if initial <= 0 || max < initial {
			return invalid("WithBackoff: want 0 < initial (%s) <= max (%s)", initial, max)
		}
		o.backoffMin, o.backoffMax = initial, max
		return nil
	})
}

// WithLogger receives the client's debug logs (retries, fail-overs). Default:
// discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil {
			return invalid("WithLogger: nil logger")
		}
		o.logger = l
		return nil
	})
}

// WithConsistency sets the consistency of reads (default ConsistencyDefault).
// Client.At overrides it for some calls.
func WithConsistency(c Consistency) Option {
	return optionFunc(func(o *options) error {
		if !c.valid() {
			return invalid("WithConsistency: %s", c)
		}
		o.consistency = c
		return nil
	})
}
