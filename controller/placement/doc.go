// Package placement computes where Baton's stream partitions should live.
//
// It is the pure half of the controller: given the workers, the partitions
// and where each partition is now, it returns a target owner for every
// partition, the moves (two-phase handoffs) that get there, and why each
// move is needed. It does no I/O, reads no clock, uses no randomness and
// starts no goroutines, so every raft leader computes the same plan from
// the same claim-store snapshot and `baton plan` can show exactly what the
// controller would do.
//
// The default strategy, BoundedRendezvous, is sticky (a partition stays on
// an eligible owner unless a load bound forces it off), keeps each worker
// within one partition per unit of weight of its weighted fair share, moves
// the minimum number of unit partitions needed to get there, and uses
// rendezvous hashing to pick which partitions move and where. DESIGN.md
// states the exact bound and the argument for minimality.
//
// Usage sketch (controller side):
//
//	in := placement.Input{Config: placement.DefaultConfig()}
//	for _, m := range members {
//		in.Workers = append(in.Workers, placement.Worker{
//			ID: placement.WorkerID(m.ID), Weight: m.Weight,
//			Eligible: m.State == Active, // not leaving, gone or cordoned
//		})
//	}
//	for _, c := range claims {
//		in.Partitions = append(in.Partitions, placement.Partition{
//			ID: placement.PartitionID(c.Partition), Weight: 1,
//			Owner: placement.WorkerID(c.Owner), Pinned: placement.WorkerID(c.Pin),
//			InFlightTo: placement.WorkerID(c.HandoffTo),
//		})
//	}
//	plan, err := placement.Default.Plan(in)
//	if err != nil {
//		return err // names the offending field, e.g. Workers[3].Weight
//	}
//	for _, m := range plan.Moves { // most urgent first
//		startHandoff(m.Partition, m.From, m.To, string(m.Reason))
//	}
//	fmt.Print(plan.Render()) // what `baton plan` prints
package placement
