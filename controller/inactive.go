package controller

import (
	"time"

	"github.com/batonhq/baton/fsm"
)

// inactivity remembers since when each partition has been out of the active
// phase (unassigned, orphaned, in a handoff, activating), for the
// oldest-inactive-partition gauge: an operator is told about a partition no
// worker has been processing for too long. A pending handoff's start is read
// from the state (the leader's prepare time), so it survives leader changes;
// any other phase counts from the moment this leader first saw it. It is
// owned by the run goroutine and rebuilt at each term.
type inactivity struct {
	since map[fsm.PartitionID]time.Time
}

// observe records the partitions' phases at now and returns how long the
// partition longest out of the active phase has been out of it (0 when
// every partition is active).
func (in *inactivity) observe(parts []fsm.PartitionInfo, now time.Time) time.Duration {
	next := make(map[fsm.PartitionID]time.Time)
	var oldest time.Duration
	for _, p := range parts {
		if p.Phase == fsm.PhaseActive {
			continue
		}
		since, ok := in.since[p.ID]
		if !ok {
			since = now
		}
		if h := p.PendingHandoff; h != nil && h.PreparedTime > 0 {
			if prepared := time.Unix(0, h.PreparedTime); prepared.Before(since) {
				since = prepared
			}
		}
		next[p.ID] = since
		oldest = max(oldest, now.Sub(since))
	}
	in.since = next
	return oldest
}
