package fsm

import (
	"errors"
	"fmt"
)

// Code is a stable, snake_case identifier for why the state machine rejected a
// command. Codes cross process boundaries (raft results, the HTTP API, the Go
// client) and never change meaning between releases.
type Code string

// Rejection codes. Each is returned by Apply, as a whole-command rejection
// (Result.Err) or for one item of a batch command (Result.Items).
const (
	// CodeInvalidArgument: a field is missing, malformed or out of range.
	CodeInvalidArgument Code = "invalid_argument"
	// CodeLimitExceeded: the command would exceed a configured bound
	// (partitions, workers, items per command, labels).
	CodeLimitExceeded Code = "limit_exceeded"
	// CodeRequestIDReused: a request id already applied came back with a
	// different command body.
	CodeRequestIDReused Code = "request_id_reused"
	// CodeUnknownWorker: no such worker (or it was forgotten after leaving).
	CodeUnknownWorker Code = "unknown_worker"
	// CodeWorkerExists: a join names a worker that is active or leaving, without
	// asking to replace its incarnation.
	CodeWorkerExists Code = "worker_exists"
	// CodeWorkerNotActive: the worker is leaving or gone and may not receive or
	// report work in that role.
	CodeWorkerNotActive Code = "worker_not_active"
	// CodeWorkerCordoned: the worker is cordoned (drained for maintenance) and
	// receives no partitions.
	CodeWorkerCordoned Code = "worker_cordoned"
	// CodeStaleIncarnation: the request comes from an earlier life of the worker.
	CodeStaleIncarnation Code = "stale_incarnation"
	// CodeUnknownPartition: no such partition.
	CodeUnknownPartition Code = "unknown_partition"
	// CodePartitionExists: a declared partition exists with a different spec.
	CodePartitionExists Code = "partition_exists"
	// CodeSubjectOverlap: a partition's subjects overlap another partition's (or
	// each other): a message matching both would have two owners.
	CodeSubjectOverlap Code = "subject_overlap"
	// CodeUnknownHandoff: no such pending handoff for that partition.
	CodeUnknownHandoff Code = "unknown_handoff"
	// CodeHandoffInProgress: the partition already has a pending handoff.
	CodeHandoffInProgress Code = "handoff_in_progress"
	// CodeWrongPhase: the partition's phase does not allow the command.
	CodeWrongPhase Code = "wrong_phase"
	// CodeNotOwner: the worker named is not the partition's owner.
	CodeNotOwner Code = "not_owner"
	// CodeStaleEpoch: the epoch given is not the partition's current epoch.
	CodeStaleEpoch Code = "stale_epoch"
	// CodeSeqRegressed: a through_seq or checkpoint is below the partition's
	// checkpoint; checkpoints never go backwards.
	CodeSeqRegressed Code = "seq_regressed"
	// CodeSameWorker: a handoff from a worker to itself.
	CodeSameWorker Code = "same_worker"
	// CodeNotForceable: a forced commit without grounds: the owner is alive, the
	// drain deadline has not passed and no operator forced it.
	CodeNotForceable Code = "not_forceable"
	// CodeUnknownNode: no such claim-store node.
	CodeUnknownNode Code = "unknown_node"
	// CodeUnknownCommand: the command type is not known to this version.
	CodeUnknownCommand Code = "unknown_command"
)

// RejectError is a rejection by the state machine. Its Is method compares codes,
// so errors.Is(err, fsm.ErrStaleEpoch) holds for a RejectError decoded from the
// wire as well as for one returned in process.
type RejectError struct {
	Code Code
	Msg  string
}

func (e *RejectError) Error() string {
	if e.Msg == "" {
		return "fsm: " + string(e.Code)
	}
	return "fsm: " + string(e.Code) + ": " + e.Msg
}

// Is reports whether target is a *RejectError with the same code.
func (e *RejectError) Is(target error) bool {
	var t *RejectError
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

func reject(code Code, format string, args ...any) *RejectError {
	return &RejectError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Sentinels, one per code, for errors.Is.
var (
	// ErrInvalidArgument is returned when a field is missing, malformed or out of range.
	ErrInvalidArgument = &RejectError{Code: CodeInvalidArgument}
	// ErrLimitExceeded is returned when a command would exceed a configured bound.
	ErrLimitExceeded = &RejectError{Code: CodeLimitExceeded}
	// ErrRequestIDReused is returned when a request id comes back with another body.
	ErrRequestIDReused = &RejectError{Code: CodeRequestIDReused}
	// ErrUnknownWorker is returned when the worker does not exist.
	ErrUnknownWorker = &RejectError{Code: CodeUnknownWorker}
	// ErrWorkerExists is returned when a join would silently replace a live worker.
	ErrWorkerExists = &RejectError{Code: CodeWorkerExists}
	// ErrWorkerNotActive is returned when the worker is leaving or gone.
	ErrWorkerNotActive = &RejectError{Code: CodeWorkerNotActive}
	// ErrWorkerCordoned is returned when the target worker is cordoned.
	ErrWorkerCordoned = &RejectError{Code: CodeWorkerCordoned}
	// ErrStaleIncarnation is returned for requests from an earlier life of a worker.
	ErrStaleIncarnation = &RejectError{Code: CodeStaleIncarnation}
	// ErrUnknownPartition is returned when the partition does not exist.
	ErrUnknownPartition = &RejectError{Code: CodeUnknownPartition}
	// ErrPartitionExists is returned when a partition is re-declared differently.
	ErrPartitionExists = &RejectError{Code: CodePartitionExists}
	// ErrSubjectOverlap is returned when partition subjects would overlap.
	ErrSubjectOverlap = &RejectError{Code: CodeSubjectOverlap}
	// ErrUnknownHandoff is returned when the handoff is not pending for the partition.
	ErrUnknownHandoff = &RejectError{Code: CodeUnknownHandoff}
	// ErrHandoffInProgress is returned when a handoff is already pending.
	ErrHandoffInProgress = &RejectError{Code: CodeHandoffInProgress}
	// ErrWrongPhase is returned when the partition's phase forbids the command.
	ErrWrongPhase = &RejectError{Code: CodeWrongPhase}
	// ErrNotOwner is returned when the worker does not own the partition.
	ErrNotOwner = &RejectError{Code: CodeNotOwner}
	// ErrStaleEpoch is returned when the epoch is not the partition's current one.
	ErrStaleEpoch = &RejectError{Code: CodeStaleEpoch}
	// ErrSeqRegressed is returned when a sequence would move a checkpoint back.
	ErrSeqRegressed = &RejectError{Code: CodeSeqRegressed}
	// ErrSameWorker is returned for a handoff from a worker to itself.
	ErrSameWorker = &RejectError{Code: CodeSameWorker}
	// ErrNotForceable is returned for a forced commit without grounds.
	ErrNotForceable = &RejectError{Code: CodeNotForceable}
	// ErrUnknownNode is returned when the claim-store node is not registered.
	ErrUnknownNode = &RejectError{Code: CodeUnknownNode}
	// ErrUnknownCommand is returned when a command type is unknown to this version.
	ErrUnknownCommand = &RejectError{Code: CodeUnknownCommand}
)

// Codes lists every rejection code, for tables that must cover them all
// (the API's code → HTTP status map, for one).
func Codes() []Code {
	return []Code{
		CodeInvalidArgument, CodeLimitExceeded, CodeRequestIDReused, CodeUnknownWorker,
		CodeWorkerExists, CodeWorkerNotActive, CodeWorkerCordoned, CodeStaleIncarnation, CodeUnknownPartition,
		CodePartitionExists, CodeSubjectOverlap, CodeUnknownHandoff, CodeHandoffInProgress, CodeWrongPhase,
		CodeNotOwner, CodeStaleEpoch, CodeSeqRegressed, CodeSameWorker, CodeNotForceable,
		CodeUnknownNode, CodeUnknownCommand,
	}
}

// Decoding errors. They are returned by DecodeCommand, DecodeEvent and
// ReadSnapshot; none of those ever panics on hostile input.
var (
	// ErrCorrupt is returned when bytes are truncated or malformed.
	ErrCorrupt = errors.New("fsm: corrupt encoding")
	// ErrChecksum is returned by DecodeCommand when the bytes do not match the
	// checksum written with them: they were corrupted after encoding (on this
	// replica's disk or in its memory), not written that way by the leader.
	ErrChecksum = errors.New("fsm: checksum mismatch")
	// ErrUnsupportedVersion is returned for an encoding version this build does not know.
	ErrUnsupportedVersion = errors.New("fsm: unsupported encoding version")
)
