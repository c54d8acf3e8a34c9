# Baton build and test entry points. See README.md.
GO            ?= go
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Number of rapid checks per property in `make test` and in `make proptest-long`.
RAPID_CHECKS      ?= 300
RAPID_CHECKS_LONG ?= 20000
# Average actions per rapid state-machine run (rapid's default, 30, is too short
# to reach deep into handoffs).
RAPID_STEPS       ?= 150
PKGS          = $(shell $(GO) list ./... | grep -v /proptest)

.PHONY: all build test lint bench proptest-long chaos clean demo fuzz fuzz-short

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/baton ./cmd/baton

# A self-contained demo: embedded JetStream, a 3-node claim store, a producer and
# workers; handoffs shown live; ends with the lost/duplicated/reordered counts.
demo:
	$(GO) run ./cmd/baton demo

# Everything CI runs: unit, property and integration tests, with the race detector.
test: build
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	@if [ -d proptest ]; then $(GO) test -race -count=1 -timeout 10m ./proptest -rapid.checks=$(RAPID_CHECKS) -rapid.steps=$(RAPID_STEPS); fi
	$(MAKE) fuzz-short

# Every Go fuzz target (func FuzzXxx(f *testing.F)), one after the other, each
# for FUZZTIME: briefly in `make test`, for long runs with `make fuzz`. The seed
# corpora (f.Add and testdata/fuzz/) also run as plain tests in `go test`.
FUZZTIME       ?= 3s
FUZZTIME_LONG  ?= 5m
# Go minimizes every new interesting input for up to 60 s by default, which
# a short run would spend doing nothing else.
FUZZMINIMIZE   ?= 2s
FUZZ_PKGS       = $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
fuzz-short:
	@$(MAKE) --no-print-directory run-fuzz FUZZ_FOR=$(FUZZTIME)

fuzz:
	@$(MAKE) --no-print-directory run-fuzz FUZZ_FOR=$(FUZZTIME_LONG)

run-fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
		for target in $$(grep -h '^func Fuzz' $$pkg/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "fuzz $$pkg $$target for $(FUZZ_FOR)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZ_FOR) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg > .fuzz.log 2>&1 || \
			if grep -q 'context deadline exceeded' .fuzz.log && ! grep -q 'Failing input' .fuzz.log; then \
				echo "  (the fuzzer stopped at its deadline with a worker busy, not a failing input: run again)"; \
				$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZ_FOR) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg > .fuzz.log 2>&1 || { cat .fuzz.log; rm -f .fuzz.log; exit 1; }; \
			else cat .fuzz.log; rm -f .fuzz.log; exit 1; fi; \
		done; \
	done; rm -f .fuzz.log

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks print one line per figure; each compares against a baseline
# measured in the same run where one exists (raw hashicorp/raft, raw JetStream
# pull consumer, the minimum number of moves). Figures go to docs/benchmarks.md.
BENCH = $(GO) test -run '^$$' -timeout 60m
bench:
	$(BENCH) -bench . -benchtime=3s ./fsm
	$(BENCH) -bench . ./audit
	$(BENCH) -bench Digest100k -benchtime=20x ./raftnode
	$(BENCH) -bench . ./controller/placement
	$(BENCH) -bench WriteThroughput ./api/client
	$(BENCH) -bench Rebalance -benchtime=1x ./controller
	$(BENCH) -bench Throughput -benchtime=1x ./consumer
	$(BENCH) -bench Handoffs -benchtime=1000x ./consumer
	$(BENCH) -bench Pause -benchtime=3x ./consumer
	$(BENCH) -bench CatchupRead -benchtime=1x ./consumer
	$(BENCH) -bench . -benchtime=1x ./internal/natstest
	$(BENCH) -bench HeartbeatsUnderFsyncLoad -benchtime=1x ./raftnode

# Longer fault runs: the release suite (e2e TestE2E_ChaosSuite: real servers
# and workers, every fault mixed at random for CHAOS_DURATION on each
# retention, its report as a table and in chaos-report.json; make test runs
# it for 20 s on one retention); the linearizability check under leader
# isolation, kills and restarts for minutes instead of seconds; CHAOS_FREEZES SIGSTOP/SIGCONT
# rounds of the leader of three real servers with writes in flight, then every
# node's audit log, state and raft log compared (make test runs 2 rounds;
# CHAOS_SEED=n replays a run's random choices); deposed leaders asked for
# default reads, READS_ROUNDS times; R3_ROUNDS rounds of NATS node kills under
# handoffs on R3 streams; then the long property run.
CHAOS_DURATION ?= 5m
CHAOS_FREEZES  ?= 200
# Rounds of the three NATS node kills (stream leader, consumer leader,
# follower) under handoffs on R3 streams of each retention (not in make test:
# minutes per round).
R3_ROUNDS      ?= 5
CHAOS_SEED     ?= 0
# JetStream servers under the chaos suite: a cluster of 3 (R3 stream, NATS node
# kills and isolations among the faults), or 1.
CHAOS_NATS     ?= 3
READS_ROUNDS   ?= 200
chaos: build
	$(GO) test -count=1 -timeout 180m -v -run '^TestE2E_ChaosSuite$$' ./e2e -chaos.duration=$(CHAOS_DURATION) -chaos.retention=all -chaos.nats=$(CHAOS_NATS) -chaos.seed=$(CHAOS_SEED) -chaos.report=$(CURDIR)/chaos-report.json
	$(GO) test -count=1 -timeout 60m -run Linearizable ./proptest -chaos.duration=$(CHAOS_DURATION)
	$(GO) test -count=1 -timeout 90m -v -run '^TestE2E_Chaos_LeaderFreezes$$' ./e2e -chaos.freezes=$(CHAOS_FREEZES) -chaos.seed=$(CHAOS_SEED)
	$(GO) test -count=1 -timeout 60m -run 'TestDefaultRead_DeposedLeaderDoesNotAnswer' ./raftnode -reads.rounds=$(READS_ROUNDS)
	$(GO) test -count=1 -timeout 60m -v -run '^TestR3_ExactlyOnceAcrossNATSNodeKills$$' ./consumer -r3.rounds=$(R3_ROUNDS)
	$(MAKE) proptest-long

proptest-long:
	$(GO) test -count=1 -timeout 120m ./proptest -rapid.checks=$(RAPID_CHECKS_LONG) -rapid.steps=$(RAPID_STEPS)

clean:
	$(GO) clean -testcache
	rm -rf bin
