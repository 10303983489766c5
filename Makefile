# The README's test command. Needs PostgreSQL (KANADE_TEST_DATABASE_URL,
# default postgres://postgres@127.0.0.1:5432/test); NATS is embedded.
GO ?= go

.PHONY: test build vet lint bench docs snapshot fuzz chaos
test: vet lint
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

# Fuzz the decoder, the timestamp and duration parsers and the flag parsers
# that take times, sequences and cursors (10,000 inputs each in `make test`;
# FUZZTIME=10m for a real run). go test fuzzes one target at a time.
# make test counts inputs rather than seconds: Go 1.26's fuzz coordinator
# can fail a target at the end of a timed run with a bare "context deadline
# exceeded" and no crasher (golang/go#75804, fixed in Go 1.27); it did so
# here once. A count has no deadline to race. In a timed run that message
# without a new file under testdata/fuzz is that race, not a finding.
FUZZTIME ?= 2m
FUZZ_TARGETS = ./internal/wire:FuzzDecodeExecResult ./internal/wire:FuzzParseChrono ./internal/wire:FuzzParseHumantime ./internal/wire:FuzzFencedPayload \
	./internal/cli:FuzzParseTime ./internal/cli:FuzzParseSeq ./internal/results:FuzzDecodeCursor
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o kanade ./cmd/kanade

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint:
	$(GO) tool staticcheck ./...

# Replay performance against its baselines (docs/performance.md). Minutes,
# not part of `make test`. BENCH_N=200000 for a quicker run.
BENCH_N ?= 200000,1000000
bench:
	$(GO) test -tags bench -count=1 -timeout 60m -run "TestReplayPerformance|TestShowPerformance|TestBackfillPerformance|TestDerivedPerformance|TestDerivedMemory|TestReReplayPerformance|TestRebuildPerformance|TestCompletionPerformance|TestTwoCopiesPerformance" -v ./internal/bench -args -bench.n=$(BENCH_N)

# The command reference and man pages, generated from the cobra commands,
# and docs/examples.md, from a run of every command the guides show.
docs:
	$(GO) run ./cmd/kanade gen-docs --dir docs/reference --man-dir docs/man
	$(GO) test -count=1 -run '^TestDocs$$' ./cmd/kanade -args -update-examples

# A local release build (no publishing): archives, checksums, deb and rpm
# in dist/. Installs goreleaser from the Go module proxy on first use.
GORELEASER ?= $(shell go env GOPATH)/bin/goreleaser
$(GORELEASER):
	$(GO) install github.com/goreleaser/goreleaser/v2@v2.15.1

snapshot: $(GORELEASER)
	$(GORELEASER) check
	$(GORELEASER) release --snapshot --clean

# Fault injection (docs/reliability.md): SIGKILL of replay, --follow,
# backfill and --rebuild --yes, PostgreSQL and NATS restarts, a full disk,
# against servers the suite starts on private ports. Root (for the tmpfs)
# and PostgreSQL's and NATS's server binaries. Minutes; CHAOS_REPS=10 for more.
CHAOS_REPS ?= 3
chaos:
	$(GO) test -tags chaos -count=1 -timeout 60m -v -run TestChaos ./internal/chaos -args -chaos.reps=$(CHAOS_REPS)

