package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestPartitionsDeclare_Batches runs `baton partitions declare` against a real
// 3-node cluster serving the API over loopback: large counts go in batches,
// each its own request, with progress; the first failing batch stops the
// command, which says how many partitions were declared.
func TestPartitionsDeclare_Batches(t *testing.T) {
	tests := []struct {
		name string
		// before declares these specs first (through the client).
		before []fsm.PartitionSpec
		args   []string
		// wantErr, if set, is in the error; otherwise the command succeeds.
		wantErr []string
		// want is the partitions p-0000..p-<want-1> that must exist after.
		want      int
		wantOut   []string
		wantTotal int // partitions in the cluster after
	}{
		{
			name: "2500 in batches of 1000", args: []string{"--prefix", "p-", "--count", "2500", "--batch", "1000"},
			want: 2500, wantTotal: 2500,
			wantOut: []string{"batch 1/3: 1000 partition(s) applied", "batch 3/3: 500 partition(s) applied", "; 2500/2500 done", "declared 2500 partition(s) in 3 batch(es)"},
		},
		{
			name: "10001, more than one command may carry", args: []string{"--prefix", "p-", "--count", "10001", "--batch", "5000"},
			want: 10001, wantTotal: 10001,
			wantOut: []string{"batch 3/3: 1 partition(s) applied", "declared 10001 partition(s) in 3 batch(es)"},
		},
		{
			name:   "declaring again changes nothing",
			before: []fsm.PartitionSpec{{ID: "p-0001", Subjects: []string{"orders.p-0001.>"}}},
			args:   []string{"--prefix", "p-", "--count", "1500", "--batch", "1000"},
			want:   1500, wantTotal: 1500,
			wantOut: []string{"batch 1/2: 1000 partition(s) applied", "1000/1500 done", "declared 1500 partition(s) in 2 batch(es)"},
		},
		{
			name:   "the first failing batch stops the command",
			before: []fsm.PartitionSpec{{ID: "p-1500", Subjects: []string{"orders.p-1500.>"}, Weight: 7}},
			args:   []string{"--prefix", "p-", "--count", "2500", "--batch", "1000"},
			wantErr: []string{"batch 2 of 3 (p-1000 to p-1999): 1 rejected", "partition_exists",
				"1999 of 2500 partitions declared", "running the same command again is safe"},
			// p-0000..p-1999 but p-1500 (declared before with another
			// spec); batch 3 is never sent.
			want: 1500, wantTotal: 2000,
			wantOut: []string{"batch 2/3: 1000 partition(s) applied", "1999/2500 done"},
		},
	}
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := client.New(c.URLs())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			clearPartitions(ctx, t, cl)
			if len(tt.before) > 0 {
				if _, err := cl.Declare(ctx, tt.before); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			args := append([]string{"--addr", strings.Join(c.URLs(), ","), "--template", "orders.{{.Partition}}.>"}, tt.args...)
			err = partitionsDeclare(ctx, &out, args)
			t.Logf("output:\n%s", out.String())
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to say %q", err, w)
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			have := map[fsm.PartitionID]bool{}
			for p, err := range cl.AllPartitions(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				have[p.ID] = true
			}
			if len(have) != tt.wantTotal {
				t.Errorf("%d partitions in the cluster, want %d", len(have), tt.wantTotal)
			}
			width := len(fmt.Sprint(tt.wantTotal - 1))
			for i := range tt.want {
				if id := fsm.PartitionID(fmt.Sprintf("p-%0*d", width, i)); !have[id] {
					t.Fatalf("partition %s missing", id)
				}
			}
		})
	}
}

// clearPartitions removes every partition, in batches the server accepts.
func clearPartitions(ctx context.Context, t *testing.T, cl *client.Client) {
	t.Helper()
	var ids []fsm.PartitionID
	for p, err := range cl.AllPartitions(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		r, err := cl.RemovePartitions(ctx, ids[:n])
		if err == nil {
			err = client.ItemErrors(r)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[n:]
	}
}

// TestPartitionsDeclare_RefusedBeforeSending checks that a declaration the
// cluster would refuse is a usage error before any request: the address is
// unreachable, so a request would fail differently.
func TestPartitionsDeclare_RefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"count above the partition limit", []string{"--prefix", "p-", "--count", "1000001"}, "at most 1000000"},
		{"count 0", []string{"--prefix", "p-", "--count", "0"}, "-count"},
		{"batch 0", []string{"--prefix", "p-", "--count", "5", "--batch", "0"}, "-batch"},
		{"batch above the server's items per command", []string{"--prefix", "p-", "--count", "5", "--batch", "10001"}, "-batch"},
		{"weight 0 would silently be 1", []string{"--ids", "a", "--weight", "0"}, "-weight"},
		{"weight beyond uint32 would wrap to 1", []string{"--ids", "a", "--weight", "4294967297"}, "-weight"},
		{"weight above the state machine's bound", []string{"--ids", "a", "--weight", "1001"}, "-weight"},
		{"invalid id", []string{"--ids", "a,b c"}, `invalid partition id "b c"`},
		{"prefix making invalid ids", []string{"--prefix", "p/", "--count", "3"}, "invalid partition id"},
		{"prefix making ids too long", []string{"--prefix", strings.Repeat("p", 128), "--count", "10"}, "invalid partition id"},
		{"subject too long", []string{"--ids", "a", "--template", strings.Repeat("s", 300) + ".{{.Partition}}"}, "subject of"},
		{"bad template", []string{"--ids", "a", "--template", "orders.>"}, "--template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--addr", "http://127.0.0.1:1", "--template", "orders.{{.Partition}}.>"}, tt.args...)
			err := partitionsDeclare(context.Background(), &bytes.Buffer{}, args)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error saying %q", err, tt.want)
			}
		})
	}
}
