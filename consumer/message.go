package consumer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batonhq/baton/fsm"
)

// Msg is one message handed to the Handler.
type Msg struct {
	// Partition owning the message's subject.
	Partition fsm.PartitionID
	// Epoch is the partition's fencing token for this owner: a downstream
	// system that remembers the highest epoch per partition can refuse a
	// deposed owner's late writes.
	Epoch fsm.Epoch
	// Seq is the message's stream sequence.
	Seq fsm.StreamSeq
	// Subject, Header, Data and Time are the message's.
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
	// Attempt counts in-place retries of this message, from 1.
	Attempt int
}

// Handler processes one message. It runs serially per partition (in stream
// order) and in parallel across partitions. A returned error retries the message
// in place with backoff; after the configured attempts the dead-letter callback
// sees it and the partition moves on. The context is cancelled when the worker
// loses the partition or a drain times out; a handler that writes elsewhere
// should honour it.
type Handler func(ctx context.Context, m *Msg) error

// DeadLetterFunc receives a message whose handler failed every attempt, with the
// last error. It runs before the message is terminated.
type DeadLetterFunc func(ctx context.Context, m *Msg, err error)
