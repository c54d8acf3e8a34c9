package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/internal/natstest"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

const (
	dashboardFile  = "grafana/baton.json"
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
)

// recorder is a Registerer that remembers the name of every metric
// described by the collectors registered through it (vectors included,
// before they have a child), and registers them with the registry below.
type recorder struct {
	prometheus.Registerer
	mu    sync.Mutex // guards names: nodes register from their own goroutines
	names map[string]bool
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			r.mu.Lock()
			r.names[m[1]] = true
			r.mu.Unlock()
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// batonMetrics returns the names of the metrics Baton registers: those of a
// running claim-store node (raftnode, the controller, the handoff metrics)
// and of a worker's applier, gathered from their real registrations.
// hashicorp raft's own baton_raft_* metrics are not among them: they appear
// only as raft emits them, and the dashboard and rules use Baton's own.
func batonMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	ctrl := controller.DefaultConfig()
	ctrl.Registerer = rec
	c := testcluster.NewFull(t, 1, server.Config{}, ctrl, func(cfg *raftnode.Config) { cfg.Registerer = rec })
	hm := controller.NewHandoffMetrics(rec)
	t.Cleanup(hm.Unregister)

	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns.URL())
	natstest.CreateStream(t, js, "ORDERS", jetstream.LimitsPolicy, "orders.>")
	cl, err := client.New(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// New registers the applier's metrics and starts nothing.
	if _, err := consumer.New(ctx, "w1", cl, js, "ORDERS", func(context.Context, *consumer.Msg) error { return nil },
		consumer.WithRegisterer(rec)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, prefix := range []string{"baton_raftnode_", "baton_controller_", "baton_handoff", "baton_consumer_"} {
		if !slices.ContainsFunc(keys(rec.names), func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Fatalf("no %s* metric registered: %v", prefix, keys(rec.names))
		}
	}
	t.Logf("%d metrics registered", len(rec.names))
	return maps(rec.names)
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// exists says whether a series name is one a registered metric exposes: the
// metric's own name, or a histogram's or summary's _bucket, _sum or _count.
func exists(names map[string]bool, series string) bool {
	if names[series] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func readDashboard(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Fatalf("%s: no uid or title", dashboardFile)
	}
	var out []query
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the dashboard's datasource variable", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q, query %s: empty", p.Title, tg.RefID)
				}
				out = append(out, query{fmt.Sprintf("panel %q, query %s", p.Title, tg.RefID), tg.Expr})
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]\w*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
		}
		out = append(out, query{"variable " + v.Name, m[1]})
	}
	return out
}

// readAlerts returns the rules' expressions: the value of every expr key,
// inline or a block scalar. promtool checks the file properly; this only
// finds the expressions, and fails if it misses one.
func readAlerts(t *testing.T) []query {
	t.Helper()
	f, err := os.Open(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []query
	alerts, alert := 0, ""
	var block *strings.Builder
	blockIndent := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if block != nil {
			if trimmed == "" || indent > blockIndent {
				block.WriteString(trimmed + " ")
				continue
			}
			out = append(out, query{"alert " + alert, block.String()})
			block = nil
		}
		switch {
		case strings.HasPrefix(trimmed, "- alert:"):
			alerts++
			alert = strings.TrimSpace(strings.TrimPrefix(trimmed, "- alert:"))
		case strings.HasPrefix(trimmed, "expr:"):
			v := strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:"))
			if v == "|" || v == ">" || v == "|-" || v == ">-" {
				block, blockIndent = &strings.Builder{}, indent
				continue
			}
			out = append(out, query{"alert " + alert, strings.Trim(v, `'`)})
		}
	}
	if block != nil {
		out = append(out, query{"alert " + alert, block.String()})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if alerts == 0 || len(out) != alerts {
		t.Fatalf("%s: %d alerts, %d expressions found", alertsFile, alerts, len(out))
	}
	return out
}

// TestDashboardAndAlerts_NameRegisteredMetrics: every metric a dashboard
// panel, a dashboard variable or an alert selects is one Baton registers, so
// renaming a metric fails here rather than leaving a blank panel or an alert
// that can never fire.
func TestDashboardAndAlerts_NameRegisteredMetrics(t *testing.T) {
	names := batonMetrics(t)
	qs := append(readDashboard(t), readAlerts(t)...)
	used := 0
	for _, q := range qs {
		ms := metricNames(q.expr)
		if len(ms) == 0 {
			t.Errorf("%s: selects no metric: %s", q.where, q.expr)
		}
		for _, m := range ms {
			used++
			if !exists(names, m) {
				t.Errorf("%s: %s is not a metric Baton registers (expr %s)", q.where, m, q.expr)
			}
		}
	}
	t.Logf("%d queries, %d metric references checked against %d registered metrics", len(qs), used, len(names))
}

// promtool returns promtool's path. Without it the test skips, except in CI
// (CI=true), where .ci/run installs it and its absence is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found in CI (.ci/run installs Debian's prometheus package): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus): %v", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestAlerts_Promtool: the rules pass promtool check rules, and their unit
// tests (no leader, divergence, an inactive partition, forced commits,
// repeated fencing) pass promtool test rules.
func TestAlerts_Promtool(t *testing.T) {
	runPromtool(t, "check", "rules", alertsFile)
	runPromtool(t, "test", "rules", alertTestsFile)
}

// TestDashboard_QueriesParse: every dashboard query is valid PromQL once
// Grafana's variables are given values: promtool checks them as recording
// rules.
func TestDashboard_QueriesParse(t *testing.T) {
	qs := readDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$worker", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range qs {
		expr, err := json.Marshal(vars.Replace(q.expr)) // a JSON string is a YAML string
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", path)
}
