package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Register registers a worker, starting a new incarnation if it was known (the
// previous one's partitions are orphaned and force-committed from their last
// checkpoint). The registration names the incarnation every later report must
// carry, and the session's TTL and heartbeat interval. Retried with the same
// request id, it yields one incarnation however often it is retried.
//
// Errors: fsm.ErrInvalidArgument, fsm.ErrLimitExceeded, and those every call
// can return (package doc): ErrUnauthorized, ErrForbidden, ErrUnreachable,
// ErrNoLeader after the retries, the context's error.
func (c *Client) Register(ctx context.Context, req api.RegisterRequest) (api.Registration, error) {
	var out api.Registration
	_, err := c.do(ctx, request{op: "register " + string(req.Worker), method: http.MethodPost,
		path: api.PathRegister, body: req, write: true}, &out)
	return out, err
}

// Heartbeat renews worker's session and returns how long it now lasts.
// ErrUnknownSession means the session expired (or inc is not the current
// incarnation): register again.
func (c *Client) Heartbeat(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation) (time.Duration, error) {
	op := "heartbeat " + string(worker)
	if err := need(op, "worker", string(worker)); err != nil {
		return 0, err
	}
	var out api.HeartbeatResponse
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: pathFor(api.PathHeartbeat, string(worker)),
		body: api.HeartbeatRequest{Incarnation: inc}, leader: true}, &out)
	return time.Duration(out.SessionTTLMS) * time.Millisecond, err
}

// Leave starts worker's graceful leave: it receives nothing new and is gone once
// its partitions are handed off (at once if it owns none). Leaving twice is a
// no-op. Errors: fsm.ErrUnknownWorker, fsm.ErrStaleIncarnation,
// fsm.ErrWorkerNotActive.
func (c *Client) Leave(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation) (api.WriteResponse, error) {
	return c.workerWrite(ctx, "leave", worker, api.PathLeave, api.LeaveRequest{Incarnation: inc})
}

// Drained reports drained handoffs. Per-item rejections (fsm.ErrStaleEpoch,
// fsm.ErrUnknownHandoff, fsm.ErrWrongPhase, ...) are in the response's Items;
// ItemErrors turns them into an error. A whole-command rejection
// (fsm.ErrStaleIncarnation, fsm.ErrUnknownWorker) is the error.
func (c *Client) Drained(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.DrainItem) (api.WriteResponse, error) {
	return c.workerWrite(ctx, "drained", worker, api.PathDrained, api.DrainedRequest{Incarnation: inc, Items: items})
}

// Activated reports partitions the worker resumed; errors as for Drained.
func (c *Client) Activated(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.ActivateItem) (api.WriteResponse, error) {
	return c.workerWrite(ctx, "activated", worker, api.PathActivated, api.ActivatedRequest{Incarnation: inc, Items: items})
}

// Checkpoints records progress on many partitions in one raft entry; errors as
// for Drained (fsm.ErrSeqRegressed for a checkpoint that goes back). The
// response carries no events.
func (c *Client) Checkpoints(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.CheckpointItem) (api.WriteResponse, error) {
	return c.workerWrite(ctx, "checkpoints", worker, api.PathCheckpoints, api.CheckpointsRequest{Incarnation: inc, Items: items})
}

// Released gives partitions up (unassigned, checkpoint at through_seq); errors
// as for Drained.
func (c *Client) Released(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.ReleaseItem) (api.WriteResponse, error) {
	return c.workerWrite(ctx, "released", worker, api.PathReleased, api.ReleasedRequest{Incarnation: inc, Items: items})
}

func (c *Client) workerWrite(ctx context.Context, verb string, worker fsm.WorkerID, pattern string, body any) (api.WriteResponse, error) {
	op := verb + " " + string(worker)
	var out api.WriteResponse
	if err := need(op, "worker", string(worker)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: pathFor(pattern, string(worker)), body: body, write: true}, &out)
	return out, err
}

// Assignment returns what worker must do now and the index to pass to
// WatchAssignment. fsm.ErrUnknownWorker if it is not registered.
func (c *Client) Assignment(ctx context.Context, worker fsm.WorkerID) (fsm.Assignment, fsm.RaftIndex, error) {
	op := "assignment of " + string(worker)
	if err := need(op, "worker", string(worker)); err != nil {
		return fsm.Assignment{}, 0, err
	}
	var out fsm.Assignment
	h, err := c.do(ctx, request{op: op, method: http.MethodGet, path: pathFor(api.PathAssignment, string(worker)), read: true}, &out)
	return out, indexOf(h), err
}

// WatchAssignment is a blocking query: it returns worker's assignment as soon
// as a command after index changes it, or when wait ends (then with the same
// index: call again). It returns at once if the assignment changed after index
// already. Other workers' changes do not wake it. wait <= 0 means the server's
// default (30 s); the server caps it (5 min by default). Each attempt's wait
// is shortened to end before ctx's deadline. A watch parked on a node that
// freezes is moved to the new leader as soon as any call of the client learns
// it (a heartbeat, say), and any node holding a watch is checked every
// attempt timeout (WithAttemptTimeout): one found frozen is given up and the
// watch goes on at the next address.
//
// Pass the returned index to the next call. A worker that is not registered
// waits for its registration, then fsm.ErrUnknownWorker if wait ends first.
func (c *Client) WatchAssignment(ctx context.Context, worker fsm.WorkerID, index fsm.RaftIndex, wait time.Duration) (fsm.Assignment, fsm.RaftIndex, error) {
	op := "watch assignment of " + string(worker)
	if err := need(op, "worker", string(worker)); err != nil {
		return fsm.Assignment{}, 0, err
	}
	if wait <= 0 {
		wait = defaultWait
	}
	q := url.Values{"index": {strconv.FormatUint(uint64(index), 10)}}
	var out fsm.Assignment
	h, err := c.do(ctx, request{op: op, method: http.MethodGet, path: pathFor(api.PathAssignment, string(worker)),
		query: q, read: true, wait: wait}, &out)
	return out, indexOf(h), err
}

// defaultWait is the server's default wait of a blocking query, asked for
// explicitly when the caller gives none, so that the attempt's bound is known.
const defaultWait = 30 * time.Second

// Workers lists every known worker.
func (c *Client) Workers(ctx context.Context) (api.WorkerList, error) {
	var out api.WorkerList
	_, err := c.do(ctx, request{op: "list workers", method: http.MethodGet, path: api.PathWorkers, read: true}, &out)
	return out, err
}

// Worker returns one worker; fsm.ErrUnknownWorker if there is none.
func (c *Client) Worker(ctx context.Context, id fsm.WorkerID) (fsm.Worker, error) {
	op := "get worker " + string(id)
	var out fsm.Worker
	if err := need(op, "worker", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodGet, path: pathFor(api.PathWorker, string(id)), read: true}, &out)
	return out, err
}

// RemoveWorker removes a worker (operator): its partitions are orphaned, to be
// force-committed elsewhere. fsm.ErrUnknownWorker, fsm.ErrWorkerNotActive.
func (c *Client) RemoveWorker(ctx context.Context, id fsm.WorkerID) (api.WriteResponse, error) {
	op := "remove worker " + string(id)
	var out api.WriteResponse
	if err := need(op, "worker", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodDelete, path: pathFor(api.PathWorker, string(id)), write: true}, &out)
	return out, err
}

// Cordon drains a worker for maintenance (on) or puts it back in service
// (operator). Cordoning a cordoned worker is a no-op.
func (c *Client) Cordon(ctx context.Context, id fsm.WorkerID, on bool) (api.WriteResponse, error) {
	verb := "uncordon"
	if on {
		verb = "cordon"
	}
	return c.workerWrite(ctx, verb, id, api.PathCordon, api.CordonRequest{On: on})
}
