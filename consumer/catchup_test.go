package consumer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/internal/natstest"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestCatchup_LaggingDirectResponder: direct gets are answered by any replica
// of a stream and by mirrors that opt in with MirrorDirect, and those may lag
// the stream leader. Here a mirror that copies none of the partitions' subjects
// (a mirror lagging forever) answers about half of the direct gets with "no
// message". A catch-up read must not take such an answer as the end of a
// partition's backlog: the new owner handles every message of the backlog the
// crashed owner left, exactly once, in order.
func TestCatchup_LaggingDirectResponder(t *testing.T) {
	for _, rt := range retentions {
		t.Run(rt.name, func(t *testing.T) {
			e := newEnv(t, rt.r, 4)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:         "ORDERS_LAGGING",
				Mirror:       &jetstream.StreamSource{Name: e.stream, FilterSubject: "orders.sync.>"},
				MirrorDirect: true,
				Storage:      jetstream.MemoryStorage,
			}); err != nil {
				t.Fatal(err)
			}
			// A mirror serves direct gets only once it has copied a message
			// (and, on an Interest stream, a message published before the
			// mirror's own consumer exists is dropped: publish until one lands).
			testcluster.Eventually(t, "the mirror answers direct gets", func() error {
				if _, err := e.js.Publish(ctx, "orders.sync.x", nil); err != nil {
					return err
				}
				m, err := e.nc.Request(directGetSubject(e.js, e.stream), []byte(`{"last_by_subj":"orders.sync.x"}`), time.Second)
				if err != nil {
					return err
				}
				if got := m.Header.Get(jetstream.StreamHeader); got != "ORDERS_LAGGING" {
					return fmt.Errorf("answered by %q", got)
				}
				return nil
			})

			// w1 takes every partition but handles nothing: its handler waits
			// for its context, so the whole backlog is left for the next owner.
			e.startWorkerWith("w1", e.client, func(ctx context.Context, m *Msg) error {
				<-ctx.Done()
				return ctx.Err()
			})
			e.waitSettled()
			const perPartition = 40
			for i := range perPartition {
				for _, p := range e.parts {
					e.publishOne(ctx, p, i)
				}
			}
			e.crash("w1")
			// Batches of 4 make at least 10 reads per partition that find
			// messages at the leader, so the chance that the mirror answers
			// none of them is 2^-40.
			w2 := e.startWorker("w2", optionFunc(func(o *options) error { o.catchupWindow = 4; return nil }))
			e.waitSettled()
			e.waitHandled()
			e.checkExactlyOnce()
			if rt.r == jetstream.WorkQueuePolicy {
				// w2's new consumer delivers all that is left of a WorkQueue,
				// so its catch-up may end at its first read.
				return
			}
			// The lagging mirror was asked, and the leader corrected it.
			if n := testutil.ToFloat64(w2.metrics.staleReads); n == 0 {
				t.Fatal("no catch-up read was answered by the lagging mirror")
			} else {
				t.Logf("%v direct reads corrected by the stream leader", n)
			}
		})
	}
}

// TestStoreReader_ReadsASubjectInOrder: with and without direct gets, the
// catch-up's reads return exactly one subject's messages from a sequence on,
// in order, with the message's own headers (none of those a direct get adds),
// and an empty answer past the end.
func TestStoreReader_ReadsASubjectInOrder(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			s := natstest.Start(t)
			_, js := natstest.Connect(t, s.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, AllowDirect: direct}); err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for i := range 700 {
				m := nats.NewMsg(fmt.Sprintf("s.%d", i%3))
				m.Header.Set("K", fmt.Sprint(i))
				m.Data = []byte(fmt.Sprint(i))
				ack, err := js.PublishMsg(ctx, m)
				if err != nil {
					t.Fatal(err)
				}
				if i%3 == 1 {
					want = append(want, ack.Sequence)
				}
			}
			r := newStreamReader(js, "S", direct, 100, nil)
			var got []uint64
			for seq := want[3]; ; {
				msgs, err := r.next(ctx, "s.1", seq)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) == 0 {
					break
				}
				if direct && len(msgs) != min(100, len(want)-3-len(got)) {
					t.Fatalf("a batched read returned %d messages", len(msgs))
				}
				for _, m := range msgs {
					i := fmt.Sprint(m.Sequence - 1)
					if m.Subject != "s.1" || string(m.Data) != i || len(m.Header) != 1 || m.Header.Get("K") != i || m.Time.IsZero() {
						t.Fatalf("message %d: subject %s data %q header %v time %v", m.Sequence, m.Subject, m.Data, m.Header, m.Time)
					}
					got = append(got, m.Sequence)
				}
				seq = msgs[len(msgs)-1].Sequence + 1
			}
			if !slices.Equal(got, want[3:]) {
				t.Fatalf("read %v\nwant %v", got, want[3:])
			}
		})
	}
}
