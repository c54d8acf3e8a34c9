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

.PHONY: all build test test-unit test-prop lint bench proptest-long clean demo

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

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=1x -timeout 60m ./...

proptest-long:
	$(GO) test -count=1 -timeout 120m ./proptest -rapid.checks=$(RAPID_CHECKS_LONG) -rapid.steps=$(RAPID_STEPS)

clean:
	$(GO) clean -testcache
	rm -rf bin
