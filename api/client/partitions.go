package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// pageSize is the page AllPartitions asks for.
const pageSize = 500

// Declare declares partitions (operator). Re-declaring one with the same spec
// is a no-op for it; per-item rejections (fsm.ErrPartitionExists,
// fsm.ErrSubjectOverlap, fsm.ErrInvalidArgument) are in the response's Items.
func (c *Client) Declare(ctx context.Context, specs []fsm.PartitionSpec) (api.WriteResponse, error) {
	var out api.WriteResponse
	if len(specs) == 0 {
		return out, fmt.Errorf("client: declare: %w: no partitions", ErrInvalidArgument)
	}
	_, err := c.do(ctx, request{op: fmt.Sprintf("declare %d partitions", len(specs)), method: http.MethodPost,
		path: api.PathPartitions, body: api.DeclareRequest{Partitions: specs}, write: true}, &out)
	return out, err
}

// Partitions returns one page of up to limit partitions (0: the server's
// default, 100; at most 1000) with ids after after, sorted by id. Pass the
// page's Next as after for the next page; it is empty on the last.
func (c *Client) Partitions(ctx context.Context, after fsm.PartitionID, limit int) (api.PartitionList, error) {
	var out api.PartitionList
	q := url.Values{}
	if after != "" {
		q.Set("after", string(after))
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	_, err := c.do(ctx, request{op: "list partitions", method: http.MethodGet, path: api.PathPartitions, query: q, read: true}, &out)
	return out, err
}

// AllPartitions iterates over every partition, page by page. Each page is read
// at its own index, so the whole is not one snapshot. An error ends the
// iteration after it is yielded.
func (c *Client) AllPartitions(ctx context.Context) iter.Seq2[fsm.PartitionInfo, error] {
	return func(yield func(fsm.PartitionInfo, error) bool) {
		var after fsm.PartitionID
		for {
			page, err := c.Partitions(ctx, after, pageSize)
			if err != nil {
				yield(fsm.PartitionInfo{}, err)
				return
			}
			for _, p := range page.Partitions {
				if !yield(p, nil) {
					return
				}
			}
			if page.Next == "" || page.Next <= after {
				return
			}
			after = page.Next
		}
	}
}

// Partition returns one partition; fsm.ErrUnknownPartition if there is none.
func (c *Client) Partition(ctx context.Context, id fsm.PartitionID) (fsm.PartitionInfo, error) {
	op := "get partition " + string(id)
	var out fsm.PartitionInfo
	if err := need(op, "partition", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodGet, path: pathFor(api.PathPartition, string(id)), read: true}, &out)
	return out, err
}

// RemovePartition removes one partition (operator). fsm.ErrUnknownPartition,
// fsm.ErrHandoffInProgress.
func (c *Client) RemovePartition(ctx context.Context, id fsm.PartitionID) (api.WriteResponse, error) {
	op := "remove partition " + string(id)
	var out api.WriteResponse
	if err := need(op, "partition", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodDelete, path: pathFor(api.PathPartition, string(id)), write: true}, &out)
	return out, err
}

// RemovePartitions removes partitions (operator); per-item rejections are in
// the response's Items.
func (c *Client) RemovePartitions(ctx context.Context, ids []fsm.PartitionID) (api.WriteResponse, error) {
	var out api.WriteResponse
	if len(ids) == 0 {
		return out, fmt.Errorf("client: remove partitions: %w: no partitions", ErrInvalidArgument)
	}
	_, err := c.do(ctx, request{op: fmt.Sprintf("remove %d partitions", len(ids)), method: http.MethodDelete,
		path: api.PathPartitions, body: api.RemovePartitionsRequest{Partitions: ids}, write: true}, &out)
	return out, err
}

// Move moves a partition to req.To (operator): a graceful handoff (the owner
// drains, then the controller commits), or with req.Force an immediate commit
// from the last checkpoint. fsm.ErrUnknownPartition, fsm.ErrWrongPhase,
// fsm.ErrHandoffInProgress, fsm.ErrSameWorker, fsm.ErrWorkerNotActive,
// fsm.ErrWorkerCordoned.
func (c *Client) Move(ctx context.Context, id fsm.PartitionID, req api.MoveRequest) (api.WriteResponse, error) {
	op := fmt.Sprintf("move %s to %s", id, req.To)
	var out api.WriteResponse
	if err := need(op, "partition", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: pathFor(api.PathMove, string(id)), body: req, write: true}, &out)
	return out, err
}

// Pin pins a partition to a worker (operator); an empty worker unpins.
// fsm.ErrUnknownPartition, fsm.ErrUnknownWorker, fsm.ErrWorkerNotActive.
func (c *Client) Pin(ctx context.Context, id fsm.PartitionID, worker fsm.WorkerID) (api.WriteResponse, error) {
	op := fmt.Sprintf("pin %s to %q", id, worker)
	var out api.WriteResponse
	if err := need(op, "partition", string(id)); err != nil {
		return out, err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: pathFor(api.PathPin, string(id)),
		body: api.PinRequest{Worker: worker}, write: true}, &out)
	return out, err
}

// Handoffs lists the pending handoffs.
func (c *Client) Handoffs(ctx context.Context) (api.HandoffList, error) {
	var out api.HandoffList
	_, err := c.do(ctx, request{op: "list handoffs", method: http.MethodGet, path: api.PathHandoffs, read: true}, &out)
	return out, err
}

// SetRebalance pauses or resumes voluntary rebalancing cluster-wide (operator).
func (c *Client) SetRebalance(ctx context.Context, paused bool) (api.WriteResponse, error) {
	var out api.WriteResponse
	_, err := c.do(ctx, request{op: fmt.Sprintf("set rebalance paused=%t", paused), method: http.MethodPost,
		path: api.PathRebalance, body: api.RebalanceRequest{Paused: paused}, write: true}, &out)
	return out, err
}

// Plan returns the controller's dry run: the moves it would make now and why,
// and the actions it holds back. ErrNotFound when the leader runs no planner.
func (c *Client) Plan(ctx context.Context) (api.Plan, error) {
	var out api.Plan
	_, err := c.do(ctx, request{op: "plan", method: http.MethodGet, path: api.PathPlan, leader: true}, &out)
	return out, err
}
