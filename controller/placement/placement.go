package placement

import "sort"

// WorkerID names a worker. IDs are compared as byte strings wherever the
// package needs an order, so any stable naming scheme works.
type WorkerID string

// PartitionID names a stream partition.
type PartitionID string

// Worker is one candidate owner as the controller sees it this round.
type Worker struct {
	ID WorkerID
	// Weight is the worker's relative capacity (>= 1). A weight-2 worker's
	// fair share is twice a weight-1 worker's.
	Weight uint32
	// Eligible is false for workers that are leaving, gone or cordoned
	// (drained for maintenance). They receive nothing and are emptied, but
	// they stay in the input so the summary can show what left them.
	Eligible bool
}

// Partition is one unit of work and where it currently lives.
type Partition struct {
	ID PartitionID
	// Weight is the partition's relative cost (>= 1); most partitions are 1.
	Weight uint32
	// Owner is the current holder; empty means unassigned. An owner that is
	// not an eligible worker (including one absent from Input.Workers) is
	// treated as gone and the partition is re-placed.
	Owner WorkerID
	// Pinned, when it names an eligible worker, forces the partition onto
	// that worker regardless of load. A pin to any other worker is ignored so
	// that a cordoned pin target never strands a partition.
	Pinned WorkerID
	// InFlightTo is non-empty while a two-phase handoff to that worker is in
	// progress. The partition is counted as load on InFlightTo and is not
	// moved again this round, because re-targeting a handoff mid-flight
	// would race the handoff's own commit.
	InFlightTo WorkerID
}

// Input is everything one planning round needs. Order of the slices does
// not matter: the result is identical for any permutation.
type Input struct {
	Workers    []Worker
	Partitions []Partition
	Config     Config
}

// Reason says why a partition moves. The values are stable snake_case
// strings, safe to log, export as metric labels and match in scripts.
type Reason string

// Move reasons, listed in the order Plan.Moves is sorted by: restoring
// availability first, then operator intent, then balance. A controller
// that caps concurrent handoffs should start at the top.
const (
	// ReasonOwnerIneligible: the owner is leaving, gone, cordoned or unknown.
	ReasonOwnerIneligible Reason = "owner_ineligible"
	// ReasonUnassigned: the partition had no owner (a claim).
	ReasonUnassigned Reason = "unassigned"
	// ReasonPinned: the partition is pinned to an eligible worker elsewhere.
	ReasonPinned Reason = "pinned"
	// ReasonRebalanceOverload: From is above its upper bound.
	ReasonRebalanceOverload Reason = "rebalance_overload"
	// ReasonRebalanceUnderload: To is below its lower bound.
	ReasonRebalanceUnderload Reason = "rebalance_underload"
)

func (r Reason) rank() int {
	switch r {
	case ReasonOwnerIneligible:
		return 0
	case ReasonUnassigned:
		return 1
	case ReasonPinned:
		return 2
	case ReasonRebalanceOverload:
		return 3
	default:
		return 4
	}
}

// Move is one handoff the controller should start. From is empty for a
// claim of an unassigned partition.
type Move struct {
	Partition PartitionID
	From      WorkerID
	To        WorkerID
	Reason    Reason
	// Detail carries the load numbers behind Reason, for humans
	// (e.g. "w3 load 12 > upper bound 11"). Its format is not stable.
	Detail string
}

// Target is the planned owner of one partition.
type Target struct {
	Partition PartitionID
	Worker    WorkerID
}

// WorkerLoad summarises one worker after the plan is applied. Loads are in
// partition-weight units.
type WorkerLoad struct {
	Worker   WorkerID
	Weight   uint32
	Eligible bool
	// Load is the total weight targeted at the worker by the plan.
	Load uint64
	// Fixed is the part of Load the strategy could not move: partitions
	// pinned to the worker or in flight to it.
	Fixed uint64
	// Fair is the worker's exact weighted fair share (W_S * v / V_S, see
	// DESIGN.md); float64 because it is for display and Imbalance only.
	Fair float64
	// Lower and Upper are the integer load bounds the plan aims for.
	Lower, Upper uint64
	// Saturated is true when Fixed alone exceeds the bound the worker would
	// otherwise get; it is then excluded from the fair-share computation,
	// keeps only its fixed load, and Lower = Upper = Fixed.
	Saturated bool
}

// Plan is the result of one round: a full target map, the moves that get
// there, and the numbers that justify them.
type Plan struct {
	// Targets has one entry per input partition, sorted by partition ID.
	// An empty Worker means the partition stays unassigned (only when no
	// worker is eligible).
	Targets []Target
	// Moves lists partitions whose target differs from their owner, sorted
	// by reason (see the Reason constants) and then partition ID. In-flight
	// partitions never appear here.
	Moves []Move
	// Workers has one entry per input worker, sorted by worker ID.
	Workers []WorkerLoad
	// Imbalance is max |Load - Fair| / Weight over eligible, unsaturated
	// workers: the worst deviation from fair share in partitions per unit of
	// worker weight. With unit partitions and Slack 1 it is always < 1.
	Imbalance float64
	// Warnings explain anything the plan could not do (no eligible workers,
	// a lower bound blocked by pinned load, a handoff in flight to an
	// ineligible worker). Empty in the common case.
	Warnings []string
}

// TargetOf returns the planned owner of a partition and whether the
// partition was part of the input.
func (p *Plan) TargetOf(id PartitionID) (WorkerID, bool) {
	i := sort.Search(len(p.Targets), func(i int) bool { return p.Targets[i].Partition >= id })
	if i < len(p.Targets) && p.Targets[i].Partition == id {
		return p.Targets[i].Worker, true
	}
	return "", false
}

// Strategy computes a Plan. Implementations must be pure and deterministic:
// the controller may run them on every raft leader and compare results.
type Strategy interface {
	// Plan validates the input and computes the plan; the error is non-nil
	// only for invalid input (see Input.Validate).
	Plan(in Input) (Plan, error)
}

// Default is the strategy the controller uses unless configured otherwise.
var Default Strategy = BoundedRendezvous{}
