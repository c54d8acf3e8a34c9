package controller

import (
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/controller/placement"
	"github.com/batonhq/baton/fsm"
)

// view is what one planning round knows of the replicated state.
type view struct {
	index      fsm.RaftIndex
	paused     bool
	workers    []fsm.Worker
	partitions []fsm.PartitionInfo
}

func readView(s *fsm.State) view {
	return view{
		index: s.AppliedIndex(), paused: s.Paused(),
		workers: s.Workers(), partitions: s.Partitions("", 0),
	}
}

// decision is what the controller does in one round: every list becomes one or
// a few batched commands. Notes explain what it held back and why (for dry runs
// and logs).
type decision struct {
	plan     placement.Plan
	commits  []fsm.CommitItem
	forces   []fsm.ForceItem
	claims   []fsm.ClaimItem
	prepares []fsm.PrepareItem
	notes    []api.PlanAction // every action considered, done or held back
	// causes explain each prepare's move (rule and load numbers), by partition.
	causes map[fsm.PartitionID]string
}

// decide is the controller's synchronous core: from the state, the time and
// whether membership has been stable for the window, it returns the commands to
// propose. It does no I/O; tests drive it directly.
//
// Order of urgency: commit drained handoffs (their owner has already stopped);
// force-commit partitions whose owner left or whose drain deadline passed;
// claim unassigned partitions; then prepare moves, owner-ineligible (leaving,
// cordoned) and pinned first, rebalancing last and only when not paused and
// stable, all within the handoff throttles: MaxHandoffs cluster-wide and
// window(w) into or out of each worker w.
func decide(cfg Config, v view, now time.Time, stable bool, window func(fsm.WorkerID) int) (decision, error) {
	eligible := make(map[fsm.WorkerID]bool)
	leaving := make(map[fsm.WorkerID]bool)
	var in placement.Input
	in.Config = cfg.Placement
	for _, w := range v.workers {
		if w.State == fsm.WorkerGone {
			continue
		}
		ok := w.State == fsm.WorkerActive && !w.Cordoned
		eligible[w.ID] = ok
		leaving[w.ID] = w.State == fsm.WorkerLeaving
		in.Workers = append(in.Workers, placement.Worker{ID: placement.WorkerID(w.ID), Weight: w.Weight, Eligible: ok})
	}
	byID := make(map[fsm.PartitionID]*fsm.PartitionInfo, len(v.partitions))
	pending := 0
	perWorker := map[fsm.WorkerID]int{}
	for i := range v.partitions {
		p := &v.partitions[i]
		byID[p.ID] = p
		pp := placement.Partition{ID: placement.PartitionID(p.ID), Weight: p.Weight, Pinned: placement.WorkerID(p.Pinned)}
		switch p.Phase {
		case fsm.PhaseUnassigned, fsm.PhaseOrphaned:
			// Needs a new owner whoever holds it now.
		default:
			pp.Owner = placement.WorkerID(p.Owner)
		}
		if h := p.PendingHandoff; h != nil {
			pending++
			perWorker[h.From]++
			if h.To != "" {
				perWorker[h.To]++
				if p.Phase != fsm.PhaseOrphaned {
					pp.InFlightTo = placement.WorkerID(h.To)
				}
			}
		}
		in.Partitions = append(in.Partitions, pp)
	}
	plan, err := cfg.Strategy.Plan(in)
	if err != nil {
		return decision{}, fmt.Errorf("controller: placement: %w", err)
	}
	d := decision{plan: plan, causes: map[fsm.PartitionID]string{}}
	target := func(id fsm.PartitionID) fsm.WorkerID {
		t, _ := plan.TargetOf(placement.PartitionID(id))
		if !eligible[fsm.WorkerID(t)] {
			return ""
		}
		return fsm.WorkerID(t)
	}
	note := func(n api.PlanAction) { d.notes = append(d.notes, n) }
	anyEligible := false
	for _, ok := range eligible {
		anyEligible = anyEligible || ok
	}

	// Pending handoffs and partitions that need an owner, in id order.
	for i := range v.partitions {
		p := &v.partitions[i]
		h := p.PendingHandoff
		switch {
		case h != nil && h.Drained && h.To != "":
			d.commits = append(d.commits, fsm.CommitItem{Handoff: h.ID, Partition: p.ID})
			note(api.PlanAction{Partition: p.ID, From: h.From, To: h.To, Action: api.PlanCommit, Reason: "drained",
				Detail: fmt.Sprintf("drained through %d", h.ThroughSeq)})
		case h != nil && p.Phase == fsm.PhaseOrphaned:
			to := h.To
			if !eligible[to] {
				to = target(p.ID)
			}
			d.force(p, to, fsm.ForceOwnerLeft, note)
		case h != nil && p.Phase == fsm.PhasePreparing && h.Deadline != 0 && now.UnixNano() >= h.Deadline:
			to := h.To
			if !eligible[to] {
				to = target(p.ID)
			}
			if to == p.Owner {
				to = ""
			}
			d.force(p, to, fsm.ForceDrainDeadline, note)
		case h != nil:
			// In flight: the owner drains, or the target activates.
		case p.Phase == fsm.PhaseUnassigned:
			to := target(p.ID)
			switch {
			case to == "":
				note(api.PlanAction{Partition: p.ID, Action: api.PlanHold, Reason: "unassigned", Detail: "no eligible worker"})
			case !stable:
				note(api.PlanAction{Partition: p.ID, To: to, Action: api.PlanHold, Reason: "unassigned", Detail: "membership stabilizing"})
			default:
				d.claims = append(d.claims, fsm.ClaimItem{Partition: p.ID, Worker: to})
				note(api.PlanAction{Partition: p.ID, To: to, Action: api.PlanClaim, Reason: "unassigned"})
			}
		case p.Phase == fsm.PhaseOrphaned:
			d.force(p, target(p.ID), fsm.ForceOwnerLeft, note)
		}
	}

	// Moves of active partitions, most urgent first (the plan's order).
	prepare := func(p *fsm.PartitionInfo, to fsm.WorkerID, reason, detail string) {
		switch {
		case pending >= cfg.MaxHandoffs:
			note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanHold, Reason: reason,
				Detail: fmt.Sprintf("throttled: %d handoffs pending (max %d)", pending, cfg.MaxHandoffs)})
			return
		case perWorker[p.Owner] >= window(p.Owner):
			note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanHold, Reason: reason,
				Detail: fmt.Sprintf("throttled: %s has %d handoffs pending (window %d)", p.Owner, perWorker[p.Owner], window(p.Owner))})
			return
		case to != "" && perWorker[to] >= window(to):
			note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanHold, Reason: reason,
				Detail: fmt.Sprintf("throttled: %s has %d handoffs pending (window %d)", to, perWorker[to], window(to))})
			return
		}
		pending++
		perWorker[p.Owner]++
		if to != "" {
			perWorker[to]++
		}
		d.prepares = append(d.prepares, fsm.PrepareItem{
			Partition: p.ID, Epoch: p.Epoch, From: p.Owner, To: to, Reason: reason,
			DrainTimeout: int64(cfg.DrainTimeout),
		})
		d.causes[p.ID] = detail
		action := api.PlanPrepare
		if to == "" {
			action = api.PlanRelease
		}
		note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: action, Reason: reason, Detail: detail})
	}
	moved := map[fsm.PartitionID]bool{}
	for _, m := range plan.Moves {
		p := byID[fsm.PartitionID(m.Partition)]
		if p == nil || p.Phase != fsm.PhaseActive || p.PendingHandoff != nil {
			continue
		}
		to := fsm.WorkerID(m.To)
		if !eligible[to] || to == p.Owner {
			continue
		}
		reason := string(m.Reason)
		if m.Reason == placement.ReasonRebalanceOverload || m.Reason == placement.ReasonRebalanceUnderload {
			if v.paused {
				note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanHold, Reason: reason, Detail: "rebalancing paused: " + m.Detail})
				continue
			}
			if !stable {
				note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanHold, Reason: reason, Detail: "membership stabilizing: " + m.Detail})
				continue
			}
		}
		moved[p.ID] = true
		prepare(p, to, reason, m.Detail)
	}
	// A leaving worker with nobody to hand to releases its partitions at their
	// exact drain point, so its leave completes and the next owner resumes
	// without duplicates.
	if !anyEligible {
		for i := range v.partitions {
			p := &v.partitions[i]
			if p.Phase == fsm.PhaseActive && p.PendingHandoff == nil && leaving[p.Owner] && !moved[p.ID] {
				prepare(p, "", "worker_leaving", "no eligible worker to hand to: release at the drain point")
			}
		}
	}
	return d, nil
}

// force records a forced commit of p to to, or a hold when there is no target.
func (d *decision) force(p *fsm.PartitionInfo, to fsm.WorkerID, reason fsm.ForceReason, note func(api.PlanAction)) {
	if to == "" {
		note(api.PlanAction{Partition: p.ID, From: p.Owner, Action: api.PlanHold, Reason: reason.String(), Detail: "no eligible worker"})
		return
	}
	d.forces = append(d.forces, fsm.ForceItem{Partition: p.ID, Epoch: p.Epoch, To: to, Reason: reason})
	detail := "resume from checkpoint " + p.Checkpoint.String()
	note(api.PlanAction{Partition: p.ID, From: p.Owner, To: to, Action: api.PlanForce, Reason: reason.String(), Detail: detail})
}

// empty reports whether the round has nothing to propose.
func (d *decision) empty() bool {
	return len(d.commits)+len(d.forces)+len(d.claims)+len(d.prepares) == 0
}

// eligibleKey fingerprints the eligible workers and weights: when it changes,
// membership changed and the stabilization window restarts.
func eligibleKey(workers []fsm.Worker) string {
	var ids []string
	for _, w := range workers {
		if w.State == fsm.WorkerActive && !w.Cordoned {
			ids = append(ids, fmt.Sprintf("%s/%d/%d", w.ID, w.Incarnation, w.Weight))
		}
	}
	slices.Sort(ids)
	return fmt.Sprint(ids)
}
