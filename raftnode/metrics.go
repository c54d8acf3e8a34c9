package raftnode

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, all prefixed baton_raftnode_. hashicorp raft's own metrics go to
// go-metrics' process-wide sink, which cmd/baton bridges to Prometheus as
// baton_raft_* through NewMetricsSink.
const (
	metricApplySeconds   = "baton_raftnode_apply_seconds"
	metricApplyErrors    = "baton_raftnode_apply_errors_total"
	metricEntriesApplied = "baton_raftnode_entries_applied_total"
	metricEventsApplied  = "baton_raftnode_events_total"
	metricIsLeader       = "baton_raftnode_is_leader"
	metricEntriesRefused = "baton_raftnode_entries_refused_total"
	metricDivergence     = "baton_raftnode_state_divergence"
	metricLeaderChanges  = "baton_raftnode_leader_changes_total"
)

// Label names.
const (
	// labelNode is the node a metric is about: the node's own id (a constant
	// label) on every metric but the divergence gauge, where it is the node
	// found divergent or not.
	labelNode = "node"
	// labelObserver is the node whose corruption check set the divergence
	// gauge.
	labelObserver = "observer"
)

// metrics are one node's Prometheus collectors, labelled with its id so that
// several nodes can share a registry (tests run three in one process).
type metrics struct {
	reg          prometheus.Registerer
	collectors   []prometheus.Collector
	applySeconds prometheus.Observer
	applyErrors  prometheus.Counter
	entries      prometheus.Counter
	events       prometheus.Counter
	refused      prometheus.Counter
	leader       prometheus.Gauge
	leaderChange prometheus.Counter
	// divergence is 1 for each member this node's corruption check holds
	// divergent, 0 for the others it compared; divMu guards divergence's
	// label set against concurrent setDivergence calls (there is one check
	// goroutine, but nothing forbids a second).
	divergence *prometheus.GaugeVec
	divMu      sync.Mutex
	divNodes   map[string]bool
}

func newMetrics(reg prometheus.Registerer, node string) *metrics {
	labels := prometheus.Labels{labelNode: node}
	apply := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: metricApplySeconds, Help: "Time from proposing a command to its state machine result.",
		ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: metricApplyErrors, Help: "Proposals that failed at the raft level.", ConstLabels: labels})
	entries := prometheus.NewCounter(prometheus.CounterOpts{Name: metricEntriesApplied, Help: "Raft entries applied to the state machine.", ConstLabels: labels})
	events := prometheus.NewCounter(prometheus.CounterOpts{Name: metricEventsApplied, Help: "Audit events produced by applied commands.", ConstLabels: labels})
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: metricEntriesRefused,
		Help: "Committed entries refused because they did not decode or failed the command checks (EntryRejected events): a proposer skipped the checks.", ConstLabels: labels})
	leader := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricIsLeader, Help: "1 while this node is the raft leader.", ConstLabels: labels})
	changes := prometheus.NewCounter(prometheus.CounterOpts{Name: metricLeaderChanges,
		Help: "Leader changes this node has seen since it started: each new leader or term after the first leader it learned of.", ConstLabels: labels})
	div := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricDivergence,
		Help:        "1 while the observer's corruption check holds the node's state or audit log different from the other replicas' at an agreed index; 0 for the other nodes compared.",
		ConstLabels: prometheus.Labels{labelObserver: node}}, []string{labelNode})
	m := &metrics{reg: reg, applySeconds: apply, applyErrors: errs, entries: entries, events: events, refused: refused, leader: leader,
		leaderChange: changes, divergence: div, divNodes: map[string]bool{},
		collectors: []prometheus.Collector{apply, errs, entries, events, refused, leader, changes, div}}
	if reg != nil {
		for _, c := range m.collectors {
			_ = reg.Register(c) // a re-registration after restart in one process keeps the old one
		}
	}
	return m
}

func (m *metrics) observeApply(d time.Duration, err error) {
	m.applySeconds.Observe(d.Seconds())
	if err != nil {
		m.applyErrors.Inc()
	}
}

func (m *metrics) applied(entries, events, refused int) {
	m.entries.Add(float64(entries))
	m.events.Add(float64(events))
	m.refused.Add(float64(refused))
}

func (m *metrics) setLeader(on bool) {
	if on {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// setDivergence sets the divergence gauge of every node in flags (true:
// divergent) and removes the nodes no longer there.
func (m *metrics) setDivergence(flags map[string]bool) {
	m.divMu.Lock()
	defer m.divMu.Unlock()
	for node := range m.divNodes {
		if _, ok := flags[node]; !ok {
			m.divergence.DeleteLabelValues(node)
			delete(m.divNodes, node)
		}
	}
	for node, on := range flags {
		v := 0.0
		if on {
			v = 1
		}
		m.divergence.WithLabelValues(node).Set(v)
		m.divNodes[node] = true
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
