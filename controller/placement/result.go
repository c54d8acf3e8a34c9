package placement

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// result turns the round's state into a Plan. workers is sorted by ID.
func (r *round) result(workers []Worker) Plan {
	plan := Plan{Targets: make([]Target, len(r.p)), Warnings: r.warnings}
	for i, p := range r.p {
		to := r.w[p.target].id
		plan.Targets[i] = Target{Partition: p.in.ID, Worker: to}
		if p.in.Owner != to && !(p.fixed && p.in.InFlightTo == to) {
			plan.Moves = append(plan.Moves, Move{Partition: p.in.ID, From: p.in.Owner, To: to, Reason: p.reason, Detail: p.detail})
		}
	}
	sortMoves(plan.Moves)

	k := 0
	for _, w := range workers {
		wl := WorkerLoad{Worker: w.ID, Weight: w.Weight, Eligible: w.Eligible}
		if w.Eligible {
			ew := &r.w[k]
			k++
			wl.Load, wl.Fixed = uint64(ew.load), uint64(ew.fixed)
			wl.Fair, wl.Lower, wl.Upper, wl.Saturated = ew.fair, uint64(ew.lo), uint64(ew.hi), ew.saturated
			if !ew.saturated {
				dev := math.Abs(float64(ew.load)-ew.fair) / float64(ew.weight)
				plan.Imbalance = max(plan.Imbalance, dev)
			}
		}
		plan.Workers = append(plan.Workers, wl)
	}
	return plan
}

// sortMoves orders by urgency (Reason.rank) and then ID, so a controller
// that starts only the first few handoffs restores availability first.
func sortMoves(moves []Move) {
	slices.SortFunc(moves, func(a, b Move) int {
		return cmp.Or(cmp.Compare(a.Reason.rank(), b.Reason.rank()), cmp.Compare(a.Partition, b.Partition))
	})
}

// planNoEligible leaves every partition where it is: with nobody to give
// work to, any move would only make things worse, and the controller must
// not unassign partitions from workers that may still be serving them.
func planNoEligible(workers []Worker, parts []Partition) Plan {
	plan := Plan{Targets: make([]Target, len(parts))}
	load := map[WorkerID]uint64{}
	unassigned := 0
	for i, p := range parts {
		plan.Targets[i] = Target{Partition: p.ID, Worker: p.Owner}
		if p.Owner == "" {
			unassigned++
		}
		load[p.Owner] += uint64(p.Weight)
	}
	for _, w := range workers {
		plan.Workers = append(plan.Workers, WorkerLoad{Worker: w.ID, Weight: w.Weight, Load: load[w.ID]})
	}
	plan.Warnings = []string{fmt.Sprintf("no eligible workers: all %d partitions left where they are (%d unassigned)", len(parts), unassigned)}
	return plan
}

// Render formats the plan for humans, as `baton plan` prints it: a header
// with move counts by reason, the moves with their load numbers, the
// per-worker summary, and any warnings. The output is deterministic, so
// two dry runs can be diffed; its layout is not a stable interface.
func (p *Plan) Render() string {
	var b strings.Builder
	counts := map[Reason]int{}
	for _, m := range p.Moves {
		counts[m.Reason]++
	}
	var parts []string
	for _, r := range []Reason{ReasonOwnerIneligible, ReasonUnassigned, ReasonPinned, ReasonRebalanceOverload, ReasonRebalanceUnderload} {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, counts[r]))
		}
	}
	fmt.Fprintf(&b, "plan: %d partitions, %d moves", len(p.Targets), len(p.Moves))
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, ", imbalance %.3f\n", p.Imbalance)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(p.Moves) > 0 {
		fmt.Fprintln(tw, "moves:")
		for _, m := range p.Moves {
			fmt.Fprintf(tw, "  %s\t%s\t-> %s\t%s\t%s\n", m.Partition, orDash(string(m.From)), m.To, m.Reason, m.Detail)
		}
	}
	fmt.Fprintln(tw, "workers:")
	for _, w := range p.Workers {
		switch {
		case !w.Eligible:
			fmt.Fprintf(tw, "  %s\tweight %d\tload %d\tineligible\n", w.Worker, w.Weight, w.Load)
		case w.Saturated:
			fmt.Fprintf(tw, "  %s\tweight %d\tload %d\tsaturated by fixed load %d\n", w.Worker, w.Weight, w.Load, w.Fixed)
		default:
			fmt.Fprintf(tw, "  %s\tweight %d\tload %d\tfair %.2f bounds %d..%d fixed %d\n", w.Worker, w.Weight, w.Load, w.Fair, w.Lower, w.Upper, w.Fixed)
		}
	}
	_ = tw.Flush() // a strings.Builder never fails
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
