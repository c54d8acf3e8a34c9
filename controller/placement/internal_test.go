package placement

import (
	"math"
	"math/big"
	"math/bits"
	"testing"
)

// TestScoreIsPinned fixes the rendezvous hash. Changing it would not move
// anything by itself (placement is sticky), but it would change which
// partitions the next rebalance picks, and plans computed by leaders of
// different versions would disagree; so a change must be deliberate.
func TestScoreIsPinned(t *testing.T) {
	cases := []struct {
		w    WorkerID
		p    PartitionID
		want uint64
	}{
		// Values computed independently (Python) from the documented
		// recipe: FNV-1a 64 over the worker ID, its length as 8 little-endian
		// bytes and the partition ID, then the murmur3 fmix64 finaliser.
		{"w1", "p1", 0xd52355778cb2b931},
		{"w2", "p1", 0xb5475244c9fbb4fc},
		{"w1", "p2", 0xf78961da4e6919f5},
		{"", "", 0x7bd3144f29c0cc9e},
	}
	for _, tc := range cases {
		if got := score(workerSeed(tc.w), tc.p); got != tc.want {
			t.Errorf("score(%q, %q) = %#x, want %#x", tc.w, tc.p, got, tc.want)
		}
	}
	if score(workerSeed("ab"), "c") == score(workerSeed("a"), "bc") {
		t.Error("worker/partition boundary is ambiguous")
	}
}

// TestScoreSpreads checks that the top-scoring worker is close to uniform
// over sequential IDs, the case plain FNV-1a handles worst.
func TestScoreSpreads(t *testing.T) {
	const nw, np = 10, 100000
	seeds := make([]uint64, nw)
	for i := range seeds {
		seeds[i] = workerSeed(WorkerID(string(rune('a' + i))))
	}
	wins := make([]int, nw)
	for i := range np {
		p := PartitionID("partition-" + itoa(i))
		best, bestScore := 0, uint64(0)
		for w, s := range seeds {
			if sc := score(s, p); sc > bestScore {
				best, bestScore = w, sc
			}
		}
		wins[best]++
	}
	for w, n := range wins {
		// Expected 10000, sd ~95: 5% is over 5 sd.
		if math.Abs(float64(n)-np/nw) > 0.05*np/nw {
			t.Errorf("worker %d wins %d of %d", w, n, np)
		}
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestFairShareExact(t *testing.T) {
	cases := []struct{ w, v, total uint64 }{
		{10, 1, 3}, {9, 3, 9}, {0, 1, 1}, {1 << 40, 1<<32 - 1, 1<<33 + 7},
		{math.MaxUint64 / 2, 1<<32 - 1, 1<<32 - 1}, {7, 5, 12},
	}
	for _, tc := range cases {
		floor, ceil := fairShare(tc.w, tc.v, tc.total)
		hi, lo := bits.Mul64(tc.w, tc.v)
		num := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
		num.Or(num, new(big.Int).SetUint64(lo))
		q, r := new(big.Int).QuoRem(num, new(big.Int).SetUint64(tc.total), new(big.Int))
		wantCeil := new(big.Int).Set(q)
		if r.Sign() != 0 {
			wantCeil.Add(wantCeil, big.NewInt(1))
		}
		if floor != q.Uint64() || ceil != wantCeil.Uint64() {
			t.Errorf("fairShare(%d, %d, %d) = %d, %d; want %v, %v", tc.w, tc.v, tc.total, floor, ceil, q, wantCeil)
		}
	}
}

func TestSlackUnits(t *testing.T) {
	cases := []struct {
		slack  float64
		weight uint64
		want   int64
	}{
		{0, 5, 0}, {1, 1, 0}, {1, 4, 3}, {0.5, 1, 0}, {0.5, 4, 1}, {0.5, 5, 2},
		{2, 3, 5}, {0.001, 1000, 0}, {0.0004, 1, 0}, {maxSlack, 1<<32 - 1, maxSlack*(1<<32-1) - 1},
	}
	for _, tc := range cases {
		if got := slackUnits(Config{Slack: tc.slack}.slackMilli(), tc.weight); got != tc.want {
			t.Errorf("slack %v weight %d: k = %d, want %d", tc.slack, tc.weight, got, tc.want)
		}
	}
}
