package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/fsm"
)

const declareHelp = `
Declares partitions (operator). Each partition's JetStream subject is the
template expanded with its id ({{.Partition}}). Ids come from --ids, or from
--prefix and --count: --prefix orders- --count 3 declares orders-0, orders-1 and
orders-2 (numbers are zero-padded to the width of the largest). Declaring a
partition again with the same spec changes nothing, so running the same
command again is safe.

The partitions are sent in batches of --batch, each its own request (with its
own request id, so a retried batch is applied once); --timeout bounds each
batch, not the whole command. A line of progress follows each batch. The first batch that fails
stops the command, which then says how many partitions were declared.`

func runPartitionsDeclare(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return partitionsDeclare(ctx, os.Stdout, args)
}

// partitionsDeclare is `baton partitions declare` writing to out; ctx ends it
// between batches (Ctrl-C).
func partitionsDeclare(ctx context.Context, out io.Writer, args []string) error {
	f := newFlags("partitions declare",
		"baton partitions declare --template 'orders.{{.Partition}}.>' (--ids a,b,c | --prefix orders- --count 16 [--start 0]) [flags]",
		declareHelp, 0, 0)
	var c clientFlags
	c.register(f)
	limits := fsm.DefaultConfig() // every node runs with it: no server flag changes it
	var (
		tpl, ids, prefix    string
		count, start, batch int
		weight              uint32
		startAfter          uint64
	)
	f.StringVar(&tpl, "template", "", "subject template, e.g. 'orders.{{.Partition}}.>' (required)")
	f.StringVar(&ids, "ids", "", "comma-separated partition ids")
	f.StringVar(&prefix, "prefix", "", "id prefix, with --count")
	f.intVar(&count, "count", 0, 1, math.MaxInt, fmt.Sprintf("how many partitions to declare, with --prefix (at most %d, the cluster's limit)", limits.MaxPartitions))
	f.intVar(&start, "start", 0, 0, math.MaxInt, "first number, with --prefix and --count")
	f.intVar(&batch, "batch", 1000, 1, limits.MaxItems, "partitions per request (at most the server's items per command);\nlower it if the server's --max-body-bytes refuses a batch")
	f.uint32Var(&weight, "weight", 1, 1, maxWeight(), weightUsage("relative load of each partition"))
	f.uint64Var(&startAfter, "start-after", 0, 0, math.MaxUint64, "initial checkpoint: the first owner resumes after this stream sequence (0: from the start)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	c.out = out
	src, err := newIDSource(ids, prefix, count, start, limits.MaxPartitions)
	if err != nil {
		return err
	}
	if tpl == "" {
		return usageErrorf("partitions declare needs --template")
	}
	specs := specSource{ids: src, tpl: tpl, weight: weight, startAfter: fsm.StreamSeq(startAfter)}
	// Refuse a bad id, prefix or template before anything is sent. Generated
	// ids differ only in their numbers, all as wide: the first and the last
	// stand for the rest. (Every spec is still checked as it is built.)
	check := []int{0, src.len() - 1}
	if src.explicit != nil {
		check = nil
		for i := range src.explicit {
			check = append(check, i)
		}
	}
	for _, i := range check {
		if _, err := specs.spec(i); err != nil {
			return usageErrorf("%v", err)
		}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	return declareBatches(ctx, c, cl, specs, batch)
}

// declareBatches sends specs in batches of n, each bounded by --timeout, and
// prints progress. It stops at the first batch that fails, saying how many
// partitions were declared.
func declareBatches(ctx context.Context, c clientFlags, cl *client.Client, specs specSource, n int) error {
	total := specs.ids.len()
	batches := (total + n - 1) / n
	declared, k := 0, 0
	stopped := func(format string, args ...any) error {
		return fmt.Errorf("declare: "+format+"; %d of %d partitions declared (running the same command again is safe)",
			append(args, declared, total)...)
	}
	for b, err := range specs.batches(n) {
		if err != nil {
			return stopped("%w", err)
		}
		k++
		first, last := b[0].ID, b[len(b)-1].ID
		if err := ctx.Err(); err != nil {
			return stopped("interrupted before batch %d of %d (%s to %s)", k, batches, first, last)
		}
		bctx, cancel := context.WithTimeout(ctx, c.timeout)
		r, err := cl.Declare(bctx, b)
		cancel()
		if err != nil {
			return stopped("batch %d of %d (%s to %s) failed (its outcome may be unknown): %w", k, batches, first, last, err)
		}
		rejected := 0
		for _, it := range r.Items {
			if it != nil {
				rejected++
			}
		}
		if err := c.printBatch(k, batches, len(b), declared+len(b)-rejected, total, r); err != nil {
			return err
		}
		if rejected > 0 {
			// The batch's other partitions were declared.
			err := client.ItemErrors(r)
			declared += len(b) - rejected
			return stopped("batch %d of %d (%s to %s): %d rejected: %w", k, batches, first, last, rejected, err)
		}
		declared += len(b)
	}
	if !c.json {
		fmt.Fprintf(c.out, "declared %d partition(s) in %d batch(es)\n", declared, k)
	}
	return nil
}

// printBatch reports one batch: its write response as JSON, or a line of
// progress. (The server leaves a declaration's events out of its answer, so
// new and already declared partitions are not told apart.)
func (c *clientFlags) printBatch(k, batches, size, done, total int, r api.WriteResponse) error {
	if c.json {
		return c.printJSON(r)
	}
	applied := "applied"
	if r.Duplicate {
		applied = "already applied" // a retry of a batch that had succeeded
	}
	fmt.Fprintf(c.out, "batch %d/%d: %d partition(s) %s at index %d; %d/%d done\n", k, batches, size, applied, r.Index, done, total)
	return nil
}

// idSource is the partition ids to declare, from --ids or generated from
// --prefix, --count and --start one at a time: never a slice of them all.
type idSource struct {
	explicit []fsm.PartitionID // --ids, or nil
	prefix   string
	count    int
	start    int
	width    int // digits of every generated number
}

// newIDSource checks --ids or --prefix/--count/--start; count is bounded by
// the flag, max bounds the number of --ids.
func newIDSource(ids, prefix string, count, start, max int) (idSource, error) {
	switch {
	case ids != "" && (prefix != "" || count != 0):
		return idSource{}, usageErrorf("use either --ids or --prefix with --count")
	case ids != "":
		var s idSource
		for _, id := range splitList(ids) {
			s.explicit = append(s.explicit, fsm.PartitionID(id))
		}
		if len(s.explicit) > max {
			return idSource{}, usageErrorf("--ids: %d partitions, at most %d", len(s.explicit), max)
		}
		if len(s.explicit) == 0 {
			return idSource{}, usageErrorf("--ids: no partition id")
		}
		return s, nil
	case count <= 0:
		return idSource{}, usageErrorf("partitions declare needs --ids, or --count N (with --prefix)")
	case count > max:
		return idSource{}, usageErrorf("--count %d: the cluster holds at most %d partitions", count, max)
	case start < 0:
		return idSource{}, usageErrorf("--start must be >= 0")
	case start > math.MaxInt-count:
		return idSource{}, usageErrorf("--start %d: the last number would overflow", start)
	}
	return idSource{prefix: prefix, count: count, start: start, width: len(strconv.Itoa(start + count - 1))}, nil
}

func (s idSource) len() int {
	if s.explicit != nil {
		return len(s.explicit)
	}
	return s.count
}

// id returns the i-th id, 0 <= i < len().
func (s idSource) id(i int) fsm.PartitionID {
	if s.explicit != nil {
		return s.explicit[i]
	}
	return fsm.PartitionID(fmt.Sprintf("%s%0*d", s.prefix, s.width, s.start+i))
}

// specSource builds the spec of each id.
type specSource struct {
	ids        idSource
	tpl        string
	weight     uint32
	startAfter fsm.StreamSeq
}

// spec builds and checks the i-th spec: its id against fsm.CheckPartitionID,
// its subject against the template and fsm.MaxSubjectLen.
func (s specSource) spec(i int) (fsm.PartitionSpec, error) {
	id := s.ids.id(i)
	if err := fsm.CheckPartitionID(id); err != nil {
		return fsm.PartitionSpec{}, fmt.Errorf("partition id: %w", err)
	}
	subj, err := consumer.Subject(s.tpl, id)
	if err != nil {
		return fsm.PartitionSpec{}, fmt.Errorf("--template: %w", err)
	}
	if len(subj) > fsm.MaxSubjectLen {
		return fsm.PartitionSpec{}, fmt.Errorf("--template: partition %s: subject of %d bytes, at most %d", id, len(subj), fsm.MaxSubjectLen)
	}
	return fsm.PartitionSpec{ID: id, Subjects: []string{subj}, Weight: s.weight, StartAfter: s.startAfter}, nil
}

// batches yields the specs in order, in batches of at most n. It builds each
// batch only when asked for it, in one slice reused for every batch: a batch
// is valid until the next one is asked for, and memory stays bounded by n
// whatever the count. A spec that cannot be built ends it with the error.
func (s specSource) batches(n int) iter.Seq2[[]fsm.PartitionSpec, error] {
	return func(yield func([]fsm.PartitionSpec, error) bool) {
		total := s.ids.len()
		buf := make([]fsm.PartitionSpec, 0, min(n, total))
		for i := 0; i < total; i++ {
			spec, err := s.spec(i)
			if err != nil {
				yield(nil, err)
				return
			}
			buf = append(buf, spec)
			if len(buf) == n || i == total-1 {
				if !yield(buf, nil) {
					return
				}
				clear(buf) // drop the strings of the batch sent
				buf = buf[:0]
			}
		}
	}
}
