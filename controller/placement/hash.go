package placement

// Rendezvous (highest-random-weight) scoring, and the lazy heap that
// yields candidates in score order.

// FNV-1a 64 constants.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// workerSeed hashes the worker ID and its length once per worker, so
// scoring a partition only hashes the partition ID. The length makes the
// concatenation unambiguous ("ab"+"c" vs "a"+"bc").
func workerSeed(id WorkerID) uint64 {
	h := fnvAdd(fnvOffset, string(id))
	n := uint64(len(id))
	for range 8 {
		h ^= n & 0xff
		h *= fnvPrime
		n >>= 8
	}
	return h
}

// score is the rendezvous (highest-random-weight) score of a partition on
// a worker: FNV-1a 64 over worker then partition, then the murmur3 64-bit
// finaliser. FNV-1a alone barely changes its high bits when only the last
// byte differs ("p1" vs "p2"), which would correlate rankings; the
// finaliser restores full avalanche at the cost of a few multiplies.
func score(seed uint64, p PartitionID) uint64 {
	x := fnvAdd(seed, string(p))
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

type scored struct {
	s uint64
	i int
}

func (r *round) scored(idx []int, seed uint64) []scored {
	out := make([]scored, len(idx))
	for k, i := range idx {
		out[k] = scored{s: score(seed, r.p[i].in.ID), i: i}
	}
	return out
}

// scoreHeap yields partition indexes by score (highest first if desc,
// else lowest first), ties by index, i.e. by partition ID. Building it is
// O(n) and each pop O(log n), which matters because a round typically
// needs the first few hundred of ~10^5 candidates.
type scoreHeap struct {
	a    []scored
	desc bool
}

func newScoreHeap(a []scored, desc bool) *scoreHeap {
	h := &scoreHeap{a: a, desc: desc}
	for i := len(a)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	return h
}

func (h *scoreHeap) before(i, j int) bool {
	x, y := h.a[i], h.a[j]
	if x.s != y.s {
		return (x.s > y.s) == h.desc
	}
	return x.i < y.i
}

func (h *scoreHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h.a) {
			return
		}
		if c+1 < len(h.a) && h.before(c+1, c) {
			c++
		}
		if !h.before(c, i) {
			return
		}
		h.a[i], h.a[c] = h.a[c], h.a[i]
		i = c
	}
}

func (h *scoreHeap) pop() (int, bool) {
	if len(h.a) == 0 {
		return 0, false
	}
	top := h.a[0].i
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	h.down(0)
	return top, true
}
