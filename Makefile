# nines: make demo brings up a Galera sandbox and the appliance; make test
# installs what the tests need, builds, and runs every test.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/nines

# Test files that start real MariaDB servers carry `//go:build cluster`.
# Their packages run one at a time (-p 1): a Galera node takes ~150 MB,
# the machine has two cores, and the sandboxes use fixed ports.
CLUSTER_LOCK ?= /tmp/nines-cluster.lock
CLUSTER_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build cluster' . | xargs -n1 dirname | sort -u)

.PHONY: all deps build test unit e2e bench fuzz lint demo clean

all: build

deps:
	./scripts/install-deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/nines

lint:
	$(GO) vet ./...
	$(GO) vet -tags cluster ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Without the cluster tag the files that start servers are left out.
unit:
	$(GO) test -race ./...

# -count=1: these tests run the nines binary they build, which go test's
# result cache does not track; a cached pass could hide a broken binary.
# The lock keeps two runs on one machine (a developer's and a checkout's)
# from starting sandboxes on the same ports. -parallel 2: the few e2e
# drills that mostly wait on a clock (waitsSideBySide) run two at a time
# after the others.
e2e:
	flock $(CLUSTER_LOCK) $(GO) test -race -tags cluster -count=1 -p 1 -parallel 2 -timeout 60m -v $(CLUSTER_PKGS)

test: deps build lint unit e2e

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 3s ./appliance/store/ ./exporter/mysql/
	$(GO) test -run '^$$' -bench RuleEvaluation -benchtime 5x ./appliance/
	$(GO) test -run '^$$' -bench UptimeReportYear -benchtime 3x -timeout 10m ./appliance/report/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench NDBRound -benchtime 300x ./exporter/ndb/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench 'Stack' -benchtime 1x -timeout 20m ./e2e/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench 'ApplianceRSS' -benchtime 1x -timeout 20m ./e2e/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench 'Backup' -benchtime 1x -timeout 20m ./e2e/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench 'Failover' -benchtime 1x -timeout 20m ./e2e/
	flock $(CLUSTER_LOCK) $(GO) test -tags cluster -run '^$$' -bench 'Fleet' -benchtime 1x -timeout 30m ./e2e/

# Every fuzz target for FUZZTIME (default 1m) each; make test runs only
# their seed corpora (and any crashers saved under testdata/fuzz).
fuzz:
	./scripts/fuzz.sh

demo: deps build
	$(BIN) demo

clean:
	rm -rf bin e2e.log
