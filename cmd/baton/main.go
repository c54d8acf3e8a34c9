// Command baton is Baton's one binary: the claim-store server, a worker, a
// self-contained demo, and the operator's client verbs.
//
// Every subcommand has its own flags (standard library flag, one FlagSet each)
// and --help. Every flag can also be set through the environment variable
// BATON_<FLAG_NAME> (upper snake case: --raft-addr is BATON_RAFT_ADDR); a flag
// given on the command line wins. This package is the only place in Baton that
// reads flags or the environment; it maps them one to one onto the Config
// structs of raftnode, controller and api/server and onto consumer options.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// exitError carries a process exit code through main's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is an error the user made on the command line (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// cmdSpec is one subcommand.
type cmdSpec struct {
	name    string
	summary string
	run     func(args []string) error
}

func commands() []cmdSpec {
	return []cmdSpec{
		{"server", "run a claim-store node (raft, controller, HTTP API)", runServer},
		{"worker", "run a worker process that consumes its partitions from JetStream", runWorker},
		{"demo", "run a self-contained demo: JetStream, 3 nodes, producer, workers, handoffs", runDemo},
		{"status", "show the cluster's members, leader, indexes and counts", runStatus},
		{"workers", "list workers", runWorkers},
		{"cordon", "cordon a worker for maintenance (its partitions move away); --undo to uncordon", runCordon("cordon")},
		{"drain", "the former name of cordon, kept for scripts", runCordon("drain")},
		{"remove-worker", "remove a worker (its partitions fail over from their checkpoints)", runRemoveWorker},
		{"partitions", "declare, list, get, remove or move partitions", runPartitions},
		{"move", "move a partition to a worker (graceful handoff, or --force)", runMove},
		{"pin", "pin a partition to a worker (--unpin to unpin)", runPin},
		{"pause", "pause voluntary rebalancing", runPause},
		{"resume", "resume voluntary rebalancing", runResume},
		{"handoffs", "list pending handoffs", runHandoffs},
		{"plan", "show the controller's dry run: planned moves and held-back actions", runPlan},
		{"audit", "query or follow the audit log; --timeline for per-handoff phase timings", runAudit},
		{"cluster", "add or remove claim-store nodes (cluster join, cluster remove)", runCluster},
		{"token", "make a worker token key and issue per-worker tokens (token new-key, token issue)", runToken},
	}
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if ee == nil || ee.err != nil {
		// Errors carry the server's messages and the values it refused.
		fmt.Fprintln(os.Stderr, "baton:", termSafeLines(err.Error()))
	}
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		topUsage(stderr)
		return &exitError{code: 2}
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 && name == "help" {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		topUsage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	topUsage(stderr)
	return usageErrorf("unknown command %q", name)
}

func topUsage(w io.Writer) {
	fmt.Fprint(w, `baton: a Raft-replicated claim store that hands NATS JetStream partitions
between workers with a two-phase handoff, and the tools around it.

Usage: baton <command> [flags] [args]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'baton <command> --help' for a command's flags. Every flag can also be set
through the environment as BATON_<FLAG> (--raft-addr is BATON_RAFT_ADDR); a flag
on the command line wins.

Start with 'baton demo'.
`)
}
