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
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// maxResponseBytes bounds a response body read into memory. The server bounds
// its lists and pages far below this; anything larger is not a Baton answer.
const maxResponseBytes = 64 << 20

// Client is a Baton API client. It is safe for concurrent use; share one per
// process (or per worker) so that connections are reused.
type Client struct {
	*shared
	opts options
}

// shared is what Client and the views returned by At have in common.
type shared struct {
	addrs []string // base URLs, without a trailing slash
	hc    *http.Client
	own   *http.Transport // the transport New made, nil with WithHTTPClient
	// cur is the index in addrs of the last node that answered: every call
	// starts there, so a client sticks to a node that works.
	cur atomic.Uint32
}

// New returns a client for the cluster whose nodes' API base URLs
// (http://host:port or https://...) are addrs. Any node will do: followers
// forward writes to the leader. It fails with ErrNoAddresses,
// ErrInvalidAddress or an error wrapping ErrInvalidOption; it does not dial.
func New(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, ErrNoAddresses
	}
	s := &shared{}
	for _, a := range addrs {
		base, err := parseAddr(a)
		if err != nil {
			return nil, err
		}
		s.addrs = append(s.addrs, base)
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
	s.hc = o.httpClient
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
	// extra lengthens the default time-out (a blocking query's wait).
	extra time.Duration
}

// do runs r: it tries the remembered node first and, on a retryable failure,
// the next address after a back-off, up to the retry bound or ctx's end. A 2xx
// body is decoded into out (if not nil). It returns the answering response's
// headers.
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
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout+r.extra)
		defer cancel()
	}
	n := uint32(len(c.addrs))
	start := c.cur.Load()
	var last error
	for attempt := 0; ; attempt++ {
		i := (start + uint32(attempt)) % n
		h, err := c.attempt(ctx, c.addrs[i], r, body, reqID, out)
		if err == nil {
			c.cur.Store(i)
			return h, nil
		}
		var ae *api.Error
		if errors.As(err, &ae) && !retryable(ae) {
			c.cur.Store(i) // it answered: a 4xx is the same on every node
			return nil, fmt.Errorf("client: %s: %w", r.op, err)
		}
		if errors.Is(err, ErrBadResponse) {
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
		wait := c.backoff(attempt)
		if n == 1 {
			// A lone node asks us to come back later; with several, the next
			// one may well answer now.
			wait = max(wait, min(retryAfter(h), c.opts.backoffMax))
		}
		c.opts.logger.Debug("baton client retrying", "op", r.op, "attempt", attempt+1, "node", c.addrs[i],
			"next", c.addrs[(i+1)%n], "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("client: %s: %w (last attempt: %w)", r.op, err, last)
		}
	}
}

// attempt sends r once to addr. Errors are *api.Error (the server answered
// non-2xx), ErrUnreachable (transport) or ErrBadResponse.
func (c *Client) attempt(ctx context.Context, addr string, r request, body []byte, reqID string, out any) (http.Header, error) {
	target := addr + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
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

// backoff returns the wait before retry attempt+1: a random time in [d/2, d]
// with d = min(backoffMin·2^attempt, backoffMax), so that clients retrying
// together spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.backoffMax
	if attempt < 30 {
		d = min(c.opts.backoffMin<<attempt, c.opts.backoffMax)
	}
	return d/2 + mrand.N(d/2+1)
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
