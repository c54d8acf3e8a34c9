package fsm

import "fmt"

// EncodeEvent returns the binary form of ev: version, type tag, meta, body. The
// audit log stores events in this form.
func EncodeEvent(ev Event) []byte {
	var e encoder
	appendEvent(&e, ev)
	return e.buf
}

func appendEvent(e *encoder, ev Event) {
	e.u8(encodingVersion)
	e.u8(uint8(ev.Body.Type()))
	e.uvarint(uint64(ev.Index))
	e.uvarint(uint64(ev.Seq))
	e.uvarint(ev.Term)
	e.varint(ev.Time)
	e.str(ev.Actor)
	e.str(ev.Cause)
	e.str(ev.RequestID)
	encodeEventBody(e, ev.Body)
}

// DecodeEvent parses the binary form of an event; like DecodeCommand it returns
// errors for bad input and never panics.
func DecodeEvent(b []byte) (Event, error) {
	d := decoder{buf: b}
	ev := decodeEvent(&d)
	if err := d.done(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func decodeEvent(d *decoder) Event {
	v := d.u8()
	if d.err == nil && v != encodingVersion {
		d.err = fmt.Errorf("%w: event version %d", ErrUnsupportedVersion, v)
	}
	t := EventType(d.u8())
	if d.err != nil {
		return Event{}
	}
	if t == 0 || t >= evTypeEnd {
		d.fail("event type %d", t)
		return Event{}
	}
	var ev Event
	ev.Index = RaftIndex(d.uvarint())
	ev.Seq = d.u32()
	ev.Term = d.uvarint()
	ev.Time = d.varint()
	ev.Actor = d.str()
	ev.Cause = d.str()
	ev.RequestID = d.str()
	ev.Body = decodeEventBody(d, t)
	return ev
}

func encodeEventBody(e *encoder, b EventBody) {
	switch b := b.(type) {
	case WorkerJoined:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.uvarint(uint64(b.Weight))
		e.uvarint(uint64(len(b.Labels)))
		for _, l := range b.Labels {
			e.str(l.Key)
			e.str(l.Value)
		}
	case LeaveStarted:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
	case WorkerLeft:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.u8(uint8(b.Reason))
	case WorkerCordoned:
		e.str(string(b.Worker))
		e.bool(b.On)
	case PartitionsDeclared:
		e.uvarint(uint64(len(b.Partitions)))
		for _, p := range b.Partitions {
			encodeSpec(e, p)
		}
	case PartitionRemoved:
		e.str(string(b.Partition))
		e.str(string(b.Owner))
		e.uvarint(uint64(b.Epoch))
		encodeLingerers(e, b.Lingerers)
	case Claimed:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Epoch))
		e.uvarint(uint64(b.ResumeAfter))
	case Prepared:
		e.uvarint(uint64(b.Handoff))
		e.str(string(b.Partition))
		e.str(string(b.From))
		e.str(string(b.To))
		e.uvarint(uint64(b.Epoch))
		e.str(b.Reason)
		e.varint(b.Deadline)
	case Drained:
		e.uvarint(uint64(b.Handoff))
		e.str(string(b.Partition))
		e.str(string(b.From))
		e.uvarint(uint64(b.Epoch))
		e.uvarint(uint64(b.ThroughSeq))
	case Committed:
		e.uvarint(uint64(b.Handoff))
		e.str(string(b.Partition))
		e.str(string(b.From))
		e.str(string(b.To))
		e.uvarint(uint64(b.Epoch))
		e.uvarint(uint64(b.ResumeAfter))
		e.bool(b.Forced)
		e.u8(uint8(b.ForceReason))
	case Activated:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Epoch))
		encodeLingerers(e, b.Lingerers)
	case Aborted:
		e.uvarint(uint64(b.Handoff))
		e.str(string(b.Partition))
		e.str(string(b.From))
		e.str(string(b.To))
		e.str(b.Reason)
	case Released:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Epoch))
		e.uvarint(uint64(b.ThroughSeq))
	case Checkpointed:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Epoch))
		e.uvarint(uint64(b.Seq))
	case PartitionPinned:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
	case RebalanceSet:
		e.bool(b.Paused)
	case NodeRegistered:
		e.str(b.Node)
		e.str(b.APIAddr)
	case NodeRemoved:
		e.str(b.Node)
	default:
		panic(fmt.Sprintf("fsm: no encoding for event %T", b))
	}
}

func encodeLingerers(e *encoder, ls []Lingerer) {
	e.uvarint(uint64(len(ls)))
	for _, l := range ls {
		e.str(string(l.Worker))
		e.uvarint(uint64(l.Incarnation))
	}
}

func decodeLingerers(d *decoder) []Lingerer {
	return items(d, 2, func() Lingerer { return Lingerer{Worker: WorkerID(d.str()), Incarnation: Incarnation(d.uvarint())} })
}

func decodeEventBody(d *decoder, t EventType) EventBody {
	wid := func() WorkerID { return WorkerID(d.str()) }
	pid := func() PartitionID { return PartitionID(d.str()) }
	switch t {
	case EvWorkerJoined:
		return WorkerJoined{Worker: wid(), Incarnation: Incarnation(d.uvarint()), Weight: d.u32(), Labels: decodeLabels(d)}
	case EvLeaveStarted:
		return LeaveStarted{Worker: wid(), Incarnation: Incarnation(d.uvarint())}
	case EvWorkerLeft:
		return WorkerLeft{Worker: wid(), Incarnation: Incarnation(d.uvarint()), Reason: LeftReason(d.u8())}
	case EvWorkerCordoned:
		return WorkerCordoned{Worker: wid(), On: d.bool()}
	case EvPartitionsDeclared:
		return PartitionsDeclared{Partitions: items(d, 4, func() PartitionSpec { return decodeSpec(d) })}
	case EvPartitionRemoved:
		return PartitionRemoved{Partition: pid(), Owner: wid(), Epoch: Epoch(d.uvarint()), Lingerers: decodeLingerers(d)}
	case EvClaimed:
		return Claimed{Partition: pid(), Worker: wid(), Epoch: Epoch(d.uvarint()), ResumeAfter: StreamSeq(d.uvarint())}
	case EvPrepared:
		return Prepared{Handoff: HandoffID(d.uvarint()), Partition: pid(), From: wid(), To: wid(),
			Epoch: Epoch(d.uvarint()), Reason: d.str(), Deadline: d.varint()}
	case EvDrained:
		return Drained{Handoff: HandoffID(d.uvarint()), Partition: pid(), From: wid(), Epoch: Epoch(d.uvarint()),
			ThroughSeq: StreamSeq(d.uvarint())}
	case EvCommitted:
		return Committed{Handoff: HandoffID(d.uvarint()), Partition: pid(), From: wid(), To: wid(),
			Epoch: Epoch(d.uvarint()), ResumeAfter: StreamSeq(d.uvarint()), Forced: d.bool(), ForceReason: ForceReason(d.u8())}
	case EvActivated:
		return Activated{Partition: pid(), Worker: wid(), Epoch: Epoch(d.uvarint()), Lingerers: decodeLingerers(d)}
	case EvAborted:
		return Aborted{Handoff: HandoffID(d.uvarint()), Partition: pid(), From: wid(), To: wid(), Reason: d.str()}
	case EvReleased:
		return Released{Partition: pid(), Worker: wid(), Epoch: Epoch(d.uvarint()), ThroughSeq: StreamSeq(d.uvarint())}
	case EvCheckpointed:
		return Checkpointed{Partition: pid(), Worker: wid(), Epoch: Epoch(d.uvarint()), Seq: StreamSeq(d.uvarint())}
	case EvPartitionPinned:
		return PartitionPinned{Partition: pid(), Worker: wid()}
	case EvRebalanceSet:
		return RebalanceSet{Paused: d.bool()}
	case EvNodeRegistered:
		return NodeRegistered{Node: d.str(), APIAddr: d.str()}
	case EvNodeRemoved:
		return NodeRemoved{Node: d.str()}
	}
	d.fail("event type %d", t)
	return nil
}
