package raftnode

import (
	"fmt"
	"strings"
	"unicode"

	gometrics "github.com/hashicorp/go-metrics/compat"
	compatprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// rawSampleUnits names the unit of every go-metrics sample (AddSample) of
// hashicorp/raft v1.7.3 and raft-boltdb v2.3.1 that is not a duration; every
// other sample is a duration in milliseconds (MeasureSince), exported in
// seconds. Keys are dotted, without the service prefix.
var rawSampleUnits = map[string]string{
	"raft.boltdb.logBatchSize":    "bytes",
	"raft.boltdb.logSize":         "bytes",
	"raft.boltdb.logsPerBatch":    "",
	"raft.boltdb.writeCapacity":   "logs_per_second",
	"raft.fsm.applyBatchNum":      "",
	"raft.thread.main.saturation": "ratio",
	"raft.thread.fsm.saturation":  "ratio",
}

// msGauges are the go-metrics gauges that hold milliseconds.
var msGauges = map[string]bool{"raft.fsm.lastRestoreDuration": true}

// NewMetricsSink returns the go-metrics sink through which hashicorp raft's
// and raft-boltdb's own metrics (commit time, leader contact, snapshots, bolt
// transactions) reach reg as baton_raft_*, named by Prometheus conventions,
// which go-metrics' Prometheus sink does not follow by itself: snake_case
// names and label names, counters ending in _total, durations in seconds with a _seconds
// suffix (go-metrics measures milliseconds), other samples named by their
// unit. Install it process-wide with gometrics.NewGlobal and a
// configuration without a service name, hostname or runtime metrics.
//
// go-metrics has one sink per process, so a process running several nodes
// (tests) reports their raft metrics together; raft's per-peer metrics carry
// a peer_id label (Config's nodes run with raft's NoLegacyTelemetry, which
// drops the copies that put the peer id in the name).
func NewMetricsSink(reg prometheus.Registerer) (gometrics.MetricSink, error) {
	sink, err := compatprom.NewPrometheusSinkFrom(compatprom.PrometheusOpts{Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("raftnode: raft metrics sink: %w", err)
	}
	return promNames{sink}, nil
}

// promNames renames keys and scales values on their way to the sink.
type promNames struct{ sink gometrics.MetricSink }

var _ gometrics.MetricSink = promNames{}

func (s promNames) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }
func (s promNames) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	name, scale := gaugeName(key)
	s.sink.SetGaugeWithLabels(name, val*scale, promLabels(labels))
}
func (s promNames) EmitKey([]string, float32) {} // the Prometheus sink drops them too
func (s promNames) IncrCounter(key []string, val float32) {
	s.IncrCounterWithLabels(key, val, nil)
}
func (s promNames) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	s.sink.IncrCounterWithLabels(counterName(key), val, promLabels(labels))
}
func (s promNames) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }
func (s promNames) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	name, scale := sampleName(key)
	s.sink.AddSampleWithLabels(name, val*scale, promLabels(labels))
}

// counterName is baton_<key in snake_case>_total.
func counterName(key []string) []string { return append(promKey(key), "total") }

// gaugeName is baton_<key in snake_case>, with _seconds for a gauge of
// milliseconds, and the factor its values take.
func gaugeName(key []string) ([]string, float32) {
	if msGauges[strings.Join(key, ".")] {
		return append(promKey(key), "seconds"), 1e-3
	}
	return promKey(key), 1
}

// sampleName is baton_<key in snake_case>_<unit>, and the factor its values
// take.
func sampleName(key []string) ([]string, float32) {
	unit, ok := rawSampleUnits[strings.Join(key, ".")]
	if !ok {
		return append(promKey(key), "seconds"), 1e-3
	}
	if unit == "" {
		return promKey(key), 1
	}
	return append(promKey(key), unit), 1
}

// promLabels returns labels with snake_case names (raft's rpcType:
// rpc_type).
func promLabels(labels []gometrics.Label) []gometrics.Label {
	if len(labels) == 0 {
		return labels
	}
	out := make([]gometrics.Label, len(labels))
	for i, l := range labels {
		out[i] = gometrics.Label{Name: snake(l.Name), Value: l.Value}
	}
	return out
}

// promKey prefixes baton and turns every part into snake_case
// (appendEntries: append_entries, getRPCType: get_rpc_type).
func promKey(key []string) []string {
	out := make([]string, 0, len(key)+2)
	out = append(out, "baton")
	for _, k := range key {
		out = append(out, snake(k))
	}
	return out
}

func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]))
			acronymEnd := i > 0 && unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || acronymEnd {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
