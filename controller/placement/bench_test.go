package placement_test

import (
	"fmt"
	"testing"

	"github.com/batonhq/baton/controller/placement"
)

var benchSizes = []struct{ parts, workers int }{{10000, 10}, {100000, 100}}

// BenchmarkPlan10kJoin times one plan after a worker joins a settled
// cluster and reports the moves against the reference minimum. Run with
//
//	go test -run '^$' -bench Plan -benchmem ./controller/placement/
func BenchmarkPlan10kJoin(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("parts=%d/workers=%d+1", sz.parts, sz.workers), func(b *testing.B) {
			in := settled(b, workers(sz.workers), sz.parts)
			in.Workers = append(in.Workers, W{ID: "joiner", Weight: 1, Eligible: true})
			minimum := newRefModel(in).minMoves(in)
			var plan placement.Plan
			b.ResetTimer()
			for b.Loop() {
				plan = mustPlan(b, in)
			}
			b.ReportMetric(float64(len(plan.Moves)), "moves")
			b.ReportMetric(float64(minimum), "min_moves")
			b.ReportMetric(100*float64(len(plan.Moves)-minimum)/float64(minimum), "excess_%")
		})
	}
}

// BenchmarkPlanSteady is the common case: nothing changed, nothing moves.
func BenchmarkPlanSteady(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("parts=%d/workers=%d", sz.parts, sz.workers), func(b *testing.B) {
			in := settled(b, workers(sz.workers), sz.parts)
			var plan placement.Plan
			for b.Loop() {
				plan = mustPlan(b, in)
			}
			b.ReportMetric(float64(len(plan.Moves)), "moves")
		})
	}
}

// BenchmarkPlanColdStart places every partition from scratch, the worst
// case for rendezvous scoring (every partition scored on every worker).
func BenchmarkPlanColdStart(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("parts=%d/workers=%d", sz.parts, sz.workers), func(b *testing.B) {
			in := placement.Input{Workers: workers(sz.workers), Partitions: unassigned(sz.parts), Config: placement.DefaultConfig()}
			for b.Loop() {
				mustPlan(b, in)
			}
		})
	}
}
