package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/controller/placement"
	"github.com/batonhq/baton/fsm"
)

// Metric names.
const (
	metricLeader      = "baton_controller_is_leader"
	metricRounds      = "baton_controller_rounds_total"
	metricProposed    = "baton_controller_items_proposed_total"
	metricExpiries    = "baton_controller_session_expiries_total"
	metricUnassigned  = "baton_controller_partitions_unassigned"
	metricImbalance   = "baton_controller_imbalance"
	metricWorkers     = "baton_controller_eligible_workers"
	metricInactive    = "baton_controller_oldest_inactive_partition_seconds"
	metricHandoffs    = "baton_handoffs_total"
	metricPhase       = "baton_handoff_phase_seconds"
	metricPendingHand = "baton_handoffs_pending"
)

// metrics are the controller's collectors. The gauges about the last round
// (unassigned, imbalance, workers, inactive) are the leader's view: a node
// that does not lead sets them to 0, so that the maximum over the nodes is
// the leader's value.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
	leader     prometheus.Gauge
	rounds     prometheus.Counter
	items      *prometheus.CounterVec
	expiries   prometheus.Counter
	unassigned prometheus.Gauge
	imbalance  prometheus.Gauge
	workers    prometheus.Gauge
	inactive   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg:        reg,
		leader:     prometheus.NewGauge(prometheus.GaugeOpts{Name: metricLeader, Help: "1 while this node's controller leads."}),
		rounds:     prometheus.NewCounter(prometheus.CounterOpts{Name: metricRounds, Help: "Planning rounds run."}),
		items:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricProposed, Help: "Items the controller proposed, by command and result."}, []string{"command", "result"}),
		expiries:   prometheus.NewCounter(prometheus.CounterOpts{Name: metricExpiries, Help: "Worker sessions expired."}),
		unassigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricUnassigned, Help: "Partitions without an owner at the last round."}),
		imbalance:  prometheus.NewGauge(prometheus.GaugeOpts{Name: metricImbalance, Help: "Largest |load - fair share| / weight over eligible workers at the last round."}),
		workers:    prometheus.NewGauge(prometheus.GaugeOpts{Name: metricWorkers, Help: "Eligible workers at the last round."}),
		inactive: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricInactive,
			Help: "How long the partition longest out of the active phase (unassigned, orphaned, in a handoff, activating) has been out of it, at the last round; 0 when all are active or this node does not lead."}),
	}
	m.collectors = []prometheus.Collector{m.leader, m.rounds, m.items, m.expiries, m.unassigned, m.imbalance, m.workers, m.inactive}
	if reg != nil {
		for _, c := range m.collectors {
			_ = reg.Register(c)
		}
	}
	return m
}

func (m *metrics) proposed(t fsm.CommandType, n, rejected int) {
	m.items.WithLabelValues(t.String(), "accepted").Add(float64(n - rejected))
	if rejected > 0 {
		m.items.WithLabelValues(t.String(), "rejected").Add(float64(rejected))
	}
}

// notLeading zeroes the leader's gauges on a node that stopped leading.
func (m *metrics) notLeading() {
	m.leader.Set(0)
	m.unassigned.Set(0)
	m.imbalance.Set(0)
	m.workers.Set(0)
	m.inactive.Set(0)
}

func (m *metrics) observePlan(p placement.Plan, v view, oldestInactive time.Duration) {
	m.inactive.Set(oldestInactive.Seconds())
	un := 0
	for _, part := range v.partitions {
		if part.Phase == fsm.PhaseUnassigned || part.Phase == fsm.PhaseOrphaned {
			un++
		}
	}
	m.unassigned.Set(float64(un))
	m.imbalance.Set(p.Imbalance)
	n := 0
	for _, w := range p.Workers {
		if w.Eligible {
			n++
		}
	}
	m.workers.Set(float64(n))
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// HandoffMetrics turns the audit events a node applies into handoff metrics:
// handoffs by result and reason, and how long each phase took (prepare→drain,
// drain→commit, commit→activate) in leader time. Feed it with
// raftnode.Config.OnEvents; it runs on every node, leader or not.
type HandoffMetrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
	results    *prometheus.CounterVec
	phases     *prometheus.HistogramVec
	pending    prometheus.Gauge
	// open handoffs and activations awaited: touched only by Observe, which
	// raft calls from one goroutine.
	prepared  map[fsm.HandoffID]handoffTimes
	activated map[fsm.PartitionID]int64 // partition -> commit time, until Activated
}

type handoffTimes struct {
	reason    string
	prepared  int64
	drained   int64
	partition fsm.PartitionID
}

// NewHandoffMetrics registers the handoff metrics with reg (nil: none).
func NewHandoffMetrics(reg prometheus.Registerer) *HandoffMetrics {
	h := &HandoffMetrics{
		reg: reg,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricHandoffs,
			Help: "Handoffs ended, by result (committed, forced, aborted, released) and reason."}, []string{"result", "reason"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metricPhase,
			Help:    "Duration of handoff phases in leader time: prepare_drain, drain_commit, commit_activate.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"phase"}),
		pending:   prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPendingHand, Help: "Handoffs prepared and not yet ended."}),
		prepared:  make(map[fsm.HandoffID]handoffTimes),
		activated: make(map[fsm.PartitionID]int64),
	}
	h.collectors = []prometheus.Collector{h.results, h.phases, h.pending}
	if reg != nil {
		for _, c := range h.collectors {
			_ = reg.Register(c)
		}
	}
	return h
}

// Observe records a batch of applied events. It must be called from one
// goroutine (raft's FSM goroutine does).
func (h *HandoffMetrics) Observe(events []fsm.Event) {
	for _, ev := range events {
		switch b := ev.Body.(type) {
		case fsm.Prepared:
			h.prepared[b.Handoff] = handoffTimes{reason: b.Reason, prepared: ev.Time, partition: b.Partition}
		case fsm.Drained:
			if t, ok := h.prepared[b.Handoff]; ok {
				h.phases.WithLabelValues("prepare_drain").Observe(seconds(ev.Time - t.prepared))
				t.drained = ev.Time
				h.prepared[b.Handoff] = t
			}
		case fsm.Committed:
			t, ok := h.prepared[b.Handoff]
			delete(h.prepared, b.Handoff)
			result, reason := "committed", t.reason
			if b.Forced {
				result, reason = "forced", b.ForceReason.String()
			}
			if ok && t.drained != 0 {
				h.phases.WithLabelValues("drain_commit").Observe(seconds(ev.Time - t.drained))
			}
			h.results.WithLabelValues(result, reason).Inc()
			h.activated[b.Partition] = ev.Time
		case fsm.Activated:
			if t, ok := h.activated[b.Partition]; ok {
				h.phases.WithLabelValues("commit_activate").Observe(seconds(ev.Time - t))
				delete(h.activated, b.Partition)
			}
		case fsm.Aborted:
			t := h.prepared[b.Handoff]
			delete(h.prepared, b.Handoff)
			h.results.WithLabelValues("aborted", b.Reason).Inc()
			_ = t
		case fsm.Released:
			// A release handoff ends at its drain.
			for id, t := range h.prepared {
				if t.partition == b.Partition {
					delete(h.prepared, id)
					h.results.WithLabelValues("released", t.reason).Inc()
				}
			}
		case fsm.PartitionRemoved:
			delete(h.activated, b.Partition)
		}
	}
	h.pending.Set(float64(len(h.prepared)))
}

// Unregister removes the metrics from their registry.
func (h *HandoffMetrics) Unregister() {
	if h.reg == nil {
		return
	}
	for _, c := range h.collectors {
		h.reg.Unregister(c)
	}
}

func seconds(ns int64) float64 {
	if ns < 0 {
		return 0
	}
	return float64(ns) / 1e9
}
