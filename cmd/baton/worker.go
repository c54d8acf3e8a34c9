package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
)

const workerHelp = `
Runs one worker: it registers with the claim store, follows its assignment, and
consumes the partitions it owns from the JetStream stream through one durable
pull consumer, handing each message to the handler exactly once and in order
per partition across handoffs.

Handlers: print (one line per message on stdout), count (a summary every
--report-interval), sleep=DURATION (simulated work, then count).

--record FILE appends one line per handled message, written through at once
(tests use it to check exactly-once delivery and fencing):
  partition seq epoch start end cancelled
start and end are the handler's entry and return times (Unix nanoseconds, the
worker's wall clock); cancelled is 1 if the handler's context was already
cancelled when it returned, else 0. A handling that fails (its context
cancelled during a sleep) is not recorded.

SIGINT or SIGTERM stops the worker gracefully: it hands every partition off
(within --close-timeout) and deletes its consumer. SIGKILL is a crash: its
partitions fail over from their last checkpoints once its session expires.

Example:
  baton worker --worker-id w1 --nats nats://127.0.0.1:4222 --stream ORDERS \
    --create-stream 'orders.>' --handler print`

type workerFlags struct {
	id, natsURL, stream, createStream   string
	handler, record, healthAddr, tpl    string
	concurrency, batch, maxAckPending   int
	weight                              uint32
	checkpoint, drainTimeout, ackWait   time.Duration
	pullExpiry, closeTimeout, reportInt time.Duration
	janitor                             time.Duration
	logs                                logFlags
	client                              clientFlags
}

func runWorker(args []string) error {
	f := newFlags("worker", "baton worker --worker-id ID --nats URL --stream NAME [--addr URLS] [flags]", workerHelp, 0, 0)
	var w workerFlags
	w.client.registerConn(f)
	f.StringVar(&w.id, "worker-id", "", "stable worker id (required; letters, digits, . _ -)")
	f.StringVar(&w.natsURL, "nats", nats.DefaultURL, "NATS server URL(s), comma-separated")
	f.StringVar(&w.stream, "stream", "", "JetStream stream to consume (required)")
	f.StringVar(&w.createStream, "create-stream", "", "create the stream with these comma-separated `SUBJECTS` if it does not exist (limits retention)")
	f.StringVar(&w.handler, "handler", "count", "what to do with a message: print, count, or sleep=DURATION")
	f.StringVar(&w.record, "record", "", "append \"partition seq epoch start end cancelled\" per handled message to this `FILE`")
	f.StringVar(&w.healthAddr, "health-addr", "", "serve /healthz, /readyz and /metrics on this host:port (port 0 picks one)")
	f.StringVar(&w.tpl, "subject-template", "", "refuse partitions whose subjects do not follow this template, e.g. 'orders.{{.Partition}}.>'")
	// Flags whose default is the library's are left out of the options when
	// unset; given explicitly they must lie in the library's range (its
	// minimums, from the consumer.WithX docs), so 0 never silently means the
	// default.
	f.intVar(&w.concurrency, "concurrency", 16, 1, math.MaxInt, "handlers running at once, across partitions (one at a time per partition)")
	f.intVar(&w.batch, "batch", 0, 10, math.MaxInt, "messages per pull request (unset: the library default, 100)")
	f.intVar(&w.maxAckPending, "max-ack-pending", 0, 1, math.MaxInt, "messages delivered and not yet acked (unset: the library default, 1000)")
	f.uint32Var(&w.weight, "weight", 1, 1, maxWeight(), weightUsage("placement weight: relative share of partitions"))
	f.durationVar(&w.checkpoint, "checkpoint-interval", 0, 10*time.Millisecond, noMax, "how often progress is reported; after a crash, messages since the last\ncheckpoint are processed again (unset: the library default, 1s)")
	f.durationVar(&w.drainTimeout, "drain-timeout", 0, 100*time.Millisecond, noMax, "how long a drain waits for in-flight handlers before cancelling them (unset: the library default, 10s)")
	f.durationVar(&w.ackWait, "ack-wait", 0, time.Second, noMax, "the consumer's AckWait (unset: the library default, 30s)")
	f.durationVar(&w.pullExpiry, "pull-expiry", 0, time.Second, noMax, "how long one pull request waits (unset: the library default, 5s)")
	f.durationVar(&w.janitor, "janitor-interval", 0, time.Second, noMax, "how often the worker looks for consumers that crashed workers left behind and deletes\nwhat no partition needs (unset: the library default, 2m; first look 10s after start)")
	f.positiveDurationVar(&w.closeTimeout, "close-timeout", 30*time.Second, "bound of the graceful hand-off on SIGINT/SIGTERM")
	f.durationVar(&w.reportInt, "report-interval", 5*time.Second, 0, noMax, "how often the count and sleep handlers print a summary (0: only at exit)")
	w.logs.register(f, "info")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if w.id == "" || w.stream == "" {
		return usageErrorf("worker needs --worker-id and --stream")
	}
	if _, err := workerArg("--worker-id", w.id); err != nil {
		return err
	}
	log, err := w.logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	return w.run(log)
}

func (w *workerFlags) run(log *slog.Logger) error {
	h, err := newWorkerHandler(w.handler, w.record)
	if err != nil {
		return err
	}
	defer h.close()
	nc, err := nats.Connect(w.natsURL, nats.Name("baton worker "+w.id), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", w.natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w.createStream != "" {
		if err := ensureStream(ctx, js, w.stream, splitList(w.createStream)); err != nil {
			return err
		}
	}
	cl, err := w.client.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := []consumer.Option{
		consumer.WithLogger(log), consumer.WithRegisterer(reg),
		consumer.WithHandlerConcurrency(w.concurrency), consumer.WithWeight(w.weight),
	}
	if w.tpl != "" {
		opts = append(opts, consumer.WithSubjectTemplate(w.tpl))
	}
	if w.batch > 0 {
		opts = append(opts, consumer.WithBatch(w.batch))
	}
	if w.maxAckPending > 0 {
		opts = append(opts, consumer.WithMaxAckPending(w.maxAckPending))
	}
	for _, d := range []struct {
		v   time.Duration
		opt func(time.Duration) consumer.Option
	}{
		{w.checkpoint, consumer.WithCheckpointInterval}, {w.drainTimeout, consumer.WithDrainTimeout},
		{w.ackWait, consumer.WithAckWait}, {w.pullExpiry, consumer.WithPullExpiry},
		{w.janitor, consumer.WithJanitorInterval},
	} {
		if d.v > 0 {
			opts = append(opts, d.opt(d.v))
		}
	}
	a, err := consumer.New(ctx, fsm.WorkerID(w.id), cl, js, w.stream, h.handle, opts...)
	if errors.Is(err, consumer.ErrInvalidOption) {
		// A relation between flags (--batch below --max-ack-pending, ...).
		return usageErrorf("worker: %v", err)
	}
	if err != nil {
		return err
	}
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var health *http.Server
	if w.healthAddr != "" {
		if health, err = serveHealth(log, w.healthAddr, a, reg); err != nil {
			return err
		}
		defer health.Close()
	}
	if err := a.Start(); err != nil {
		return err
	}
	log.Info("worker started", "worker", w.id, "stream", w.stream, "nats", w.natsURL, "addr", w.client.addr, "handler", w.handler)

	var tick <-chan time.Time
	if w.reportInt > 0 && h.kind != "print" {
		t := time.NewTicker(w.reportInt)
		defer t.Stop()
		tick = t.C
	}
	for done := false; !done; {
		select {
		case <-sigCtx.Done():
			done = true
		case <-tick:
			h.report(os.Stdout)
		}
	}
	stop() // a second signal kills the process at once
	log.Info("stopping: handing every partition off", "timeout", w.closeTimeout)
	cctx, ccancel := context.WithTimeout(context.Background(), w.closeTimeout)
	defer ccancel()
	closeErr := a.Close(cctx)
	if h.kind != "print" {
		h.report(os.Stdout)
	}
	if closeErr != nil {
		return closeErr
	}
	log.Info("stopped", "worker", w.id)
	return nil
}

// ensureStream creates stream with subjects unless it exists.
func ensureStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string) error {
	if _, err := js.Stream(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: subjects, Storage: jetstream.FileStorage, AllowDirect: true,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}

// serveHealth serves the applier's health, readiness and metrics.
func serveHealth(log *slog.Logger, addr string, a *consumer.Applier, reg *prometheus.Registry) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--health-addr: %w", err)
	}
	probe := func(check func() error) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			if err := check(); err != nil {
				http.Error(rw, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(rw, "ok")
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", probe(a.Health))
	mux.Handle("GET /readyz", probe(a.Ready))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("health listening", "health_addr", ln.Addr().String())
	return srv, nil
}

// workerHandler is the worker's message handler: print, count or sleep, and
// record each message if asked.
type workerHandler struct {
	kind  string
	sleep time.Duration

	total     atomic.Int64
	start     time.Time
	lastTotal int64
	lastAt    time.Time

	// mu serializes writes to stdout and to the record file, which handlers
	// of different partitions make concurrently.
	mu  sync.Mutex
	rec *os.File
}

func newWorkerHandler(spec, record string) (*workerHandler, error) {
	h := &workerHandler{start: time.Now()}
	h.lastAt = h.start
	switch {
	case spec == "print" || spec == "count":
		h.kind = spec
	case strings.HasPrefix(spec, "sleep="):
		d, err := time.ParseDuration(strings.TrimPrefix(spec, "sleep="))
		if err != nil || d < 0 {
			return nil, usageErrorf("--handler %q: sleep needs a duration, e.g. sleep=5ms", spec)
		}
		h.kind, h.sleep = "sleep", d
	default:
		return nil, usageErrorf("--handler %q: want print, count or sleep=DURATION", spec)
	}
	if record != "" {
		f, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--record: %w", err)
		}
		h.rec = f
	}
	return h, nil
}

func (h *workerHandler) handle(ctx context.Context, m *consumer.Msg) error {
	start := time.Now()
	if h.sleep > 0 {
		t := time.NewTimer(h.sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if h.kind == "print" || h.rec != nil {
		h.mu.Lock()
		if h.kind == "print" {
			fmt.Printf("%s seq=%d epoch=%d subject=%s data=%q\n", termSafe(string(m.Partition)), m.Seq, m.Epoch, termSafe(m.Subject), m.Data)
		}
		if h.rec != nil {
			// One write per line: it reaches the file before the message
			// is acknowledged, so a crash never hides a handled message.
			if _, err := h.rec.WriteString(recordLine(m, start, time.Now(), ctx.Err() != nil)); err != nil {
				h.mu.Unlock()
				return fmt.Errorf("record: %w", err)
			}
		}
		h.mu.Unlock()
	}
	h.total.Add(1)
	return nil
}

// recordLine is one --record line (delivery.Handling.Line: the format lives
// beside its reader).
func recordLine(m *consumer.Msg, start, end time.Time, cancelled bool) string {
	return delivery.Handling{
		Record: delivery.Record{Partition: m.Partition, Seq: m.Seq, Epoch: m.Epoch},
		Start:  start, End: end, Cancelled: cancelled,
	}.Line()
}

func (h *workerHandler) report(w *os.File) {
	now := time.Now()
	total := h.total.Load()
	rate := float64(total-h.lastTotal) / now.Sub(h.lastAt).Seconds()
	h.lastTotal, h.lastAt = total, now
	fmt.Fprintf(w, "handled %d messages (%.0f/s)\n", total, rate)
}

func (h *workerHandler) close() {
	if h.rec != nil {
		h.rec.Close()
	}
}
