package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

// maxResponseBytes bounds a response body read into memory. The server bounds
// its lists and pages far below this; anything larger is not a Baton answer.
const maxResponseBytes = 64 << 20

// Client is a Baton API client. It is safe for concurrent use; share one per
// process (or per worker) so that connections are reused and what one call
// learns about the nodes (the leader, a frozen node) serves the others.
type Client struct {
	*shared
	opts options
}

// shared is what Client and the views returned by At have in common.
type shared struct {
	rt  *router
	hc  *http.Client
	own *http.Transport // the transport New made, nil with WithHTTPClient
}

// New returns a client for the cluster whose nodes' API base URLs
// (http://host:port or https://...) are addrs. Any node will do: followers
// forward writes to the leader, and every answer names the leader, to which
// the client then sends writes and leader reads directly (when it is one of
// addrs, spelled as the node advertises it). It fails with ErrNoAddresses,
// ErrInvalidAddress or an error wrapping ErrInvalidOption; it does not dial.
func New(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, ErrNoAddresses
	}
	var bases []string
	for _, a := range addrs {
		base, err := parseAddr(a)
		if err != nil {
			return nil, err
		}
		bases = append(bases, base)
	}
	o := newOptions()
	for i, opt := range opts {
		if opt == nil {
			return nil, invalid("option %d is nil", i)
		}
		if err := opt.apply(&o); err != nil {
			return nil, err
		}
	}
	o.setDefaults()
	s := &shared{rt: newRouter(bases, suspectAttempts*o.attempt), hc: o.httpClient}
	if s.hc == nil {
		// Not http.DefaultTransport: it reads proxy settings from the
		// environment, and the client's idle connections must be closable.
		s.own = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
		s.hc = &http.Client{Transport: s.own}
	}
	return &Client{shared: s, opts: o}, nil
}

// suspectAttempts is for how many attempt timeouts a node that timed out is
// skipped (and, if it was frozen itself, doubted as leader): long enough to
// outlast an election (followers keep naming a frozen leader until they elect
// another), short enough that a node that was only slow is soon used again.
const suspectAttempts = 5

// parseAddr checks a node's base URL and returns it without a trailing slash.
func parseAddr(a string) (string, error) {
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: %q: want http(s)://host:port", ErrInvalidAddress, a)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Close releases the idle connections of the client's own transport (none
// with WithHTTPClient). Calls in progress carry on; the client stays usable.
func (c *Client) Close() {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// At returns a view of the client whose reads use consistency cons; it shares
// the connections and the remembered node. An invalid cons leaves the
// client's default in place.
func (c *Client) At(cons Consistency) *Client {
	v := *c
	if cons.valid() {
		v.opts.consistency = cons
	}
	return &v
}

// request is one logical call, retried as a unit.
type request struct {
	op     string // names the call in errors: "register w1"
	method string
	path   string // escaped, from pathFor
	query  url.Values
	body   any  // JSON-encoded once; nil: no body
	write  bool // carries a request id, the same on every retry
	read   bool // sends the client's consistency
	// leader marks a call only the leader serves (a heartbeat, a dry run);
	// writes, and reads at any consistency but stale, are too.
	leader bool
	// wait makes the call a blocking query that waits up to this long
	// (?wait=, shortened to the call's deadline on each attempt).
	wait time.Duration
}

// toLeader reports whether r is served by the leader (a follower would
// forward it), so that its attempts go straight to the leader when known.
func (c *Client) toLeader(r request) bool {
	return r.write || r.leader || (r.read && c.opts.consistency != ConsistencyStale)
}

// do runs r: each attempt goes to the address the router picks (the leader
// for leader-bound calls, else the node that last answered) and is bounded by
// the attempt timeout; on a retryable failure the next attempt goes to the
// next address (or the leader, once named), after a back-off unless the
// attempt timed out or was redirected, up to the retry bound or ctx's end. A
// 2xx body is decoded into out (if not nil). It returns the answering
// response's headers.
func (c *Client) do(ctx context.Context, r request, out any) (http.Header, error) {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("client: %s: encode request: %w", r.op, err)
		}
	}
	var reqID string
	if r.write {
		reqID = newRequestID()
	}
	if r.read && c.opts.consistency != ConsistencyDefault {
		if r.query == nil {
			r.query = url.Values{}
		}
		r.query.Set("consistency", c.opts.consistency.String())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout+r.wait+r.wait/16)
		defer cancel()
	}
	toLeader := c.toLeader(r)
	prev := noLeader
	b := c.newBackoff()
	var last error
	for attempt := 0; ; attempt++ {
		i := c.rt.pick(toLeader, prev)
		prev = i
		h, o, err := c.try(ctx, i, r, body, reqID, toLeader, out)
		switch o {
		case outDone:
			return h, nil
		case outFinal:
			return nil, fmt.Errorf("client: %s: %w", r.op, err)
		}
		if ctx.Err() != nil {
			if !isCtxErr(err) {
				last = err
			}
			if last == nil {
				return nil, fmt.Errorf("client: %s: %w", r.op, ctx.Err())
			}
			return nil, fmt.Errorf("client: %s: %w (last attempt: %w)", r.op, ctx.Err(), last)
		}
		last = err
		if attempt >= c.opts.retries {
			return nil, fmt.Errorf("client: %s: %d attempts failed, last: %w", r.op, attempt+1, err)
		}
		// An attempt that timed out has waited already, and a redirected
		// one knows where to go: the next goes at once.
		var wait time.Duration
		if o == outRetry || o == outUnreachable {
			wait = b.Next(retry.Classify(err))
			if len(c.rt.addrs) == 1 {
				// A lone node asks us to come back later; with several,
				// the next one may well answer now.
				wait = max(wait, min(retryAfter(h), c.opts.backoffMax))
			}
		}
		c.opts.logger.Debug("baton client retrying", "op", r.op, "attempt", attempt+1, "node", c.rt.addrs[i],
			"outcome", o, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("client: %s: %w (last attempt: %w)", r.op, err, last)
		}
	}
}

// try makes one attempt of r on address i, bounded by the attempt timeout
// (plus a blocking query's wait) and cancelled if a new leader is learned
// meanwhile while it seeks the leader elsewhere. It records what the attempt
// says about the node with the router and returns its outcome.
func (c *Client) try(ctx context.Context, i int, r request, body []byte, reqID string, toLeader bool, out any) (http.Header, outcome, error) {
	budget := c.opts.attempt
	q := r.query
	if r.wait > 0 {
		dl, _ := ctx.Deadline() // do gave it one
		w := blockingWait(r.wait, time.Until(dl))
		q = maps.Clone(q)
		if q == nil {
			q = url.Values{}
		}
		q.Set("wait", w.String())
		budget += w + w/16 // the server adds up to 1/16 of jitter
	}
	fctx, redirect := context.WithCancelCause(ctx)
	defer redirect(nil)
	actx, cancel := context.WithCancelCause(fctx)
	defer cancel(nil)
	f := c.rt.start(i, toLeader, redirect)
	addr := c.rt.addrs[i]
	answered := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.watchAttempt(actx, cancel, i, toLeader, answered)
	}()
	h, err := c.attempt(actx, addr, r, q, body, reqID, out)
	close(answered)
	<-watched
	c.rt.end(f)
	o := classifyAttempt(err, context.Cause(actx), ctx.Err())
	var ae *api.Error
	switch {
	case o == outDone, errors.As(err, &ae):
		c.rt.answered(i, h, o != outRetry)
	case o == outTimedOut:
		c.rt.timedOut(i, toLeader)
		err = fmt.Errorf("%w: %s did not answer within %s", ErrUnreachable, addr, budget)
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %s did not answer before the call's deadline", ErrUnreachable, addr)
		}
	case o == outRedirected:
		err = fmt.Errorf("%w: %s: a new leader was named", ErrUnreachable, addr)
	case o == outUnreachable:
		c.rt.unreachable(i)
	}
	return h, o, err
}

// watchAttempt ends an attempt to address i that got no answer within the
// attempt timeout (a blocking query: within each attempt timeout of its
// wait) if the node is not alive: a frozen node (a stopped process, a paused VM)
// still accepts connections but answers nothing, so the attempt would hang
// for the call's whole deadline. A node that is merely slow (a large write
// under fsync load, a long answer) answers its /healthz at once; the attempt
// then keeps waiting, and is probed again after each further attempt
// timeout. A leader-bound attempt is waited for only on the node the client
// believes leads (or while it knows none): one on a follower whose forward
// hangs on a frozen leader is sent to the leader the client has learned
// meanwhile (the probe's own answer names the leader that node knows). It
// returns when the attempt is answered or ends.
func (c *Client) watchAttempt(actx context.Context, cancel context.CancelCauseFunc, i int, toLeader bool, answered <-chan struct{}) {
	// Checked from the first attempt timeout on, a blocking query too:
	// parked on a node that froze, it would otherwise hold the caller for
	// its whole wait (a worker would miss a handoff's prepare for that
	// long), however soon the node stopped answering.
	t := time.NewTimer(c.opts.attempt)
	defer t.Stop()
	for {
		select {
		case <-answered:
			return
		case <-actx.Done():
			return
		case <-t.C:
		}
		if !c.alive(actx, i) {
			cancel(errAttemptTimeout)
			return
		}
		if l := c.rt.leaderNow(); toLeader && l != noLeader && l != i {
			cancel(errRedirected)
			return
		}
		t.Reset(c.opts.attempt)
	}
}

// alive asks node i's /healthz, bounded by half the attempt timeout (a live
// node answers it at once: it touches neither raft nor the disk), and
// records its answer (and the leader it names) with the router.
func (c *Client) alive(ctx context.Context, i int) bool {
	ctx, cancel := context.WithTimeout(ctx, c.opts.attempt/2)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.rt.addrs[i]+api.PathHealth, nil)
	if err != nil {
		return false
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c.rt.answered(i, resp.Header, true)
	return true
}

// outcome is what became of one attempt, for the retry loop.
type outcome uint8

const (
	// outDone: a 2xx answer; the call succeeded.
	outDone outcome = 1 + iota
	// outFinal: an answer every node would give (a 4xx), or one that is not
	// a Baton answer: the call fails with it.
	outFinal
	// outRetry: a 503/504 answer that may differ elsewhere or later (no
	// leader, not ready, unknown outcome): retried after a back-off.
	outRetry
	// outUnreachable: a transport failure (refused, reset): retried on the
	// next address after a back-off.
	outUnreachable
	// outTimedOut: no answer within the attempt's bound, or before the
	// call's deadline: the node may be frozen; retried elsewhere at once.
	outTimedOut
	// outRedirected: cancelled because a new leader was named: retried
	// there at once.
	outRedirected
	// outEnded: the caller cancelled the call.
	outEnded
)

func (o outcome) String() string {
	switch o {
	case outDone:
		return "done"
	case outFinal:
		return "final"
	case outRetry:
		return "retry"
	case outUnreachable:
		return "unreachable"
	case outTimedOut:
		return "timed out"
	case outRedirected:
		return "redirected"
	case outEnded:
		return "ended"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// classifyAttempt sorts an attempt's result: err is what the attempt
// returned, cause the cause its context ended with (nil if it did not end),
// callErr the call context's error. An answer counts even if a context ended
// just after it; a context that ended before one came is a time-out when a
// deadline passed (the attempt's own, or the call's: either way the node did
// not answer in the time it had), a redirection, or the caller's cancellation.
func classifyAttempt(err, cause, callErr error) outcome {
	var ae *api.Error
	switch {
	case err == nil:
		return outDone
	case errors.As(err, &ae):
		if retryable(ae) {
			return outRetry
		}
		return outFinal
	case errors.Is(err, ErrBadResponse):
		return outFinal
	case cause == nil:
		return outUnreachable
	case errors.Is(cause, errAttemptTimeout), errors.Is(cause, context.DeadlineExceeded):
		return outTimedOut
	case errors.Is(cause, errRedirected) && callErr == nil:
		return outRedirected
	}
	return outEnded
}

// blockingWait is the wait a blocking query asks for on an attempt made with
// left until the call's deadline: wait, shortened to three quarters of left
// so that the answer (the wait plus up to 1/16 of jitter) comes back before
// the deadline, or every watch would end in a client time-out.
func blockingWait(wait, left time.Duration) time.Duration {
	if w := left - left/4; wait > w {
		return max(w, time.Millisecond)
	}
	return wait
}

// attempt sends r once to addr with query q. Errors are *api.Error (the
// server answered non-2xx), ErrUnreachable (transport) or ErrBadResponse.
func (c *Client) attempt(ctx context.Context, addr string, r request, q url.Values, body []byte, reqID string, out any) (http.Header, error) {
	target := addr + r.path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err) // unreachable: the URL was checked in New
	}
	c.setHeaders(req, reqID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		// The connection broke mid-answer: for a write the outcome is unknown,
		// and a retry with the same request id settles it.
		return resp.Header, fmt.Errorf("%w: reading the answer from %s: %w", ErrUnreachable, addr, err)
	}
	if len(data) > maxResponseBytes {
		return resp.Header, fmt.Errorf("%w: answer from %s exceeds %d bytes", ErrBadResponse, addr, maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, decodeError(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("%w: %s %s from %s: %w", ErrBadResponse, r.method, r.path, addr, err)
		}
	}
	return resp.Header, nil
}

func (c *Client) setHeaders(req *http.Request, reqID string) {
	req.Header.Set("Accept", "application/json")
	if c.opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.token)
	}
	if reqID != "" {
		req.Header.Set(api.HeaderRequestID, reqID)
	}
}

// decodeError turns a non-2xx answer into an *api.Error. A body that is not
// the API's error envelope (a proxy's page) gets a code from its status.
func decodeError(status int, data []byte) *api.Error {
	var eb api.ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error != nil && eb.Error.Code != "" {
		if eb.Error.Status == 0 {
			eb.Error.Status = status
		}
		return eb.Error
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return &api.Error{Code: codeOfStatus(status), Message: fmt.Sprintf("HTTP %d: %s", status, msg), Status: status}
}

func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeBadRequest
	case http.StatusUnauthorized:
		return api.CodeUnauthorized
	case http.StatusForbidden:
		return api.CodeForbidden
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusMethodNotAllowed:
		return api.CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return api.CodeBodyTooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return api.CodeUnavailable
	case http.StatusGatewayTimeout:
		return api.CodeTimeout
	}
	return api.CodeInternal
}

// newBackoff returns the back-off of one call's (or one audit follow's)
// retries: retry's jittered exponential back-off between WithBackoff's
// bounds, so that clients retrying together spread out.
func (c *Client) newBackoff() *retry.Backoff {
	return retry.NewBackoff(c.opts.backoffMin, c.opts.backoffMax)
}

func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// newRequestID returns a random request id: one per logical write, sent on
// every retry of it, so that the server applies it at most once.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// pathFor fills the {id} of an api.Path* pattern, escaped.
func pathFor(pattern, id string) string {
	return strings.Replace(pattern, "{id}", url.PathEscape(id), 1)
}

// need checks that an id bound for a path is not empty.
func need(op, what, id string) error {
	if id == "" {
		return fmt.Errorf("client: %s: %w: empty %s id", op, ErrInvalidArgument, what)
	}
	return nil
}

// indexOf reads the X-Baton-Index header (0 when absent).
func indexOf(h http.Header) fsm.RaftIndex {
	n, _ := strconv.ParseUint(h.Get(api.HeaderIndex), 10, 64)
	return fsm.RaftIndex(n)
}
