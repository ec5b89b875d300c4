# Kindling's build. Everything a fresh machine needs is installed or built
# from here: `make run` sets up and serves, `make test` sets up and tests.

# sudo's secure_path usually lacks Go's default install directory; the
# scripts and the tests run the go command too.
export PATH := $(PATH):/usr/local/go/bin

GO      ?= go
BIN     ?= $(CURDIR)/bin
ROOTFS  ?= /var/lib/kindling/rootfs
DATA    ?= /var/lib/kindling
LISTEN  ?= 127.0.0.1:9000
GOFLAGS_BUILD := -trimpath

.PHONY: all setup build rootfs runsc run test test-deps test-unit test-e2e bench fuzz vet clean

all: build

RUNSC   ?= /var/lib/kindling/bin/runsc

## setup: build the binaries, the sandbox base userland and runsc (idempotent)
setup: build rootfs runsc

## build: bin/kindling and bin/kindling-agent (static)
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/kindling ./cmd/kindling
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/kindling-agent ./cmd/kindling-agent

## rootfs: the shared read-only base userland of the sandboxes (Debian, once)
rootfs:
	scripts/build-rootfs.sh $(ROOTFS)

## runsc: gVisor's runsc, built from the version pinned in tools/runsc (once)
runsc:
	scripts/build-runsc.sh $(RUNSC)

## run: set up, then serve on embedded defaults
run: setup
	$(BIN)/kindling server --listen $(LISTEN) --data-dir $(DATA) --rootfs $(ROOTFS)

vet:
	@test -z "$$(gofmt -l cmd internal e2e)" || (gofmt -l cmd internal e2e; echo "gofmt needed"; exit 1)
	$(GO) vet ./...

## test: set up, then vet and run every test (unit, conformance, end to end);
## the end-to-end suite runs twice, with process and with gVisor sandboxes
test: setup test-deps vet
	KINDLING_GVISOR_REQUIRED=1 $(GO) test -count=1 -timeout 45m ./...
	KINDLING_GVISOR_REQUIRED=1 KINDLING_E2E_SANDBOX=gvisor $(GO) test -count=1 -timeout 20m ./e2e/

## test-deps: what the tests drive besides Kindling (Debian's AWS CLI v2 and boto3)
test-deps:
	scripts/install-test-deps.sh

test-unit: build
	$(GO) test -count=1 -short ./internal/...

## bench: the benchmarks recorded in docs/benchmarks.md
bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./e2e/ | tee $(CURDIR)/bench.out

## fuzz: each fuzz target for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
