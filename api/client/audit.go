package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

// AuditQuery selects audit events; every set field must match and zero fields
// match anything. The answering node serves it from its own copy of the log,
// at most a replication lag behind the leader.
type AuditQuery struct {
	// From and To bound the raft index, inclusive (0: open).
	From, To fsm.RaftIndex
	// Partition, Worker and Handoff select the events that concern them.
	Partition fsm.PartitionID
	Worker    fsm.WorkerID
	Handoff   fsm.HandoffID
	// Types selects events of any of these types (empty: all).
	Types []fsm.EventType
	// Since and Until bound the leader time, inclusive (zero: open).
	Since, Until time.Time
	// Limit is the page size (0: the server's default, 100; at most 1000).
	Limit int
	// Desc returns the newest events first (not for FollowAudit).
	Desc bool
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	setUint := func(k string, n uint64) {
		if n != 0 {
			v.Set(k, strconv.FormatUint(n, 10))
		}
	}
	setUint("from", uint64(q.From))
	setUint("to", uint64(q.To))
	if q.Partition != "" {
		v.Set("partition", string(q.Partition))
	}
	if q.Worker != "" {
		v.Set("worker", string(q.Worker))
	}
	if q.Handoff != 0 {
		v.Set("handoff", q.Handoff.String())
	}
	if len(q.Types) > 0 {
		names := make([]string, len(q.Types))
		for i, t := range q.Types {
			names[i] = t.String()
		}
		v.Set("type", strings.Join(names, ","))
	}
	if !q.Since.IsZero() {
		v.Set("since", strconv.FormatInt(q.Since.UnixNano(), 10))
	}
	if !q.Until.IsZero() {
		v.Set("until", strconv.FormatInt(q.Until.UnixNano(), 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Desc {
		v.Set("order", "desc")
	}
	return v
}

// EventCursor returns the position of ev in the audit log, as the server's
// cursors and SSE ids spell it: pass it as Audit's after or FollowAudit's from
// to continue after ev.
func EventCursor(ev api.Event) string {
	return fmt.Sprintf("%d.%d.%d", ev.Index, ev.Seq, ev.Time)
}

// Audit returns one page of events matching q, after the cursor after (""
// from the start). Pass the page's Next as after for the next page; it is
// empty on the last. A page may be short, even empty, and still have a Next.
// ErrBadRequest for an invalid query or cursor.
func (c *Client) Audit(ctx context.Context, q AuditQuery, after string) (api.AuditPage, error) {
	v := q.values()
	if after != "" {
		v.Set("after", after)
	}
	var out api.AuditPage
	_, err := c.do(ctx, request{op: "audit query", method: http.MethodGet, path: api.PathAudit, query: v}, &out)
	return out, err
}

// AuditAll iterates over every event matching q, page by page. An error ends
// the iteration after it is yielded.
func (c *Client) AuditAll(ctx context.Context, q AuditQuery) iter.Seq2[api.Event, error] {
	return func(yield func(api.Event, error) bool) {
		after := ""
		for {
			page, err := c.Audit(ctx, q, after)
			if err != nil {
				yield(api.Event{}, err)
				return
			}
			for _, ev := range page.Events {
				if !yield(ev, nil) {
					return
				}
			}
			if page.Next == "" {
				return
			}
			if page.Next == after {
				yield(api.Event{}, fmt.Errorf("client: audit query: %w: cursor %q did not advance", ErrBadResponse, after))
				return
			}
			after = page.Next
		}
	}
}

// FollowAudit streams the events matching q as they are appended, oldest
// first, starting after the cursor from ("" from the start of the log; see
// EventCursor), over Server-Sent Events. When the connection drops (the node
// stops, the network breaks) it reconnects, to the next address if the node
// is gone, and resumes after the last event delivered (Last-Event-ID): no
// event is skipped or repeated.
//
// A node that stops answering without closing the connection (frozen by a
// SIGSTOP or a VM pause) is noticed by its silence: it sends a keep-alive
// every api.FollowKeepAlive while no event comes, and a connection that
// brings nothing for 2×api.FollowKeepAlive plus the attempt timeout (or no
// answer within the attempt timeout) is given up and resumed elsewhere.
//
// It ends when ctx ends (yielding ctx's error), when the consumer stops, on a
// 4xx answer (ErrBadRequest for q.Desc or a bad query), or after the retry
// bound of consecutive connections that delivered nothing. Only ctx bounds
// it: WithTimeout does not apply.
func (c *Client) FollowAudit(ctx context.Context, q AuditQuery, from string) iter.Seq2[api.Event, error] {
	return func(yield func(api.Event, error) bool) {
		if q.Desc {
			yield(api.Event{}, fmt.Errorf("client: follow audit: %w: a follow reads oldest first", ErrInvalidArgument))
			return
		}
		f := &follow{c: c, query: q.values(), last: from, yield: yield}
		f.run(ctx)
	}
}

// follow is one FollowAudit iteration: it owns the connection and the position.
type follow struct {
	c     *Client
	query url.Values
	last  string // the cursor of the last event yielded (or the start)
	yield func(api.Event, error) bool
	done  bool // the consumer stopped, or a terminal error was yielded
}

func (f *follow) run(ctx context.Context) {
	i := f.c.rt.pick(false, noLeader)
	b := f.c.newBackoff()
	failures := 0
	for {
		delivered, err := f.connect(ctx, i)
		if f.done {
			return
		}
		if ctx.Err() != nil {
			f.yield(api.Event{}, fmt.Errorf("client: follow audit: %w", ctx.Err()))
			return
		}
		if delivered {
			failures = 0
			b.Reset()
		} else {
			failures++
		}
		if failures > f.c.opts.retries {
			f.yield(api.Event{}, fmt.Errorf("client: follow audit: %d connections in a row delivered nothing, last: %w", failures, err))
			return
		}
		// The node ended the stream, could not be reached or went silent: it
		// may be gone, so the next attempt goes to the next address.
		next := f.c.rt.pick(false, i)
		wait := b.Next(retry.Classify(err))
		f.c.opts.logger.Debug("baton client reconnecting audit follow", "node", f.c.rt.addrs[i], "next", f.c.rt.addrs[next],
			"after", f.last, "wait", wait, "err", err)
		i = next
		if err := sleep(ctx, wait); err != nil {
			f.yield(api.Event{}, fmt.Errorf("client: follow audit: %w", err))
			return
		}
	}
}

// connect follows on node i until the stream ends. It reports whether it
// delivered any event, and why the stream ended; f.done is set when the
// iteration must end.
func (f *follow) connect(ctx context.Context, i int) (delivered bool, err error) {
	addr := f.c.rt.addrs[i]
	target := addr + api.PathAuditFollow
	if len(f.query) > 0 {
		target += "?" + f.query.Encode()
	}
	// Until the node answers, the attempt timeout bounds the connection;
	// then a silence longer than two keep-alives (and the attempt timeout,
	// for the way) means the node stopped.
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	silent := time.AfterFunc(f.c.opts.attempt, func() { cancel(errAttemptTimeout) })
	defer silent.Stop()
	idle := 2*f.c.opts.keepAlive + f.c.opts.attempt
	// silenced reports whether the connection ended because the node went
	// silent, and records that with the router.
	silenced := func() bool {
		if ctx.Err() != nil || !errors.Is(context.Cause(cctx), errAttemptTimeout) {
			return false
		}
		f.c.rt.timedOut(i, false)
		return true
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, target, nil)
	if err != nil {
		f.fail(fmt.Errorf("%w: %w", ErrBadResponse, err))
		return false, err
	}
	f.c.setHeaders(req, "")
	req.Header.Set("Accept", "text/event-stream")
	if f.last != "" {
		req.Header.Set("Last-Event-ID", f.last)
	}
	resp, err := f.c.hc.Do(req)
	if err != nil {
		if silenced() {
			return false, fmt.Errorf("%w: %s did not answer within %s", ErrUnreachable, addr, f.c.opts.attempt)
		}
		if ctx.Err() == nil {
			f.c.rt.unreachable(i)
		}
		return false, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	silent.Reset(idle)
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := decodeError(resp.StatusCode, data)
		f.c.rt.answered(i, resp.Header, !retryable(ae))
		if !retryable(ae) {
			f.fail(ae)
		}
		return false, ae
	}
	f.c.rt.answered(i, resp.Header, true)
	sc := bufio.NewScanner(resp.Body)
	// One event per SSE message; a declaration of many partitions is the
	// largest, and well below this.
	sc.Buffer(make([]byte, 0, 64<<10), maxResponseBytes)
	var id, typ string
	var data bytes.Buffer
	for sc.Scan() {
		silent.Reset(idle)
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "": // a comment: keep-alive
			case "id":
				id = value
			case "event":
				typ = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
			continue
		}
		// A blank line dispatches the message.
		msgID, msgType, msgData := id, typ, data.Bytes()
		id, typ = "", ""
		if len(msgData) == 0 {
			data.Reset()
			continue
		}
		if msgType == "error" {
			// The node could not read its log (it is shutting down):
			// resume elsewhere.
			return delivered, fmt.Errorf("%w: %s reported %s", ErrUnavailable, addr, msgData)
		}
		var ev api.Event
		if err := json.Unmarshal(msgData, &ev); err != nil {
			f.fail(fmt.Errorf("%w: audit event %s from %s: %w", ErrBadResponse, msgID, addr, err))
			return delivered, err
		}
		data.Reset()
		// The consumer's time is not the node's silence.
		silent.Stop()
		if !f.yield(ev, nil) {
			f.done = true
			return true, nil
		}
		silent.Reset(idle)
		delivered = true
		if msgID == "" {
			msgID = EventCursor(ev)
		}
		f.last = msgID
	}
	err = sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		f.fail(fmt.Errorf("%w: audit event from %s longer than %d bytes", ErrBadResponse, addr, maxResponseBytes))
		return delivered, err
	}
	if err == nil {
		err = io.EOF
	}
	if silenced() {
		return delivered, fmt.Errorf("%w: %s sent nothing for %s", ErrUnreachable, addr, idle)
	}
	return delivered, fmt.Errorf("%w: audit follow on %s ended: %w", ErrUnreachable, addr, err)
}

// fail yields a terminal error and ends the iteration.
func (f *follow) fail(err error) {
	f.yield(api.Event{}, fmt.Errorf("client: follow audit: %w", err))
	f.done = true
}
