package placement

import (
	"cmp"
	"fmt"
	"slices"
)

// BoundedRendezvous is the default Strategy: sticky, weighted,
// bounded-load placement that moves the minimum number of unit partitions
// needed to bring every worker inside its bound, and uses rendezvous
// hashing only to decide which partitions those are and where they go.
// See DESIGN.md for the bound and the minimality argument.
type BoundedRendezvous struct{}

// eworker is an eligible worker during one round.
type eworker struct {
	id     WorkerID
	weight uint64
	seed   uint64
	fixed  int64
	load   int64
	bound
}

// ppart is a partition during one round. owner and target index the
// eligible workers; -1 means unassigned or not on an eligible worker.
type ppart struct {
	in            *Partition
	weight        int64
	owner, target int
	fixed         bool
	reason        Reason
	detail        string
}

type round struct {
	w        []eworker
	p        []ppart
	warnings []string
}

// Plan implements Strategy.
func (BoundedRendezvous) Plan(in Input) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	// Sorting copies first makes every later loop run in ID order, which is
	// what makes the output independent of the input's order.
	workers := slices.Clone(in.Workers)
	slices.SortFunc(workers, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
	parts := slices.Clone(in.Partitions)
	slices.SortFunc(parts, func(a, b Partition) int { return cmp.Compare(a.ID, b.ID) })

	r := &round{}
	index := make(map[WorkerID]int)
	for _, w := range workers {
		if w.Eligible {
			index[w.ID] = len(r.w)
			r.w = append(r.w, eworker{id: w.ID, weight: uint64(w.Weight), seed: workerSeed(w.ID)})
		}
	}
	if len(r.w) == 0 {
		return planNoEligible(workers, parts), nil
	}
	pmax := r.classify(parts, index)
	r.computeBounds(pmax, in.Config.slackMilli())
	r.shed()
	r.place()
	r.fill()
	return r.result(workers), nil
}

// classify fixes pinned and in-flight partitions, leaves movable ones on
// their eligible owner, and returns the heaviest movable weight.
func (r *round) classify(parts []Partition, index map[WorkerID]int) int64 {
	lookup := func(id WorkerID) int {
		if i, ok := index[id]; ok && id != "" {
			return i
		}
		return -1
	}
	r.p = make([]ppart, len(parts))
	strayInFlight := map[WorkerID]int{}
	pmax := int64(1)
	for i := range parts {
		in := &parts[i]
		p := ppart{in: in, weight: int64(in.Weight), owner: lookup(in.Owner), target: -1}
		if in.InFlightTo != "" {
			if t := lookup(in.InFlightTo); t >= 0 {
				p.fixed, p.target = true, t
			} else {
				strayInFlight[in.InFlightTo]++
			}
		}
		if !p.fixed && in.Pinned != "" {
			if t := lookup(in.Pinned); t >= 0 {
				p.fixed, p.target = true, t
				if p.owner != t {
					p.reason, p.detail = ReasonPinned, "pinned to "+string(in.Pinned)
				}
			}
		}
		switch {
		case p.fixed:
			r.w[p.target].fixed += p.weight
		case p.owner >= 0:
			p.target = p.owner
		case in.Owner == "":
			p.reason, p.detail = ReasonUnassigned, "no owner"
		default:
			p.reason, p.detail = ReasonOwnerIneligible, "owner "+string(in.Owner)+" not eligible"
		}
		if !p.fixed {
			pmax = max(pmax, p.weight)
		}
		if p.target >= 0 {
			r.w[p.target].load += p.weight
		}
		r.p[i] = p
	}
	for _, id := range sortedKeys(strayInFlight) {
		r.warnf("%d handoff(s) in flight to ineligible worker %s: planned from their owners; abort them", strayInFlight[id], id)
	}
	return pmax
}

func (r *round) computeBounds(pmax int64, slackMilli uint64) {
	weights := make([]uint64, len(r.w))
	fixed := make([]int64, len(r.w))
	var total int64
	for _, p := range r.p {
		total += p.weight
	}
	for i := range r.w {
		weights[i], fixed[i] = r.w[i].weight, r.w[i].fixed
	}
	for i, b := range computeBounds(weights, fixed, total, pmax, slackMilli) {
		r.w[i].bound = b
		if b.saturated {
			r.warnf("%s saturated: pinned/in-flight load %d exceeds its bound; it keeps only that load", r.w[i].id, b.hi)
		}
	}
}

// shed takes partitions off every worker above its upper bound, exactly
// enough (for unit partitions) to reach it. It sheds the partitions whose
// rendezvous score on that worker is lowest: they are the ones the worker
// "wants" least, so a worker's kept set drifts towards its hash affinity.
func (r *round) shed() {
	byWorker := make([][]int, len(r.w))
	for i, p := range r.p {
		if !p.fixed && p.target >= 0 {
			byWorker[p.target] = append(byWorker[p.target], i)
		}
	}
	for wi := range r.w {
		w := &r.w[wi]
		if w.load <= w.hi {
			continue
		}
		// Lowest score first, popped lazily: a worker usually sheds a few
		// percent of its partitions, so sorting them all would be waste.
		cands := newScoreHeap(r.scored(byWorker[wi], w.seed), false)
		var skipped []int
		for w.load > w.hi {
			c, ok := cands.pop()
			if !ok {
				break
			}
			// Keep the worker at or above its lower bound, so a heavy
			// partition is never shed when a light one suffices ...
			if w.load-r.p[c].weight < w.lo {
				skipped = append(skipped, c)
				continue
			}
			r.shedOne(wi, c)
		}
		// ... unless nothing else gets it under its upper bound.
		for _, c := range skipped {
			if w.load <= w.hi {
				break
			}
			r.shedOne(wi, c)
		}
	}
}

func (r *round) shedOne(wi, pi int) {
	w, p := &r.w[wi], &r.p[pi]
	p.reason = ReasonRebalanceOverload
	p.detail = fmt.Sprintf("%s load %d > upper bound %d", w.id, w.load, w.hi)
	p.target = -1
	w.load -= p.weight
}

// place puts every partition without a target (claims, orphans, shed) on
// a worker with room. It prefers, in order, workers below their lower
// bound (so each such move also fills a deficit, which is what makes the
// move count minimal), then workers below their fair share (so claims and
// orphans converge on fair share rather than merely inside the bound),
// then any worker with room; within a tier the highest rendezvous score
// wins, so placement is stable and spread by hash. Heaviest first, because
// they are the hardest to fit.
func (r *round) place() {
	var pool []int
	for i, p := range r.p {
		if p.target < 0 {
			pool = append(pool, i)
		}
	}
	slices.SortStableFunc(pool, func(a, b int) int { return cmp.Compare(r.p[b].weight, r.p[a].weight) })
	for _, pi := range pool {
		p := &r.p[pi]
		best, bestTier, bestScore := -1, 3, uint64(0)
		for wi := range r.w {
			w := &r.w[wi]
			if w.saturated || w.load+p.weight > w.hi {
				continue
			}
			tier := 2
			if w.load < w.lo {
				tier = 0
			} else if w.load < w.ceil {
				tier = 1
			}
			if tier > bestTier {
				continue
			}
			s := score(w.seed, p.in.ID)
			if tier < bestTier || s > bestScore {
				best, bestTier, bestScore = wi, tier, s
			}
		}
		if best < 0 {
			best = r.leastOverflow(p)
		}
		w := &r.w[best]
		if p.reason != ReasonRebalanceOverload {
			p.detail += fmt.Sprintf("; %s load %d -> %d, bounds %d..%d", w.id, w.load, w.load+p.weight, w.lo, w.hi)
		}
		p.target = best
		w.load += p.weight
	}
}

// leastOverflow is the fallback when no worker has room. DESIGN.md shows
// it is unreachable (some unsaturated worker is always below its fair
// share); it exists so a bug degrades to a warning, not a panic.
func (r *round) leastOverflow(p *ppart) int {
	best := -1
	for wi := range r.w {
		if r.w[wi].saturated {
			continue
		}
		if best < 0 || r.w[wi].load-r.w[wi].hi < r.w[best].load-r.w[best].hi {
			best = wi
		}
	}
	r.warnf("%s: no worker has room; placed on %s above its upper bound", p.in.ID, r.w[best].id)
	return best
}

// fill raises workers still below their lower bound by pulling the
// partitions that score highest for them from workers that stay at or
// above their own lower bound. Passes repeat until nothing changes, so the
// result is a fixed point and re-planning it moves nothing.
func (r *round) fill() {
	for progress := true; progress; {
		progress = false
		for ri := range r.w {
			rw := &r.w[ri]
			if rw.saturated || rw.load >= rw.lo {
				continue
			}
			var idx []int
			for i, p := range r.p {
				if !p.fixed && p.target != ri && r.canGive(i, ri) {
					idx = append(idx, i)
				}
			}
			cands := newScoreHeap(r.scored(idx, rw.seed), true)
			for rw.load < rw.lo {
				c, ok := cands.pop()
				if !ok {
					break
				}
				if !r.canGive(c, ri) {
					continue
				}
				p := &r.p[c]
				note := fmt.Sprintf("%s load %d < lower bound %d", rw.id, rw.load, rw.lo)
				switch {
				case p.target == p.owner:
					p.reason, p.detail = ReasonRebalanceUnderload, note
				case ri == p.owner:
					p.reason, p.detail = "", ""
				default:
					p.detail += "; redirected: " + note
				}
				r.w[p.target].load -= p.weight
				p.target = ri
				rw.load += p.weight
				progress = true
			}
		}
	}
	for _, w := range r.w {
		if !w.saturated && w.load < w.lo {
			r.warnf("%s load %d < lower bound %d: every worker with spare load holds only pinned or in-flight partitions, or none that fit", w.id, w.load, w.lo)
		}
	}
}

// canGive reports whether partition i can move to worker to without
// breaking either worker's bound.
func (r *round) canGive(i, to int) bool {
	p := &r.p[i]
	from := &r.w[p.target]
	return from.load-p.weight >= from.lo && r.w[to].load+p.weight <= r.w[to].hi
}

func (r *round) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
