package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

// The audit log is served from the answering node's own copy: every node holds
// the whole log (it travels in raft snapshots), at most a replication lag behind.

// parseAuditQuery reads the audit filters from the query string:
// from, to (raft index); partition, worker, handoff ("h12" or 12); type
// (repeatable or comma-separated); since, until (RFC 3339 or Unix ns);
// after (a cursor from a previous page); limit; order=desc.
func parseAuditQuery(r *http.Request) (audit.Query, error) {
	var q audit.Query
	v := r.URL.Query()
	from, _, err := uintParam(r, "from")
	if err != nil {
		return q, err
	}
	to, _, err := uintParam(r, "to")
	if err != nil {
		return q, err
	}
	q.FromIndex, q.ToIndex = fsm.RaftIndex(from), fsm.RaftIndex(to)
	q.Partition = fsm.PartitionID(v.Get("partition"))
	q.Worker = fsm.WorkerID(v.Get("worker"))
	if h := v.Get("handoff"); h != "" {
		id, err := fsm.ParseHandoffID(h)
		if err != nil {
			return q, api.Errorf(api.CodeBadRequest, "parameter handoff=%q: want h<n>", h)
		}
		q.Handoff = id
	}
	for _, ts := range v["type"] {
		for _, t := range strings.Split(ts, ",") {
			et, err := fsm.ParseEventType(strings.TrimSpace(t))
			if err != nil {
				return q, api.Errorf(api.CodeBadRequest, "parameter type=%q: %v", t, err)
			}
			q.Types = append(q.Types, et)
		}
	}
	if q.Since, err = timeParam(r, "since"); err != nil {
		return q, err
	}
	if q.Until, err = timeParam(r, "until"); err != nil {
		return q, err
	}
	if q.Limit, err = limitParam(r, audit.DefaultLimit, audit.MaxLimit); err != nil {
		return q, err
	}
	switch o := v.Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, api.Errorf(api.CodeBadRequest, "parameter order=%q: asc or desc", o)
	}
	if a := v.Get("after"); a != "" {
		c, err := parseCursor(a)
		if err != nil {
			return q, err
		}
		q.After = c
	}
	return q, nil
}

// formatCursor renders a page cursor as "index.seq.time" (audit.Cursor.String).
func formatCursor(c *audit.Cursor) string {
	if c == nil {
		return ""
	}
	return c.String()
}

// parseCursor reads a cursor with audit.ParseCursor, which accepts exactly
// what formatCursor writes (its error quotes at most the first 52 bytes).
func parseCursor(s string) (*audit.Cursor, error) {
	c, err := audit.ParseCursor(s)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "%v", err)
	}
	return &c, nil
}

func (s *Server) auditQuery(w http.ResponseWriter, r *http.Request, caller principal) error {
	q, err := parseAuditQuery(r)
	if err != nil {
		return err
	}
	p, err := s.node.Audit().Query(r.Context(), q)
	if err != nil {
		if errors.Is(err, audit.ErrInvalidQuery) {
			return api.Errorf(api.CodeBadRequest, "%v", err)
		}
		return err
	}
	setIndex(w, s.node.Audit().LastIndex())
	writeJSON(w, http.StatusOK, api.AuditPage{Events: api.Events(p.Events), Next: formatCursor(p.Next)})
	return nil
}

// auditFollow streams matching events as Server-Sent Events, oldest first: each
// has id "index.seq.time" (resume with Last-Event-ID or ?after=), event = the
// type, data = the event's JSON. Comments keep idle connections alive.
func (s *Server) auditFollow(w http.ResponseWriter, r *http.Request, caller principal) error {
	q, err := parseAuditQuery(r)
	if err != nil {
		return err
	}
	if q.Desc {
		return api.Errorf(api.CodeBadRequest, "follow reads oldest first")
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if q.After, err = parseCursor(id); err != nil {
			return err
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return api.Errorf(api.CodeInternal, "streaming unsupported")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	log := s.node.Audit()
	// The first page is read before the stream starts, so that a query the
	// log refuses (from above to, since after until) gets a 400 like the
	// paged query does, not a 200 followed by an error event. Each round reads
	// the log's end before querying: anything appended after it is picked up
	// by the next round instead of being waited past.
	seen := log.LastIndex()
	p, err := log.Query(ctx, q)
	if err != nil {
		if errors.Is(err, audit.ErrInvalidQuery) {
			return api.Errorf(api.CodeBadRequest, "%v", err)
		}
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": following the audit log\n\n")
	flusher.Flush()
	for {
		for _, ev := range p.Events {
			data, err := json.Marshal(api.Event{Event: ev})
			if err != nil {
				return nil
			}
			c := audit.Cursor{Index: ev.Index, Seq: ev.Seq, Time: ev.Time}
			if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", formatCursor(&c), ev.Type(), data); err != nil {
				return nil
			}
		}
		if len(p.Events) > 0 {
			flusher.Flush()
		}
		if n := len(p.Events); n > 0 {
			last := p.Events[n-1]
			q.After = &audit.Cursor{Index: last.Index, Seq: last.Seq, Time: last.Time}
		}
		if p.Next != nil {
			q.After = p.Next
		} else {
			// Nothing more now: wait for the log to grow past what we have
			// seen, with a keep-alive comment every api.FollowKeepAlive:
			// clients take a longer silence for a frozen node.
			wctx, wcancel := context.WithTimeout(ctx, api.FollowKeepAlive)
			_, err = s.node.WaitAudit(wctx, seen)
			wcancel()
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
					return nil
				}
				flusher.Flush()
				p = audit.Page{} // sent already: wait again
				continue
			} else if err != nil {
				return nil
			}
		}
		seen = log.LastIndex()
		if p, err = log.Query(ctx, q); err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
				flusher.Flush()
			}
			return nil
		}
	}
}
