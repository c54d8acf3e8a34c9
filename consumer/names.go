package consumer

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/batonhq/baton/fsm"
)

// consumerName is the durable consumer of one worker incarnation:
// <prefix>_<worker>_<incarnation>. A consumer per incarnation means a restarted
// worker never shares a consumer with the cleanup of its previous life: others
// only ever edit consumers of incarnations that are gone.
func consumerName(prefix string, w fsm.WorkerID, inc fsm.Incarnation) string {
	return prefix + "_" + sanitize(string(w)) + "_" + strconv.FormatUint(uint64(inc), 10)
}

// parseConsumerName splits a name made by consumerName; ok is false for any
// other consumer.
func parseConsumerName(prefix, name string) (worker string, inc fsm.Incarnation, ok bool) {
	rest, found := strings.CutPrefix(name, prefix+"_")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return rest[:i], fsm.Incarnation(n), true
}

// sanitize maps a worker id onto consumer-name characters: '.' is a subject
// separator and not allowed. Incarnations are unique, so a collision between
// two sanitized ids can never produce the same consumer name.
func sanitize(s string) string { return strings.ReplaceAll(s, ".", "_") }

// validToken reports whether s can be part of a consumer name.
func validToken(s string) bool {
	for _, c := range s {
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c == 0x7f {
			return false
		}
	}
	return s != ""
}

// parseTemplate parses a subject template such as "orders.{{.Partition}}.>".
func parseTemplate(t string) (*template.Template, error) {
	if !strings.Contains(t, "{{") {
		return nil, fmt.Errorf("subject template %q has no {{.Partition}}", t)
	}
	tpl, err := template.New("subject").Option("missingkey=error").Parse(t)
	if err != nil {
		return nil, fmt.Errorf("subject template %q: %w", t, err)
	}
	return tpl, nil
}

// Subject expands a subject template for one partition.
func Subject(tpl string, p fsm.PartitionID) (string, error) {
	t, err := parseTemplate(tpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ Partition string }{string(p)}); err != nil {
		return "", fmt.Errorf("subject template %q: %w", tpl, err)
	}
	return b.String(), nil
}
