package proptest

import (
	"fmt"
	"slices"

	"github.com/batonhq/baton/fsm"
)

// model is the reference the fsm is checked against: the handoff rules of
// docs/protocol.md written as plainly as possible, with no attempt at speed and
// no code shared with fsm. Each method says whether the command is accepted and,
// if so, applies its effect.
type model struct {
	workers map[fsm.WorkerID]*mWorker
	parts   map[fsm.PartitionID]*mPart
	lastH   fsm.HandoffID
	paused  bool
	index   fsm.RaftIndex
	now     int64
}

type mWorker struct {
	inc      fsm.Incarnation
	state    fsm.WorkerState
	cordoned bool
}

type mHandoff struct {
	id       fsm.HandoffID
	from, to fsm.WorkerID
	epoch    fsm.Epoch
	deadline int64
	drained  bool
	through  fsm.StreamSeq
}

type mPart struct {
	subjects []string
	owner    fsm.WorkerID
	epoch    fsm.Epoch
	phase    fsm.Phase
	resume   fsm.StreamSeq
	cp       fsm.StreamSeq
	h        *mHandoff
	pinned   fsm.WorkerID
	ownerInc fsm.Incarnation
	// lingerers: earlier owners since the last activation, at most 8.
	lingerers []fsm.Lingerer
}

func (p *mPart) linger() {
	if p.owner == "" {
		return
	}
	p.lingerers = append(p.lingerers, fsm.Lingerer{Worker: p.owner, Incarnation: p.ownerInc})
	if len(p.lingerers) > 8 {
		p.lingerers = p.lingerers[len(p.lingerers)-8:]
	}
}

func newModel() *model {
	return &model{workers: map[fsm.WorkerID]*mWorker{}, parts: map[fsm.PartitionID]*mPart{}}
}

func (m *model) eligible(w fsm.WorkerID) bool {
	x := m.workers[w]
	return x != nil && x.state == fsm.WorkerActive && !x.cordoned
}

func (m *model) ownedBy(w fsm.WorkerID) []fsm.PartitionID {
	var out []fsm.PartitionID
	for id, p := range m.parts {
		if p.owner == w {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) prune(w fsm.WorkerID) {
	x := m.workers[w]
	if x == nil || x.state != fsm.WorkerGone || len(m.ownedBy(w)) > 0 {
		return
	}
	for _, p := range m.parts {
		if slices.Contains(p.lingerers, fsm.Lingerer{Worker: w, Incarnation: x.inc}) {
			return
		}
	}
	delete(m.workers, w)
}

func (m *model) finishLeave(w fsm.WorkerID) {
	if x := m.workers[w]; x != nil && x.state == fsm.WorkerLeaving && len(m.ownedBy(w)) == 0 {
		x.state = fsm.WorkerGone
		m.prune(w)
	}
}

// abortTowards cancels handoffs targeting w; drained ones release the partition.
func (m *model) abortTowards(w fsm.WorkerID) {
	for _, id := range m.sortedParts() {
		p := m.parts[id]
		if p.h != nil && p.h.to == w {
			m.abortH(p)
		}
	}
}

func (m *model) abortH(p *mPart) {
	h := p.h
	p.h = nil
	switch {
	case h.drained:
		m.release(p, h.through)
		m.finishLeave(h.from)
	case p.phase == fsm.PhasePreparing:
		p.phase = fsm.PhaseActive
	}
}

func (m *model) release(p *mPart, through fsm.StreamSeq) {
	owner := p.owner
	p.linger()
	p.owner, p.phase, p.h, p.ownerInc = "", fsm.PhaseUnassigned, nil, 0
	p.cp = max(p.cp, through)
	p.resume = p.cp
	m.prune(owner)
}

func (m *model) left(w fsm.WorkerID) {
	m.abortTowards(w)
	m.workers[w].state = fsm.WorkerGone
	for _, id := range m.ownedBy(w) {
		p := m.parts[id]
		if p.phase != fsm.PhaseDrained {
			p.phase = fsm.PhaseOrphaned
		}
	}
	m.prune(w)
}

func (m *model) sortedParts() []fsm.PartitionID {
	ids := make([]fsm.PartitionID, 0, len(m.parts))
	for id := range m.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (m *model) join(w fsm.WorkerID, replace bool) bool {
	x := m.workers[w]
	if x != nil && x.state != fsm.WorkerGone {
		if !replace {
			return false
		}
		m.left(w)
	}
	if m.workers[w] == nil {
		m.workers[w] = &mWorker{}
	}
	*m.workers[w] = mWorker{inc: fsm.Incarnation(m.index), state: fsm.WorkerActive}
	return true
}

func (m *model) reporter(w fsm.WorkerID, inc fsm.Incarnation) bool {
	x := m.workers[w]
	return x != nil && x.inc == inc && x.state != fsm.WorkerGone
}

func (m *model) leave(w fsm.WorkerID, inc fsm.Incarnation) bool {
	if !m.reporter(w, inc) {
		return false
	}
	if m.workers[w].state == fsm.WorkerActive {
		m.abortTowards(w)
		m.workers[w].state = fsm.WorkerLeaving
		m.finishLeave(w)
	}
	return true
}

func (m *model) expire(w fsm.WorkerID, inc fsm.Incarnation, checkInc bool) bool {
	x := m.workers[w]
	if x == nil || (checkInc && x.inc != inc) || x.state == fsm.WorkerGone {
		return false
	}
	m.left(w)
	return true
}

func (m *model) cordon(w fsm.WorkerID, on bool) bool {
	x := m.workers[w]
	if x == nil || x.state == fsm.WorkerGone {
		return false
	}
	if on && !x.cordoned {
		m.abortTowards(w)
	}
	x.cordoned = on
	return true
}

// overlaps is the naive subject overlap test: token by token.
func overlaps(a, b string) bool {
	ta, tb := split(a), split(b)
	for i := 0; ; i++ {
		switch {
		case i == len(ta) && i == len(tb):
			return true
		case i < len(ta) && ta[i] == ">" && i < len(tb):
			return true
		case i < len(tb) && tb[i] == ">" && i < len(ta):
			return true
		case i == len(ta) || i == len(tb):
			return false
		case ta[i] != tb[i] && ta[i] != "*" && tb[i] != "*":
			return false
		}
	}
}

func split(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// declare returns the per-item acceptance and applies accepted items.
func (m *model) declare(specs []fsm.PartitionSpec) []bool {
	ok := make([]bool, len(specs))
	for i, s := range specs {
		sub := slices.Clone(s.Subjects)
		slices.Sort(sub)
		if old := m.parts[s.ID]; old != nil {
			ok[i] = slices.Equal(old.subjects, sub)
			continue
		}
		clash := false
		for _, p := range m.parts {
			for _, a := range p.subjects {
				for _, b := range sub {
					clash = clash || overlaps(a, b)
				}
			}
		}
		if clash {
			continue
		}
		ok[i] = true
		m.parts[s.ID] = &mPart{subjects: sub, phase: fsm.PhaseUnassigned, cp: s.StartAfter, resume: s.StartAfter}
	}
	return ok
}

func (m *model) remove(id fsm.PartitionID) bool {
	p := m.parts[id]
	if p == nil || p.h != nil {
		return false
	}
	delete(m.parts, id)
	m.prune(p.owner)
	m.finishLeave(p.owner)
	for _, l := range p.lingerers {
		m.prune(l.Worker)
	}
	return true
}

func (m *model) claim(id fsm.PartitionID, w fsm.WorkerID) bool {
	p := m.parts[id]
	if p == nil || p.owner != "" || !m.eligible(w) {
		return false
	}
	p.owner, p.epoch, p.phase, p.resume = w, p.epoch+1, fsm.PhaseActivating, p.cp
	p.ownerInc = m.workers[w].inc
	return true
}

func (m *model) prepare(it fsm.PrepareItem) bool {
	p := m.parts[it.Partition]
	if p == nil || it.Epoch != p.epoch || it.From != p.owner || p.h != nil || p.phase != fsm.PhaseActive || it.DrainTimeout < 0 {
		return false
	}
	if it.To != "" && (it.To == it.From || !m.eligible(it.To)) {
		return false
	}
	m.lastH++
	var deadline int64
	if it.DrainTimeout > 0 {
		deadline = m.now + it.DrainTimeout
	}
	p.h = &mHandoff{id: m.lastH, from: it.From, to: it.To, epoch: p.epoch, deadline: deadline}
	p.phase = fsm.PhasePreparing
	return true
}

func (m *model) drain(w fsm.WorkerID, it fsm.DrainItem) bool {
	p := m.parts[it.Partition]
	if p == nil || p.h == nil || p.h.id != it.Handoff || it.Epoch != p.epoch || p.owner != w ||
		p.phase != fsm.PhasePreparing || it.ThroughSeq < p.cp {
		return false
	}
	p.h.drained, p.h.through, p.phase, p.cp = true, it.ThroughSeq, fsm.PhaseDrained, it.ThroughSeq
	if p.h.to == "" {
		m.release(p, it.ThroughSeq)
		m.finishLeave(w)
	}
	return true
}

func (m *model) moveTo(p *mPart, to fsm.WorkerID, resume fsm.StreamSeq) {
	from := p.owner
	p.linger()
	p.owner, p.epoch, p.phase, p.resume, p.h = to, p.epoch+1, fsm.PhaseActivating, resume, nil
	p.ownerInc = m.workers[to].inc
	m.finishLeave(from)
	m.prune(from)
}

func (m *model) commit(it fsm.CommitItem) bool {
	p := m.parts[it.Partition]
	if p == nil || p.h == nil || p.h.id != it.Handoff || p.phase != fsm.PhaseDrained || !m.eligible(p.h.to) {
		return false
	}
	m.moveTo(p, p.h.to, p.h.through)
	return true
}

func (m *model) force(it fsm.ForceItem) bool {
	p := m.parts[it.Partition]
	if p == nil || it.Epoch != p.epoch || p.phase == fsm.PhaseUnassigned || p.phase == fsm.PhaseDrained {
		return false
	}
	switch it.Reason {
	case fsm.ForceOwnerLeft:
		if p.phase != fsm.PhaseOrphaned {
			return false
		}
	case fsm.ForceDrainDeadline:
		if p.h == nil || p.phase != fsm.PhasePreparing || p.h.deadline == 0 || m.now < p.h.deadline {
			return false
		}
	case fsm.ForceOperator:
	default:
		return false
	}
	if (it.To == p.owner && p.phase != fsm.PhaseOrphaned) || !m.eligible(it.To) {
		return false
	}
	if p.h == nil {
		m.lastH++
	}
	m.moveTo(p, it.To, p.cp)
	return true
}

func (m *model) activate(w fsm.WorkerID, it fsm.ActivateItem) bool {
	p := m.parts[it.Partition]
	if p == nil || it.Epoch != p.epoch || p.owner != w || p.phase != fsm.PhaseActivating {
		return false
	}
	p.phase = fsm.PhaseActive
	ls := p.lingerers
	p.lingerers = nil
	for _, l := range ls {
		m.prune(l.Worker)
	}
	return true
}

func (m *model) abort(it fsm.AbortItem) bool {
	p := m.parts[it.Partition]
	if p == nil || p.h == nil || p.h.id != it.Handoff {
		return false
	}
	m.abortH(p)
	return true
}

func (m *model) releaseCmd(w fsm.WorkerID, it fsm.ReleaseItem) bool {
	p := m.parts[it.Partition]
	if p == nil || it.Epoch != p.epoch || p.owner != w || p.h != nil ||
		(p.phase != fsm.PhaseActive && p.phase != fsm.PhaseActivating) || it.ThroughSeq < p.cp {
		return false
	}
	m.release(p, it.ThroughSeq)
	m.finishLeave(w)
	return true
}

func (m *model) checkpoint(w fsm.WorkerID, it fsm.CheckpointItem) bool {
	p := m.parts[it.Partition]
	if p == nil || it.Epoch != p.epoch || p.owner != w || it.Seq < p.cp {
		return false
	}
	switch p.phase {
	case fsm.PhaseActivating, fsm.PhaseActive, fsm.PhasePreparing:
	default:
		return false
	}
	p.cp = it.Seq
	return true
}

// diff compares the model with the fsm and describes the first difference.
func (m *model) diff(s *fsm.State) error {
	ws := s.Workers()
	if len(ws) != len(m.workers) {
		return fmt.Errorf("fsm has %d workers, model %d", len(ws), len(m.workers))
	}
	for _, w := range ws {
		x := m.workers[w.ID]
		if x == nil || x.inc != w.Incarnation || x.state != w.State || x.cordoned != w.Cordoned {
			return fmt.Errorf("worker %s: fsm %v, model %+v", w.ID, w, x)
		}
	}
	ps := s.Partitions("", 0)
	if len(ps) != len(m.parts) {
		return fmt.Errorf("fsm has %d partitions, model %d", len(ps), len(m.parts))
	}
	for _, p := range ps {
		x := m.parts[p.ID]
		if x == nil {
			return fmt.Errorf("partition %s unknown to the model", p.ID)
		}
		if x.owner != p.Owner || x.epoch != p.Epoch || x.phase != p.Phase || x.cp != p.Checkpoint ||
			x.pinned != p.Pinned || (x.owner != "" && x.resume != p.ResumeAfter) || x.ownerInc != p.OwnerIncarnation ||
			!slices.Equal(x.lingerers, p.Lingerers) {
			return fmt.Errorf("partition %s: fsm %v, model %+v", p.ID, p.Partition, *x)
		}
		switch {
		case (x.h == nil) != (p.PendingHandoff == nil):
			return fmt.Errorf("partition %s: fsm handoff %v, model %+v", p.ID, p.PendingHandoff, x.h)
		case x.h != nil:
			h := p.PendingHandoff
			if h.ID != x.h.id || h.To != x.h.to || h.Drained != x.h.drained || h.ThroughSeq != x.h.through || h.Epoch != x.h.epoch {
				return fmt.Errorf("partition %s: fsm handoff %+v, model %+v", p.ID, *h, *x.h)
			}
		}
	}
	if s.Paused() != m.paused {
		return fmt.Errorf("paused: fsm %v, model %v", s.Paused(), m.paused)
	}
	return nil
}

func (m *model) pin(id fsm.PartitionID, w fsm.WorkerID) bool {
	p := m.parts[id]
	if p == nil {
		return false
	}
	if w != "" {
		x := m.workers[w]
		if x == nil || x.state == fsm.WorkerGone {
			return false
		}
	}
	p.pinned = w
	return true
}
