package consumer

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/consumer/internal/core"
)

// gapMsg is a consumer delivery with the given stream and consumer sequences.
type gapMsg struct {
	jetstream.Msg // only the methods below are called
	sseq, dseq    uint64
}

func (m gapMsg) Subject() string      { return "orders.p1.x" }
func (m gapMsg) Headers() nats.Header { return nil }
func (m gapMsg) Data() []byte         { return nil }
func (m gapMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.sseq, Consumer: m.dseq}}, nil
}

// fakeIter hands out msgs, then ends.
type fakeIter struct {
	jetstream.MessagesContext
	msgs []jetstream.Msg
}

func (it *fakeIter) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	if len(it.msgs) == 0 {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	m := it.msgs[0]
	it.msgs = it.msgs[1:]
	return m, nil
}
func (it *fakeIter) Stop() {}

// TestDrainIterator_MarksDeliveryGaps: a delivery whose consumer sequence
// skips one (a delivery lost on its way: the connection or a route broke) is
// marked as coming after a gap, across iterators of one consumer; the
// deliveries in order are not. Before the mark, R3 runs lost the lost message
// of a live partition: its redelivery came after a later message and was
// taken for a duplicate (consumer/internal/core/testdata/delivery_gap.txt).
func TestDrainIterator_MarksDeliveryGaps(t *testing.T) {
	a := &Applier{msgs: make(chan *core.Delivery, 10), metrics: newMetrics(prometheus.NewRegistry(), "w1"), log: slog.New(slog.DiscardHandler)}
	var dseq uint64
	drain := func(msgs ...jetstream.Msg) []bool {
		t.Helper()
		if _, err := a.drainIterator(context.Background(), &fakeIter{msgs: msgs}, 1, &dseq); err == nil {
			t.Fatal("the iterator's end was not reported")
		}
		var gaps []bool
		for range msgs {
			gaps = append(gaps, (<-a.msgs).Gap)
		}
		return gaps
	}
	if got := drain(gapMsg{sseq: 10, dseq: 1}, gapMsg{sseq: 11, dseq: 2}, gapMsg{sseq: 13, dseq: 4}, gapMsg{sseq: 12, dseq: 5}); !slices.Equal(got, []bool{false, false, true, false}) {
		t.Fatalf("gaps %v, want only the third", got)
	}
	// A new iterator of the same consumer: dseq 6 follows 5; 8 skips 7.
	if got := drain(gapMsg{sseq: 14, dseq: 6}, gapMsg{sseq: 16, dseq: 8}); !slices.Equal(got, []bool{false, true}) {
		t.Fatalf("gaps %v across iterators, want the second", got)
	}
	// A redelivery carries a new, later consumer sequence; an older one
	// (none is expected) is no gap.
	if got := drain(gapMsg{sseq: 15, dseq: 3}); !slices.Equal(got, []bool{false}) {
		t.Fatalf("gaps %v for an older delivery sequence", got)
	}
}
