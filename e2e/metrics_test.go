package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/natstest"
)

// TestE2E_MetricsPassPromtool: what real processes export on /metrics — three
// `baton server` nodes that elected a leader, replicated, compared state
// digests and handed partitions over, and two `baton worker` processes that
// consumed messages — passes `promtool check metrics` for every metric
// Baton names (baton_*, hashicorp raft's bridged baton_raft_* included).
// Problems promtool finds in other metrics (the Go runtime's) are logged.
func TestE2E_MetricsPassPromtool(t *testing.T) {
	needBinary(t)
	promtool := promtoolPath(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns.URL())
	natstest.CreateStream(t, js, "ORDERS", jetstream.LimitsPolicy, "orders.>")
	servers := startServers(t, 3, "--digest-interval", "200ms")
	addr := strings.Join(urls(servers), ",")
	c := newClient(t, urls(servers))
	parts := declarePartitions(t, c, addr, 4)

	health := map[fsm.WorkerID]string{}
	for _, id := range []fsm.WorkerID{"w1", "w2"} {
		p := start(t, string(id), "worker", "--worker-id", string(id), "--nats", ns.URL(), "--stream", "ORDERS",
			"--addr", addr, "--handler", "count", "--report-interval", "0", "--health-addr", "127.0.0.1:0", "--log-format", "json")
		health[id] = "http://" + str(p.waitLog("health listening")["health_addr"])
		settled(t, c, slices.Sorted(maps.Keys(health))...) // w2's arrival moves partitions: handoff metrics
	}
	pub := startPublisher(t, js, parts, rand.New(rand.NewPCG(uint64(seed), 0)))
	pub.waitFor(t, 40)
	published := pub.count()
	pub.halt()

	targets := map[string]string{}
	for _, s := range servers {
		targets["server "+s.id] = s.url + "/metrics"
	}
	for id, h := range health {
		targets["worker "+string(id)] = h + "/metrics"
	}
	eventually(t, "the workers count every message handled", func() error {
		n := 0.0
		for _, h := range health {
			body, err := scrape(h + "/metrics")
			if err != nil {
				return err
			}
			for line := range strings.Lines(string(body)) {
				if rest, ok := strings.CutPrefix(line, `baton_consumer_messages_total{result="processed",`); ok {
					var v float64
					if _, err := fmt.Sscan(rest[strings.Index(rest, "}")+1:], &v); err != nil {
						return fmt.Errorf("%q: %w", line, err)
					}
					n += v
				}
			}
		}
		if int(n) < published {
			return fmt.Errorf("%v of %d published messages processed", n, published)
		}
		return nil
	})
	for _, s := range servers {
		eventually(t, s.id+" compared digests", func() error {
			body, err := scrape(s.url + "/metrics")
			if err != nil {
				return err
			}
			if !bytes.Contains(body, []byte("baton_raftnode_state_divergence{")) {
				return errors.New("no divergence gauge yet")
			}
			return nil
		})
	}

	for name, url := range targets {
		body, err := scrape(url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		families := 0
		for line := range strings.Lines(string(body)) {
			if strings.HasPrefix(line, "# TYPE baton_") {
				families++
			}
		}
		problems, err := checkMetrics(promtool, body)
		if err != nil {
			t.Fatalf("%s: promtool check metrics: %v", name, err)
		}
		for _, p := range problems {
			if strings.HasPrefix(p, "baton_") {
				t.Errorf("%s: promtool check metrics: %s", name, p)
			} else {
				t.Logf("%s: promtool check metrics (not Baton's): %s", name, p)
			}
		}
		t.Logf("%s: %d baton_* metric families checked", name, families)
	}
}

// promtoolPath returns promtool's path; without it the test skips, except in
// CI (CI=true), where .ci/run installs it and its absence is a failure.
func promtoolPath(t *testing.T) string {
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

func scrape(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// checkMetrics runs promtool check metrics over an exposition and returns
// the problems it reports, one per line. promtool exits non-zero when it
// finds any; only a failure to run it is an error.
func checkMetrics(promtool string, exposition []byte) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, err
	}
	var problems []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" {
			problems = append(problems, line)
		}
	}
	if err != nil && len(problems) == 0 {
		return nil, fmt.Errorf("%w with no output", err)
	}
	return problems, nil
}
