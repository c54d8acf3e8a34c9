package raftnode_test

import (
	"math"
	"strings"
	"testing"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/batonhq/baton/raftnode"
)

// TestMetricsSink_PrometheusNames: hashicorp raft's and raft-boltdb's
// metrics, as they emit them, come out of the sink with Prometheus names
// that promlint (promtool check metrics) accepts: snake_case, counters with
// _total, durations in seconds.
func TestMetricsSink_PrometheusNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	sink, err := raftnode.NewMetricsSink(reg)
	if err != nil {
		t.Fatal(err)
	}
	peer := []gometrics.Label{{Name: "peer_id", Value: "n-2.b"}}
	// A sample of every kind raft and raft-boltdb emit (keys as in their
	// sources), timers in milliseconds.
	sink.IncrCounter([]string{"raft", "apply"}, 1)
	sink.IncrCounter([]string{"raft", "transition", "heartbeat_timeout"}, 1)
	sink.IncrCounter([]string{"raft", "boltdb", "txstats", "cursorCount"}, 3)
	sink.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 2, peer)
	sink.AddSample([]string{"raft", "commitTime"}, 250) // MeasureSince: ms
	sink.AddSample([]string{"raft", "leader", "lastContact"}, 40)
	sink.AddSample([]string{"raft", "net", "getRPCType"}, 1)
	sink.AddSampleWithLabels([]string{"raft", "net", "rpcDecode"}, 2, []gometrics.Label{{Name: "rpcType", Value: "AppendEntries"}})
	sink.AddSampleWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, 3, peer)
	sink.AddSample([]string{"raft", "boltdb", "logBatchSize"}, 118)
	sink.AddSample([]string{"raft", "boltdb", "logsPerBatch"}, 2)
	sink.AddSample([]string{"raft", "boltdb", "writeCapacity"}, 500)
	sink.AddSample([]string{"raft", "thread", "main", "saturation"}, 0.5)
	sink.SetGauge([]string{"raft", "peers"}, 3)
	sink.SetGauge([]string{"raft", "boltdb", "freePageBytes"}, 4096)
	sink.SetGauge([]string{"raft", "fsm", "lastRestoreDuration"}, 1500)
	sink.EmitKey([]string{"raft", "x"}, 1)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "peer_id" && l.GetName() != "rpc_type" {
					t.Errorf("%s: label %s", mf.GetName(), l.GetName())
				}
			}
			switch {
			case m.Counter != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			case m.Summary != nil:
				got[mf.GetName()] = m.GetSummary().GetSampleSum()
			}
		}
	}
	want := map[string]float64{
		"baton_raft_apply_total":                            1,
		"baton_raft_transition_heartbeat_timeout_total":     1,
		"baton_raft_boltdb_txstats_cursor_count_total":      3,
		"baton_raft_replication_append_entries_logs_total":  2,
		"baton_raft_commit_time_seconds":                    0.25,
		"baton_raft_leader_last_contact_seconds":            0.04,
		"baton_raft_net_get_rpc_type_seconds":               0.001,
		"baton_raft_net_rpc_decode_seconds":                 0.002,
		"baton_raft_replication_append_entries_rpc_seconds": 0.003,
		"baton_raft_boltdb_log_batch_size_bytes":            118,
		"baton_raft_boltdb_logs_per_batch":                  2,
		"baton_raft_boltdb_write_capacity_logs_per_second":  500,
		"baton_raft_thread_main_saturation_ratio":           0.5,
		"baton_raft_peers":                                  3,
		"baton_raft_boltdb_free_page_bytes":                 4096,
		"baton_raft_fsm_last_restore_duration_seconds":      1.5,
	}
	for name, v := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("no %s; have %s", name, strings.Join(keys(got), " "))
			continue
		}
		if math.Abs(g-v) > 1e-6*math.Max(1, v) {
			t.Errorf("%s = %v, want %v", name, g, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d metrics, want %d: %s", len(got), len(want), strings.Join(keys(got), " "))
	}
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
