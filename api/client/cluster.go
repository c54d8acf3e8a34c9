package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Status returns the answering node's view of the cluster (its raft state,
// indexes, members and audit bounds); ClusterStatus.NodeID says which node
// that was.
func (c *Client) Status(ctx context.Context) (api.ClusterStatus, error) {
	var out api.ClusterStatus
	_, err := c.do(ctx, request{op: "cluster status", method: http.MethodGet, path: api.PathStatus}, &out)
	return out, err
}

// Summary counts workers, partitions (by phase) and handoffs.
func (c *Client) Summary(ctx context.Context) (fsm.Summary, error) {
	var out fsm.Summary
	_, err := c.do(ctx, request{op: "cluster summary", method: http.MethodGet, path: api.PathSummary, read: true}, &out)
	return out, err
}

// Join adds a claim-store node as a voter (operator). Joining again with the
// same id and addresses is a no-op, so retries are safe. An id or address the
// cluster refuses is fsm.ErrInvalidArgument, and adds nothing.
func (c *Client) Join(ctx context.Context, req api.JoinRequest) error {
	_, err := c.do(ctx, request{op: "join node " + req.ID, method: http.MethodPost, path: api.PathJoin, body: req, write: true}, nil)
	return err
}

// RemoveNode takes a claim-store node out of the cluster (operator). A node
// the cluster does not know is fsm.ErrUnknownNode; after a retried call whose
// first attempt's outcome was unknown, that means the node is gone. An invalid
// id is fsm.ErrInvalidArgument.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	op := "remove node " + id
	if err := need(op, "node", id); err != nil {
		return err
	}
	_, err := c.do(ctx, request{op: op, method: http.MethodPost, path: api.PathRemove, body: api.RemoveRequest{ID: id}, write: true}, nil)
	return err
}

// Health checks that the node at addr (one of the client's addresses, or any
// node's base URL) is up, and returns its id. It asks that node only, once:
// health is a property of one node, not of the cluster.
func (c *Client) Health(ctx context.Context, addr string) (string, error) {
	return c.probe(ctx, "health", addr, api.PathHealth)
}

// Ready checks that the node at addr serves current reads (it knows a leader
// and has applied what it knows to be committed), and returns its id.
// ErrNoLeader or ErrNotReady when it does not. It asks that node only, once.
func (c *Client) Ready(ctx context.Context, addr string) (string, error) {
	return c.probe(ctx, "ready", addr, api.PathReady)
}

func (c *Client) probe(ctx context.Context, what, addr, path string) (string, error) {
	base, err := parseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("client: %s of %s: %w", what, addr, err)
	}
	// Same transport, token and time-out; one address and no retries.
	v := *c
	v.opts.retries = 0
	v.shared = &shared{rt: newRouter([]string{base}, c.rt.suspectFor), hc: c.hc}
	var out struct {
		Node string `json:"node"`
	}
	_, err = v.do(ctx, request{op: what + " of " + addr, method: http.MethodGet, path: path}, &out)
	return out.Node, err
}
