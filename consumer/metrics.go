package consumer

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (the seed's baseline, prefixed baton_consumer_).
const (
	metricUpdates      = "baton_consumer_updates_total"
	metricUpdateSecs   = "baton_consumer_update_seconds"
	metricSubjects     = "baton_consumer_subjects"
	metricSubjectChg   = "baton_consumer_subject_changes_total"
	metricRecreations  = "baton_consumer_recreations_total"
	metricResets       = "baton_consumer_resets_total"
	metricIterRestarts = "baton_consumer_iterator_restarts_total"
	metricHBMissed     = "baton_consumer_heartbeats_missed_total"
	metricGaps         = "baton_consumer_delivery_gaps_total"
	metricPhaseSecs    = "baton_consumer_handoff_phase_seconds"
	metricDuplicates   = "baton_consumer_duplicates_skipped_total"
	metricMessages     = "baton_consumer_messages_total"
	metricHandlerSecs  = "baton_consumer_handler_seconds"
	metricCatchupReads = "baton_consumer_catchup_reads_total"
	metricStaleReads   = "baton_consumer_catchup_stale_reads_total"
	metricCheckpoints  = "baton_consumer_checkpoints_total"
	metricFenced       = "baton_consumer_fenced_total"
	metricFencedNow    = "baton_consumer_fenced"
	metricPending      = "baton_consumer_pending_messages"
	metricCleanups     = "baton_consumer_cleanups_total"
	metricStuck        = "baton_consumer_stuck_total"
)

type metrics struct {
	reg              prometheus.Registerer
	collectors       []prometheus.Collector
	updates          *prometheus.CounterVec
	updateSeconds    prometheus.Histogram
	subjects         prometheus.Gauge
	changes          *prometheus.CounterVec
	recreations      prometheus.Counter
	resets           prometheus.Counter
	iteratorRestarts prometheus.Counter
	heartbeatsMissed prometheus.Counter
	deliveryGaps     prometheus.Counter
	phaseSeconds     *prometheus.HistogramVec
	duplicates       prometheus.Counter
	messages         *prometheus.CounterVec
	handlerSeconds   prometheus.Histogram
	catchupReads     prometheus.Counter
	staleReads       prometheus.Counter
	checkpoints      prometheus.Counter
	fenced           prometheus.Counter
	fencedNow        prometheus.Gauge
	pending          prometheus.Gauge
	cleanups         prometheus.Counter
	stuck            *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, worker string) *metrics {
	l := prometheus.Labels{"worker": worker}
	m := &metrics{
		reg:     reg,
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricUpdates, Help: "Consumer filter reconciliations by result (success, failure, noop).", ConstLabels: l}, []string{"result"}),
		updateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricUpdateSecs, Help: "Time to apply an assignment to the consumer.",
			ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		subjects:    prometheus.NewGauge(prometheus.GaugeOpts{Name: metricSubjects, Help: "Filter subjects on the consumer now.", ConstLabels: l}),
		changes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricSubjectChg, Help: "Filter subjects added and removed.", ConstLabels: l}, []string{"type"}),
		recreations: prometheus.NewCounter(prometheus.CounterOpts{Name: metricRecreations, Help: "Consumers recreated after they disappeared.", ConstLabels: l}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{Name: metricResets,
			Help: "WorkQueue consumers reset to the stream's start before subjects were added (their backlog kept above the ack floor).", ConstLabels: l}),
		iteratorRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: metricIterRestarts, Help: "Pull iterators restarted.", ConstLabels: l}),
		heartbeatsMissed: prometheus.NewCounter(prometheus.CounterOpts{Name: metricHBMissed, Help: "Pull idle heartbeats missed (client stalls).", ConstLabels: l}),
		deliveryGaps:     prometheus.NewCounter(prometheus.CounterOpts{Name: metricGaps, Help: "Gaps in the consumer's delivery sequence (deliveries lost on their way; partitions read again).", ConstLabels: l}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPhaseSecs, Help: "Worker-side handoff phases: catch_up (commit seen to caught up), drain (prepare seen to drained).",
			ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"phase"}),
		duplicates:     prometheus.NewCounter(prometheus.CounterOpts{Name: metricDuplicates, Help: "Deliveries of messages already dispatched, skipped.", ConstLabels: l}),
		messages:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricMessages, Help: "Messages by result (processed, retried, dead_lettered, cancelled, stray).", ConstLabels: l}, []string{"result"}),
		handlerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricHandlerSecs, Help: "Handler time per message, retries included.", ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		catchupReads:   prometheus.NewCounter(prometheus.CounterOpts{Name: metricCatchupReads, Help: "Messages read by catch-up gets.", ConstLabels: l}),
		staleReads: prometheus.NewCounter(prometheus.CounterOpts{Name: metricStaleReads,
			Help: "Catch-up direct gets that found nothing where the stream leader had a message (a lagging replica or mirror answered).", ConstLabels: l}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: metricCheckpoints, Help: "Partition checkpoints reported.", ConstLabels: l}),
		fenced:      prometheus.NewCounter(prometheus.CounterOpts{Name: metricFenced, Help: "Times the worker fenced itself.", ConstLabels: l}),
		fencedNow: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricFencedNow,
			Help: "1 while the worker is fenced (its lease ran out: it dispatches nothing until its session is renewed or it registers again).", ConstLabels: l}),
		// JetStream's num_pending of the last delivery: read from the
		// delivery's metadata, so it costs no request, and it is only as
		// fresh as the last pull (a worker whose handlers are all stuck
		// pulls nothing and shows the lag it had then).
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPending,
			Help: "Messages matching the worker's consumer filter that JetStream had not yet delivered to it, as of the last delivery (the worker's lag); 0 with no consumer.", ConstLabels: l}),
		cleanups: prometheus.NewCounter(prometheus.CounterOpts{Name: metricCleanups, Help: "Gone workers' consumers cleaned or deleted.", ConstLabels: l}),
		stuck: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricStuck,
			Help: "Partitions that stayed in a transitional phase longer than the stuck threshold, by phase; their step is retried.", ConstLabels: l}, []string{"phase"}),
	}
	m.collectors = []prometheus.Collector{m.updates, m.updateSeconds, m.subjects, m.changes, m.recreations, m.resets,
		m.iteratorRestarts, m.heartbeatsMissed, m.deliveryGaps, m.phaseSeconds, m.duplicates, m.messages, m.handlerSeconds,
		m.catchupReads, m.staleReads, m.checkpoints, m.fenced, m.fencedNow, m.pending, m.cleanups, m.stuck}
	if reg != nil {
		for _, c := range m.collectors {
			_ = reg.Register(c)
		}
	}
	return m
}

func (m *metrics) subjectChanges(have, want []string) {
	for _, s := range want {
		if !slices.Contains(have, s) {
			m.changes.WithLabelValues("add").Inc()
		}
	}
	for _, s := range have {
		if !slices.Contains(want, s) {
			m.changes.WithLabelValues("remove").Inc()
		}
	}
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
