package server

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Query parameters are parsed and checked once, up front, as rqlite does.

func consistency(r *http.Request) (raftnode.Consistency, error) {
	c, err := raftnode.ParseConsistency(r.URL.Query().Get("consistency"))
	if err != nil {
		return 0, api.Errorf(api.CodeBadRequest, "%v", err)
	}
	return c, nil
}

func uintParam(r *http.Request, name string) (uint64, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, api.Errorf(api.CodeBadRequest, "parameter %s=%q: not a non-negative integer", name, v)
	}
	return n, true, nil
}

// limitParam reads ?limit= (default def, at most max).
func limitParam(r *http.Request, def, max int) (int, error) {
	n, ok, err := uintParam(r, "limit")
	if err != nil || !ok {
		return def, err
	}
	if n == 0 || n > uint64(max) {
		return 0, api.Errorf(api.CodeBadRequest, "parameter limit=%d: must be 1 to %d", n, max)
	}
	return int(n), nil
}

// blocking reads ?index=N&wait=D. ok is false when the request does not block.
// The wait is capped at maxWait and gets up to 1/16 of jitter, as Consul does,
// so that many watchers do not all return at once.
func blocking(r *http.Request, maxWait time.Duration) (index fsm.RaftIndex, wait time.Duration, ok bool, err error) {
	// wait is checked even without index: a bad parameter is refused, not
	// ignored.
	wait = 30 * time.Second
	if v := r.URL.Query().Get("wait"); v != "" {
		wait, err = time.ParseDuration(v)
		if err != nil || wait <= 0 {
			return 0, 0, false, api.Errorf(api.CodeBadRequest, "parameter wait=%q: want a positive duration such as 30s", v)
		}
	}
	n, has, err := uintParam(r, "index")
	if err != nil || !has {
		return 0, 0, false, err
	}
	wait = min(wait, maxWait)
	wait += rand.N(wait/16 + 1)
	return fsm.RaftIndex(n), wait, true, nil
}

// timeParam reads a time as RFC 3339 or Unix nanoseconds; 0 when absent.
func timeParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, api.Errorf(api.CodeBadRequest, "parameter %s=%q: want RFC 3339 or Unix nanoseconds", name, v)
	}
	return t.UnixNano(), nil
}

// requestID returns the caller's request id (header, then ?request_id=), or a
// fresh one: writes are always idempotent within the server's own retries.
func requestID(r *http.Request) (string, error) {
	id := r.Header.Get(api.HeaderRequestID)
	if id == "" {
		id = r.URL.Query().Get("request_id")
	}
	if id == "" {
		return raftnode.NewRequestID(), nil
	}
	if err := fsm.CheckRequestID(id); err != nil {
		return "", api.Errorf(api.CodeBadRequest, "%s", rejectMsg(err))
	}
	return id, nil
}

// workerParam returns the worker id of the path, refusing one no worker can
// have.
func workerParam(r *http.Request) (fsm.WorkerID, error) {
	id := fsm.WorkerID(r.PathValue("id"))
	if err := fsm.CheckWorkerID(id); err != nil {
		return "", err
	}
	return id, nil
}

// partitionParam returns the partition id of the path, refusing one no
// partition can have.
func partitionParam(r *http.Request) (fsm.PartitionID, error) {
	id := fsm.PartitionID(r.PathValue("id"))
	if err := fsm.CheckPartitionID(id); err != nil {
		return "", err
	}
	return id, nil
}

// rejectMsg is a rejection's message without the "fsm: code: " prefix.
func rejectMsg(err error) string {
	var re *fsm.RejectError
	if errors.As(err, &re) && re.Msg != "" {
		return re.Msg
	}
	return err.Error()
}
