// Package consumer is the worker-side applier: the library a worker embeds to
// consume a JetStream stream's partitions under Baton's ownership. It keeps the
// worker's session with the claim store, follows its assignment, keeps one
// durable pull consumer's filter in line with what it owns, and hands each
// partition's messages to an immutable handler exactly once and in stream order
// across handoffs — on Limits, Interest and WorkQueue streams.
//
// The claim store's resume point is the truth: adding a subject to a consumer
// does not rewind it, so a newly owned partition's messages behind the
// consumer's cursor are read with next-by-subject gets (the catch-up read) and
// merged, in sequence order, with what the consumer delivers. DESIGN.md and
// docs/protocol.md state the guarantees and why they hold.
//
// # Usage sketch
//
//	coord, _ := client.New([]string{"http://127.0.0.1:7101"}, client.WithToken(tok))
//	a, err := consumer.New(ctx, "worker-1", coord, js, "ORDERS",
//		func(ctx context.Context, m *consumer.Msg) error {
//			return store(ctx, m.Partition, m.Epoch, m.Seq, m.Data) // idempotent by (partition, seq)
//		},
//		consumer.WithHandlerConcurrency(32),
//		consumer.WithDeadLetter(func(ctx context.Context, m *consumer.Msg, err error) { ... }),
//	)
//	if err != nil { ... }
//	a.Start()
//	...
//	a.Close(ctx) // hands every partition off, then deletes the consumer
//
// Health and Ready report the applier's state for probes; WithRegisterer exposes
// its metrics.
package consumer
