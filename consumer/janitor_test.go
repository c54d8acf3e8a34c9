package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/internal/testcluster"
)

// TestJanitor_DeletesWhatGoneIncarnationsLeft: a consumer named for an
// incarnation the claim store does not know as live (a crashed worker whose
// partitions were all activated elsewhere) is deleted by a running worker's
// janitor, which on an Interest stream is what lets the messages it retained
// go; the live workers' consumers and a consumer Baton did not name are left
// alone.
func TestJanitor_DeletesWhatGoneIncarnationsLeft(t *testing.T) {
	e := newEnv(t, jetstream.InterestPolicy, 4)
	w1 := e.startWorker("w1", WithJanitorInterval(time.Second))
	w2 := e.startWorker("w2", WithJanitorInterval(time.Second))
	e.waitSettled()

	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	st, err := e.js.Stream(ctx, e.stream)
	if err != nil {
		t.Fatal(err)
	}
	left := consumerName("baton", "w9", 7)
	foreign := "someone_elses"
	for _, name := range []string{left, foreign} {
		if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: name, AckPolicy: jetstream.AckExplicitPolicy,
			FilterSubjects: []string{fmt.Sprintf("orders.%s.>", e.parts[0])},
		}); err != nil {
			t.Fatal(err)
		}
	}
	testcluster.Eventually(t, "the left-behind consumer deleted", func() error {
		_, err := st.Consumer(ctx, left)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists", left)
	})
	for _, name := range []string{w1.ConsumerName(), w2.ConsumerName(), foreign} {
		if _, err := st.Consumer(ctx, name); err != nil {
			t.Errorf("%s: %v (the janitor must leave it alone)", name, err)
		}
	}
}
