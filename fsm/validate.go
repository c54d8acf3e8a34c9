package fsm

// validID reports whether s can name a worker or partition: 1 to 128 bytes of
// ASCII letters, digits, '-', '_' and '.'. Partition ids are substituted into
// subject templates and worker ids into consumer names, so nothing that is
// special to NATS (whitespace, '*', '>') may appear.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.'
}

func checkWorkerID(w WorkerID) *RejectError {
	if !validID(string(w)) {
		return reject(CodeInvalidArgument, "invalid worker id %s: want 1 to %d bytes of letters, digits, '-', '_' and '.'", clip(string(w)), MaxIDLen)
	}
	return nil
}

func checkPartitionID(p PartitionID) *RejectError {
	if !validID(string(p)) {
		return reject(CodeInvalidArgument, "invalid partition id %s: want 1 to %d bytes of letters, digits, '-', '_' and '.'", clip(string(p)), MaxIDLen)
	}
	return nil
}

// validLabelKey: 1 to 63 bytes of letters, digits, '-', '_', '.', '/'.
func validLabelKey(k string) bool {
	if k == "" || len(k) > MaxLabelKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			return false
		}
	}
	return true
}

// lookupPartition returns the partition or an unknown_partition rejection.
func (s *State) lookupPartition(id PartitionID) (*Partition, *RejectError) {
	if err := checkPartitionID(id); err != nil {
		return nil, err
	}
	p := s.partitions[id]
	if p == nil {
		return nil, reject(CodeUnknownPartition, "partition %s", id)
	}
	return p, nil
}

// lookupWorker returns the worker or an unknown_worker rejection.
func (s *State) lookupWorker(id WorkerID) (*Worker, *RejectError) {
	if err := checkWorkerID(id); err != nil {
		return nil, err
	}
	w := s.workers[id]
	if w == nil {
		return nil, reject(CodeUnknownWorker, "worker %s", id)
	}
	return w, nil
}

// eligibleTarget checks that w may receive a partition (invariant 6): it exists,
// is active and is not cordoned.
func (s *State) eligibleTarget(id WorkerID) *RejectError {
	w, err := s.lookupWorker(id)
	if err != nil {
		return err
	}
	if w.State != WorkerActive {
		return reject(CodeWorkerNotActive, "worker %s is %s", id, w.State)
	}
	if w.Cordoned {
		return reject(CodeWorkerCordoned, "worker %s is cordoned", id)
	}
	return nil
}

// checkEpoch rejects an epoch that is not the partition's current one.
func checkEpoch(p *Partition, e Epoch) *RejectError {
	if e != p.Epoch {
		return reject(CodeStaleEpoch, "partition %s is at epoch %d, not %d", p.ID, p.Epoch, e)
	}
	return nil
}

// checkOwner rejects a worker that is not the partition's owner.
func checkOwner(p *Partition, w WorkerID) *RejectError {
	if p.Owner != w {
		if p.Owner == "" {
			return reject(CodeNotOwner, "partition %s has no owner, not %s", p.ID, w)
		}
		return reject(CodeNotOwner, "partition %s is owned by %s, not %s", p.ID, p.Owner, w)
	}
	return nil
}
