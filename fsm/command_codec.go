package fsm

import "fmt"

// EncodeCommand returns the binary form of cmd: version, type tag, header, body.
func EncodeCommand(cmd Command) ([]byte, error) {
	if cmd.Body == nil {
		return nil, fmt.Errorf("fsm: encode command: no body")
	}
	var e encoder
	e.u8(encodingVersion)
	e.u8(uint8(cmd.Body.Type()))
	e.str(cmd.RequestID)
	e.str(cmd.Actor)
	e.str(cmd.Cause)
	e.varint(cmd.Time)
	encodeBody(&e, cmd.Body)
	return e.buf, nil
}

// DecodeCommand parses the binary form of a command. It returns an error wrapping
// ErrCorrupt for malformed bytes, ErrUnsupportedVersion for another encoding
// version, and ErrUnknownCommand for a type tag this build does not know; it never
// panics.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{buf: b}
	v := d.u8()
	if d.err == nil && v != encodingVersion {
		return Command{}, fmt.Errorf("%w: command version %d", ErrUnsupportedVersion, v)
	}
	t := CommandType(d.u8())
	if d.err != nil {
		return Command{}, d.err
	}
	if t == 0 || t >= cmdTypeEnd {
		return Command{}, fmt.Errorf("%w: command type %d", ErrUnknownCommand, t)
	}
	var cmd Command
	cmd.RequestID = d.str()
	cmd.Actor = d.str()
	cmd.Cause = d.str()
	cmd.Time = d.varint()
	cmd.Body = decodeBody(&d, t)
	if err := d.done(); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

func encodeBody(e *encoder, b Body) {
	switch b := b.(type) {
	case Join:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Weight))
		e.uvarint(uint64(len(b.Labels)))
		for _, l := range b.Labels {
			e.str(l.Key)
			e.str(l.Value)
		}
		e.bool(b.Replace)
	case Leave:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
	case Expire:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
	case RemoveWorker:
		e.str(string(b.Worker))
	case Declare:
		e.uvarint(uint64(len(b.Partitions)))
		for _, p := range b.Partitions {
			encodeSpec(e, p)
		}
	case RemovePartitions:
		e.uvarint(uint64(len(b.Partitions)))
		for _, p := range b.Partitions {
			e.str(string(p))
		}
	case Claim:
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.str(string(it.Worker))
		}
	case Prepare:
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
			e.str(string(it.From))
			e.str(string(it.To))
			e.str(it.Reason)
			e.varint(it.DrainTimeout)
		}
	case Drain:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.uvarint(uint64(it.Handoff))
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
			e.uvarint(uint64(it.ThroughSeq))
		}
	case Commit:
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.uvarint(uint64(it.Handoff))
			e.str(string(it.Partition))
		}
	case ForceCommit:
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
			e.str(string(it.To))
			e.u8(uint8(it.Reason))
		}
	case Activate:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
		}
	case Abort:
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.uvarint(uint64(it.Handoff))
			e.str(string(it.Partition))
			e.str(it.Reason)
		}
	case Release:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
			e.uvarint(uint64(it.ThroughSeq))
		}
	case Checkpoint:
		e.str(string(b.Worker))
		e.uvarint(uint64(b.Incarnation))
		e.uvarint(uint64(len(b.Items)))
		for _, it := range b.Items {
			e.str(string(it.Partition))
			e.uvarint(uint64(it.Epoch))
			e.uvarint(uint64(it.Seq))
		}
	case Cordon:
		e.str(string(b.Worker))
		e.bool(b.On)
	case Pin:
		e.str(string(b.Partition))
		e.str(string(b.Worker))
	case SetRebalance:
		e.bool(b.Paused)
	case RegisterNode:
		e.str(b.Node)
		e.str(b.APIAddr)
	case RemoveNode:
		e.str(b.Node)
	default:
		// Body is a closed set; a new type without an encoding is a build bug
		// that the codec round-trip test catches.
		panic(fmt.Sprintf("fsm: no encoding for %T", b))
	}
}

func encodeSpec(e *encoder, p PartitionSpec) {
	e.str(string(p.ID))
	e.strs(p.Subjects)
	e.uvarint(uint64(p.Weight))
	e.uvarint(uint64(p.StartAfter))
}

func decodeSpec(d *decoder) PartitionSpec {
	return PartitionSpec{
		ID:         PartitionID(d.str()),
		Subjects:   d.strs(),
		Weight:     d.u32(),
		StartAfter: StreamSeq(d.uvarint()),
	}
}

func decodeLabels(d *decoder) []Label {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	out := make([]Label, n)
	for i := range out {
		out[i] = Label{Key: d.str(), Value: d.str()}
	}
	return out
}

// items decodes a collection of n elements of at least min bytes each.
func items[T any](d *decoder, min int, one func() T) []T {
	n := d.count(min)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = one()
		if d.err != nil {
			return nil
		}
	}
	return out
}

func decodeBody(d *decoder, t CommandType) Body {
	wid := func() WorkerID { return WorkerID(d.str()) }
	pid := func() PartitionID { return PartitionID(d.str()) }
	switch t {
	case CmdJoin:
		return Join{Worker: wid(), Weight: d.u32(), Labels: decodeLabels(d), Replace: d.bool()}
	case CmdLeave:
		return Leave{Worker: wid(), Incarnation: Incarnation(d.uvarint())}
	case CmdExpire:
		return Expire{Worker: wid(), Incarnation: Incarnation(d.uvarint())}
	case CmdRemoveWorker:
		return RemoveWorker{Worker: wid()}
	case CmdDeclare:
		return Declare{Partitions: items(d, 4, func() PartitionSpec { return decodeSpec(d) })}
	case CmdRemovePartitions:
		return RemovePartitions{Partitions: items(d, 1, pid)}
	case CmdClaim:
		return Claim{Items: items(d, 2, func() ClaimItem { return ClaimItem{Partition: pid(), Worker: wid()} })}
	case CmdPrepare:
		return Prepare{Items: items(d, 6, func() PrepareItem {
			return PrepareItem{Partition: pid(), Epoch: Epoch(d.uvarint()), From: wid(), To: wid(), Reason: d.str(), DrainTimeout: d.varint()}
		})}
	case CmdDrain:
		w, inc := wid(), Incarnation(d.uvarint())
		return Drain{Worker: w, Incarnation: inc, Items: items(d, 4, func() DrainItem {
			return DrainItem{Handoff: HandoffID(d.uvarint()), Partition: pid(), Epoch: Epoch(d.uvarint()), ThroughSeq: StreamSeq(d.uvarint())}
		})}
	case CmdCommit:
		return Commit{Items: items(d, 2, func() CommitItem {
			return CommitItem{Handoff: HandoffID(d.uvarint()), Partition: pid()}
		})}
	case CmdForceCommit:
		return ForceCommit{Items: items(d, 4, func() ForceItem {
			return ForceItem{Partition: pid(), Epoch: Epoch(d.uvarint()), To: wid(), Reason: ForceReason(d.u8())}
		})}
	case CmdActivate:
		w, inc := wid(), Incarnation(d.uvarint())
		return Activate{Worker: w, Incarnation: inc, Items: items(d, 2, func() ActivateItem {
			return ActivateItem{Partition: pid(), Epoch: Epoch(d.uvarint())}
		})}
	case CmdAbort:
		return Abort{Items: items(d, 3, func() AbortItem {
			return AbortItem{Handoff: HandoffID(d.uvarint()), Partition: pid(), Reason: d.str()}
		})}
	case CmdRelease:
		w, inc := wid(), Incarnation(d.uvarint())
		return Release{Worker: w, Incarnation: inc, Items: items(d, 3, func() ReleaseItem {
			return ReleaseItem{Partition: pid(), Epoch: Epoch(d.uvarint()), ThroughSeq: StreamSeq(d.uvarint())}
		})}
	case CmdCheckpoint:
		w, inc := wid(), Incarnation(d.uvarint())
		return Checkpoint{Worker: w, Incarnation: inc, Items: items(d, 3, func() CheckpointItem {
			return CheckpointItem{Partition: pid(), Epoch: Epoch(d.uvarint()), Seq: StreamSeq(d.uvarint())}
		})}
	case CmdCordon:
		return Cordon{Worker: wid(), On: d.bool()}
	case CmdPin:
		return Pin{Partition: pid(), Worker: wid()}
	case CmdSetRebalance:
		return SetRebalance{Paused: d.bool()}
	case CmdRegisterNode:
		return RegisterNode{Node: d.str(), APIAddr: d.str()}
	case CmdRemoveNode:
		return RemoveNode{Node: d.str()}
	}
	d.fail("command type %d", t)
	return nil
}
