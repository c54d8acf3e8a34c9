package controller

import (
	"context"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Plan implements the API server's Planner: the dry run of what the
// controller would do now on this node's state, and why: the placement's view
// of every worker's load, the moves it plans with their rule and load numbers,
// and for each partition action whether it would run or is held (throttles,
// pause, stabilization, no eligible worker). Membership counts as stable: the
// dry run shows where the placement is heading. Nothing is proposed.
//
// It returns the node's read errors (raftnode.ErrShutdown) and the
// placement strategy's.
func (c *Controller) Plan(ctx context.Context) (api.Plan, error) {
	var v view
	if err := c.node.Read(ctx, raftnode.Stale, func(s *fsm.State) { v = readView(s) }); err != nil {
		return api.Plan{}, err
	}
	return dryRun(c.cfg, v, c.now(), c.window)
}

func dryRun(cfg Config, v view, now time.Time, window func(fsm.WorkerID) int) (api.Plan, error) {
	d, err := decide(cfg, v, now, true, window)
	if err != nil {
		return api.Plan{}, err
	}
	out := api.Plan{
		Index: v.index, Paused: v.paused, Imbalance: d.plan.Imbalance,
		Warnings: d.plan.Warnings, Rendered: d.plan.Render(),
		Workers: make([]api.PlanWorker, 0, len(d.plan.Workers)),
		Moves:   make([]api.PlanMove, 0, len(d.plan.Moves)),
		Actions: append([]api.PlanAction{}, d.notes...),
	}
	for _, w := range d.plan.Workers {
		out.Workers = append(out.Workers, api.PlanWorker{
			Worker: fsm.WorkerID(w.Worker), Weight: w.Weight, Eligible: w.Eligible, Load: w.Load, Fixed: w.Fixed,
			Fair: w.Fair, Lower: w.Lower, Upper: w.Upper, Saturated: w.Saturated,
		})
	}
	for _, m := range d.plan.Moves {
		out.Moves = append(out.Moves, api.PlanMove{
			Partition: fsm.PartitionID(m.Partition), From: fsm.WorkerID(m.From), To: fsm.WorkerID(m.To),
			Reason: string(m.Reason), Detail: m.Detail,
		})
	}
	for _, p := range v.partitions {
		if p.PendingHandoff != nil {
			out.Pending = append(out.Pending, *p.PendingHandoff)
		}
	}
	return out, nil
}
