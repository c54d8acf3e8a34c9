package placement

import (
	"math"
	"math/bits"
)

// Config tunes the default strategy. The zero value is valid and gives the
// tightest bound; DefaultConfig gives the documented default.
type Config struct {
	// Slack is the load-bound factor s: how far, in partition-weight units
	// per unit of worker weight, a worker's load may stray from its fair
	// share. A worker of weight v gets k = max(0, ceil(s*v) - 1) units of
	// slack on each side of [floor(fair), ceil(fair)]. With s = 1 and unit
	// partitions that is exactly |load - fair| < v, and for equal worker
	// weights every worker holds floor or ceil of W/N. Larger values trade
	// balance for fewer rebalancing moves. Slack is rounded to thousandths so
	// that the bound is computed in integers and is identical on every
	// platform.
	Slack float64
}

// DefaultConfig returns Slack 1: "each worker within one partition per
// unit of weight of its fair share".
func DefaultConfig() Config { return Config{Slack: 1} }

// slackMilli is Slack in thousandths; Validate bounds it to 2^30, so the
// product with a uint32 weight fits in uint64.
func (c Config) slackMilli() uint64 { return uint64(math.Round(c.Slack * 1000)) }

// slackUnits is k_w = max(0, ceil(s*v) - 1), in integer arithmetic.
func slackUnits(milli, weight uint64) int64 {
	x := milli * weight
	if x == 0 {
		return 0
	}
	return int64((x+999)/1000) - 1
}

// bound is one eligible worker's target window.
type bound struct {
	lo, hi    int64
	ceil      int64 // ceil(fair), the "below fair share" test for integer loads
	fair      float64
	saturated bool
}

// computeBounds returns each eligible worker's window. total is the weight
// of every partition (all of them end up on eligible workers), fixed the
// pinned plus in-flight load per worker, pmax the heaviest movable
// partition.
//
// A worker whose fixed load alone exceeds its upper bound cannot be helped
// by moving movable partitions, and leaving it in the fair-share
// computation would make the other workers' lower bounds unreachable. So it
// is marked saturated and removed, and the shares of the rest are
// recomputed from the remaining weight (water-filling). Removing one only
// lowers the others' shares, so every worker over its bound in a pass can
// be removed at once; at most len(weights) passes run.
func computeBounds(weights []uint64, fixed []int64, total, pmax int64, slackMilli uint64) []bound {
	b := make([]bound, len(weights))
	for {
		ws, vs := uint64(total), uint64(0)
		for i, v := range weights {
			if b[i].saturated {
				ws -= uint64(fixed[i])
			} else {
				vs += v
			}
		}
		if vs == 0 {
			// Unreachable: the sum of fixed loads is at most total, so some
			// worker's fixed load is at most its fair share. Kept so that a
			// bug cannot divide by zero.
			return b
		}
		changed := false
		for i, v := range weights {
			if b[i].saturated {
				continue
			}
			floor, ceil := fairShare(ws, v, vs)
			k := slackUnits(slackMilli, v) + pmax - 1
			b[i] = bound{
				lo:   max(0, int64(floor)-k),
				hi:   int64(ceil) + k,
				ceil: int64(ceil),
				fair: float64(ws) * float64(v) / float64(vs),
			}
			if fixed[i] > b[i].hi {
				b[i].saturated = true
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for i := range b {
		if b[i].saturated {
			b[i] = bound{lo: fixed[i], hi: fixed[i], ceil: fixed[i], fair: float64(fixed[i]), saturated: true}
		}
	}
	return b
}

// fairShare returns floor and ceil of w*v/V exactly. The 128-bit product
// matters: 10^7 partitions of weight 2^32 times a worker weight of 2^32
// overflows uint64, and a float would round differently across releases.
func fairShare(w, v, total uint64) (floor, ceil uint64) {
	hi, lo := bits.Mul64(w, v)
	q, r := bits.Div64(hi, lo, total) // q <= w because v <= total, so no overflow
	if r != 0 {
		return q, q + 1
	}
	return q, q
}
