package deploy_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	// Grouping clauses name labels, not metrics.
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping clauses,
// function and aggregation names (an identifier before "("), keywords and
// numbers are taken out. Grafana's $variables live inside matchers and
// ranges, so they go with them.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	for {
		t := promqlMatchers.ReplaceAllString(s, " ")
		if t == s {
			break
		}
		s = t
	}
	s = promqlGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (isDigit(s[loc[0]-1]) || s[loc[0]-1] == '.' || s[loc[0]-1] == '$') {
			continue // a number's exponent or unit (1e3, 5m), or a $variable
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") || promqlKeywords[strings.ToLower(name)] {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`baton_raftnode_is_leader`, []string{"baton_raftnode_is_leader"}},
		{`max by (job) (baton_raftnode_is_leader) < 1 or absent(baton_raftnode_is_leader)`, []string{"baton_raftnode_is_leader"}},
		{`histogram_quantile(0.99, sum by (le, node) (rate(baton_raftnode_apply_seconds_bucket[$__rate_interval])))`,
			[]string{"baton_raftnode_apply_seconds_bucket"}},
		{`sum by (worker) (rate(baton_consumer_messages_total{result="processed", worker=~"$worker"}[5m])) / on (worker) group_left (x) up`,
			[]string{"baton_consumer_messages_total", "up"}},
		{`max by (job, reason) (increase(baton_handoffs_total{result="forced"}[15m])) > 0`, []string{"baton_handoffs_total"}},
		{`a_total offset 5m + 1e3 * b{x="(y)"} and bool c`, []string{"a_total", "b", "c"}},
		{`label_values(baton_consumer_messages_total, worker)`, []string{"baton_consumer_messages_total", "worker"}},
		{`sum(rate(x[1m:30s]))`, []string{"x"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%s) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}
