package fsm

// requestTable remembers the outcome of recent commands by request id so that a
// retried proposal (after an unknown outcome: lost leadership, a time-out) returns
// the first result instead of applying twice. It is bounded in count and in age
// (command time), evicts oldest first, and is part of snapshots: a replica restored
// from a snapshot must dedupe exactly as the one that wrote it.
type requestTable struct {
	order []requestEntry // oldest first; entries [head:] are live
	head  int
	byID  map[string]int // request id -> position in order
}

// requestEntry is what a retry gets back.
type requestEntry struct {
	ID    string
	Index RaftIndex
	Time  int64
	Hash  uint64 // of the encoded command body: a reused id with another body is an error
	Err   *RejectError
	Items []itemReject // rejected items only
}

type itemReject struct {
	Item int
	Err  *RejectError
}

func newRequestTable() requestTable {
	return requestTable{byID: make(map[string]int)}
}

func (t *requestTable) len() int { return len(t.order) - t.head }

func (t *requestTable) lookup(id string) (requestEntry, bool) {
	i, ok := t.byID[id]
	if !ok {
		return requestEntry{}, false
	}
	return t.order[i], true
}

func (t *requestTable) add(e requestEntry) {
	t.byID[e.ID] = len(t.order)
	t.order = append(t.order, e)
}

// evict drops entries beyond max and entries older than minTime.
func (t *requestTable) evict(max int, minTime int64) {
	for t.len() > 0 && (t.len() > max || t.order[t.head].Time < minTime) {
		delete(t.byID, t.order[t.head].ID)
		t.order[t.head] = requestEntry{}
		t.head++
	}
	// Compact once the dead prefix dominates, so memory stays proportional to max.
	if t.head > 1024 && t.head*2 > len(t.order) {
		live := append([]requestEntry(nil), t.order[t.head:]...)
		t.order, t.head = live, 0
		for i, e := range live {
			t.byID[e.ID] = i
		}
	}
}

// entries returns the live entries, oldest first.
func (t *requestTable) entries() []requestEntry { return t.order[t.head:] }

// result rebuilds the first result for a retry of a command with n items.
func (e requestEntry) result(n int) Result {
	r := Result{Index: e.Index, Duplicate: true}
	if e.Err != nil {
		r.Err = e.Err
	}
	if n > 0 && r.Err == nil {
		r.Items = make([]error, n)
		for _, ir := range e.Items {
			if ir.Item < n {
				r.Items[ir.Item] = ir.Err
			}
		}
	}
	return r
}
