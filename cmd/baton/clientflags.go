package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
)

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	addr        string
	token       string
	caCert      string
	json        bool
	consistency string
	timeout     time.Duration
	out         io.Writer
}

func (c *clientFlags) register(f *flagSet) {
	c.registerConn(f)
	f.BoolVar(&c.json, "json", false, "print JSON for machines instead of tables")
	f.StringVar(&c.consistency, "consistency", "default", "read consistency: stale (any node's own state), default (the leader) or linearizable")
	f.positiveDurationVar(&c.timeout, "timeout", 15*time.Second, "bound of the whole command")
}

// registerConn registers only how to reach the cluster: --addr and --token.
func (c *clientFlags) registerConn(f *flagSet) {
	c.out = os.Stdout
	c.timeout = client.DefaultTimeout
	f.StringVar(&c.addr, "addr", "http://127.0.0.1:7101", "API base URLs of claim-store nodes, comma-separated (any node will do)")
	f.StringVar(&c.token, "token", "", "bearer token")
	f.StringVar(&c.caCert, "ca-cert", "", "PEM CA bundle to trust for https:// addresses (default: the system roots)")
}

// client returns an API client for the flags.
func (c *clientFlags) client() (*client.Client, error) {
	addrs := splitList(c.addr)
	opts := []client.Option{client.WithTimeout(c.timeout)}
	if c.token != "" {
		opts = append(opts, client.WithToken(c.token))
	}
	if c.caCert != "" {
		pool, err := certPool("--ca-cert", c.caCert)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		opts = append(opts, client.WithHTTPClient(httpClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	}
	switch strings.ToLower(c.consistency) {
	case "", "default":
		opts = append(opts, client.WithConsistency(client.ConsistencyDefault))
	case "stale":
		opts = append(opts, client.WithConsistency(client.ConsistencyStale))
	case "linearizable":
		opts = append(opts, client.WithConsistency(client.ConsistencyLinearizable))
	default:
		return nil, usageErrorf("--consistency %q: want stale, default or linearizable", c.consistency)
	}
	cl, err := client.New(addrs, opts...)
	if err != nil {
		return nil, usageErrorf("--addr %q: %v", c.addr, err)
	}
	return cl, nil
}

// connect registers the client flags on f (after any of the verb's own), parses
// args, and returns the positional arguments, a client and a context bounded by
// --timeout; done releases both.
func (c *clientFlags) connect(f *flagSet, args []string) (pos []string, cl *client.Client, ctx context.Context, done func(), err error) {
	c.register(f)
	if pos, err = f.parse(args); err != nil {
		return nil, nil, nil, nil, err
	}
	if cl, err = c.client(); err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := c.ctx()
	return pos, cl, ctx, func() { cancel(); cl.Close() }, nil
}

// ctx returns a context bounded by --timeout.
func (c *clientFlags) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

// printJSON writes v as indented JSON (see writeJSON).
func (c *clientFlags) printJSON(v any) error { return writeJSON(c.out, v, true) }

// printWrite reports a write: its index and the events it produced.
func (c *clientFlags) printWrite(what string, r api.WriteResponse, err error) error {
	if err != nil {
		return err // the client's errors name the operation and its ids
	}
	if c.json {
		return c.printJSON(r)
	}
	switch {
	case r.Duplicate:
		fmt.Fprintf(c.out, "%s: already applied at index %d\n", termSafe(what), r.Index)
	default:
		fmt.Fprintf(c.out, "%s: applied at index %d\n", termSafe(what), r.Index)
		for _, ev := range r.Events {
			fmt.Fprintf(c.out, "  %s\n", termSafe(ev.String()))
		}
	}
	if err := client.ItemErrors(r); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// table is a tab-aligned table on w.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

// row writes one row. Every cell goes through termSafe: cells carry server
// data, and a tab or newline in one would also break the table.
func (t *table) row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, termSafe(fmt.Sprint(c)))
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() { t.tw.Flush() }

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// dash renders an empty value as "-".
func dash[T ~string](s T) string {
	if s == "" {
		return "-"
	}
	return string(s)
}

// ago renders a Unix-nanosecond leader time as a time and an age.
func ago(unixNano int64) string {
	if unixNano == 0 {
		return "-"
	}
	t := time.Unix(0, unixNano)
	return fmt.Sprintf("%s (%s ago)", t.Format(time.TimeOnly), time.Since(t).Round(time.Second))
}
