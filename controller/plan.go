package controller

import (
	"context"
	"time"

	"github.com/batonhq/baton/controller/placement"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// DryRun is what the controller would do now, and why: the placement's view of
// every worker's load, the moves it plans with their rule and load numbers, and
// for each partition action whether it would run or is held (throttles, pause,
// stabilization, no eligible worker). Nothing is proposed.
type DryRun struct {
	Index     fsm.RaftIndex          `json:"index"`
	Paused    bool                   `json:"paused"`
	Workers   []placement.WorkerLoad `json:"workers"`
	Imbalance float64                `json:"imbalance"`
	Moves     []placement.Move       `json:"moves"`
	Actions   []Note                 `json:"actions"`
	// Pending are the handoffs in flight now: "no moves" with handoffs
	// pending means placement is still converging.
	Pending  []fsm.Handoff `json:"pending,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	Rendered string        `json:"rendered"`
}

// Plan implements the API server's Planner: a dry run on this node's state.
func (c *Controller) Plan(ctx context.Context) (any, error) {
	return c.DryRun(ctx)
}

// DryRun computes the decision the controller would take now, without
// proposing anything. Membership counts as stable: the dry run shows where the
// placement is heading.
func (c *Controller) DryRun(ctx context.Context) (DryRun, error) {
	var v view
	if err := c.node.Read(ctx, raftnode.Stale, func(s *fsm.State) { v = readView(s) }); err != nil {
		return DryRun{}, err
	}
	return dryRun(c.cfg, v, c.now(), c.window)
}

func dryRun(cfg Config, v view, now time.Time, window func(fsm.WorkerID) int) (DryRun, error) {
	d, err := decide(cfg, v, now, true, window)
	if err != nil {
		return DryRun{}, err
	}
	var pending []fsm.Handoff
	for _, p := range v.partitions {
		if p.PendingHandoff != nil {
			pending = append(pending, *p.PendingHandoff)
		}
	}
	return DryRun{
		Index: v.index, Paused: v.paused, Workers: d.plan.Workers, Imbalance: d.plan.Imbalance,
		Moves: d.plan.Moves, Actions: d.notes, Pending: pending, Warnings: d.plan.Warnings, Rendered: d.plan.Render(),
	}, nil
}
