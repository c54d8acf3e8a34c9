package api

import "github.com/batonhq/baton/fsm"

// Plan is the controller's dry run (GET /v1/plan): what it would do now and
// why. Workers is where placement is heading (each worker's load and bounds
// once the plan is applied), Moves are the placement's moves with their rule,
// and Actions is every partition action the controller would take now or
// holds back (Action "hold", with the reason in Detail: throttles, pause,
// stabilization window, no eligible worker). Nothing is proposed.
type Plan struct {
	// Index is the state index the dry run was computed at.
	Index fsm.RaftIndex `json:"index"`
	// Paused is true while voluntary rebalancing is paused.
	Paused  bool         `json:"paused"`
	Workers []PlanWorker `json:"workers"`
	// Imbalance is the largest |load - fair share| / weight over eligible
	// workers once the plan is applied.
	Imbalance float64      `json:"imbalance"`
	Moves     []PlanMove   `json:"moves"`
	Actions   []PlanAction `json:"actions"`
	// Pending are the handoffs in flight now: "no moves" with handoffs
	// pending means placement is still converging.
	Pending  []fsm.Handoff `json:"pending,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	// Rendered is the plan as text for people; its format is not stable.
	Rendered string `json:"rendered"`
}

// The keys of PlanWorker and PlanMove are capitalised, unlike the rest of
// the API: they are the keys the dry run has had on the wire since it was
// first served (the controller's placement types, which had no json tags),
// kept so that clients reading them keep working. Go's decoder matches keys
// case-insensitively, so Go clients are indifferent.

// PlanWorker is one worker's load in a Plan, in partition-weight units, once
// the plan is applied.
type PlanWorker struct {
	Worker fsm.WorkerID `json:"Worker"`
	Weight uint32       `json:"Weight"`
	// Eligible: active and not cordoned, so it may receive partitions.
	Eligible bool `json:"Eligible"`
	// Load is the total weight the plan targets at the worker.
	Load uint64 `json:"Load"`
	// Fixed is the part of Load placement could not move: partitions pinned
	// to the worker or in flight to it.
	Fixed uint64 `json:"Fixed"`
	// Fair is the worker's exact weighted fair share.
	Fair float64 `json:"Fair"`
	// Lower and Upper are the integer load bounds the plan aims for.
	Lower uint64 `json:"Lower"`
	Upper uint64 `json:"Upper"`
	// Saturated: Fixed alone exceeds the bound the worker would otherwise
	// get; it then keeps only its fixed load (Lower = Upper = Fixed).
	Saturated bool `json:"Saturated"`
}

// PlanMove is one move placement plans: Partition from From (empty: it is
// unassigned) to To, by rule Reason (owner_ineligible, unassigned, pinned,
// rebalance_overload, rebalance_underload). Detail gives the load numbers
// behind the rule, for people; its format is not stable.
type PlanMove struct {
	Partition fsm.PartitionID `json:"Partition"`
	From      fsm.WorkerID    `json:"From"`
	To        fsm.WorkerID    `json:"To"`
	Reason    string          `json:"Reason"`
	Detail    string          `json:"Detail"`
}

// Plan actions (PlanAction.Action).
const (
	PlanClaim   = "claim"   // give an unassigned partition its first owner
	PlanPrepare = "prepare" // start a graceful handoff
	PlanRelease = "release" // hand a leaving worker's partition back to nobody
	PlanCommit  = "commit"  // commit a drained handoff
	PlanForce   = "force"   // force-commit: the owner left or the drain deadline passed
	PlanHold    = "hold"    // an action held back; Detail says why
)

// PlanAction is one partition action of a Plan. Reason is the rule:
// unassigned, owner_ineligible, pinned, rebalance_overload,
// rebalance_underload, owner_left, drain_deadline, drained.
type PlanAction struct {
	Partition fsm.PartitionID `json:"partition"`
	From      fsm.WorkerID    `json:"from,omitempty"`
	To        fsm.WorkerID    `json:"to,omitempty"`
	// Action is one of PlanClaim, PlanPrepare, PlanRelease, PlanCommit,
	// PlanForce and PlanHold.
	Action string `json:"action"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}
