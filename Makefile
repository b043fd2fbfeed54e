# snag's build. `make help` lists the targets.
GO      ?= go
BIN     ?= bin
GOFLAGS ?=
export CGO_ENABLED = 0

.DEFAULT_GOAL := build

.PHONY: help build package cross generate check-generate test test-unit bench demo lint fuzz clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# A release build names its version: make build VERSION=v1.2.0. Without it
# `snag version` says the pseudo-version and commit go build stamped from the
# checkout (-buildvcs=auto overrides a GOFLAGS=-buildvcs=false in go env), or
# "devel" where it found none (a git worktree, whose .git is a file).
VERSION ?=
LDFLAGS := $(if $(VERSION),-X github.com/snagtrace/snag/internal/version.release=$(VERSION))

build: ## build bin/snag (no clang needed: the BPF objects are committed)
	$(GO) build -buildvcs=auto $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/snag ./cmd/snag

# The packages' version: the release without its v, else a pre-release of
# 0.0.0 named for the commit (dpkg and rpm order it before any release).
PKG_VERSION ?= $(if $(VERSION),$(VERSION:v%=%),0.0.0-dev.$(or $(shell git rev-parse --short HEAD 2>/dev/null),unknown))
# The packages' architecture is the binary's: GOARCH=arm64 make package.
# nfpm itself runs on this machine, so it gets an empty GOARCH.
PKG_ARCH = $(shell $(GO) env GOARCH)

package: build ## build $(BIN)/snag_*.deb and .rpm: /usr/bin/snag, the systemd unit and /etc/default/snag (examples/packaging/nfpm.yaml)
	@set -e; for p in deb rpm; do \
		echo "$(GO) tool nfpm package --packager $$p"; \
		GOARCH= BIN=$(BIN) PKG_ARCH=$(PKG_ARCH) PKG_VERSION=$(PKG_VERSION) $(GO) tool nfpm package \
			--config examples/packaging/nfpm.yaml --packager $$p --target $(BIN)/; \
	done

# Where post-incident work happens: snag analyze on macOS and Windows
# (attach, run, record and doctor say they need Linux).
CROSS ?= darwin/arm64 darwin/amd64 windows/amd64

cross: ## build snag for macOS and Windows (analyze only) and vet its portable packages there
	@set -e; for t in $(CROSS); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./cmd/snag"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build $(GOFLAGS) -o /dev/null ./cmd/snag; \
	done
	GOOS=darwin $(GO) vet $$(GOOS=darwin $(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./cmd/snag | grep '^github.com/snagtrace/')

$(BIN)/stalledloop: $(wildcard examples/stalledloop/*.go)
	$(GO) build -o $@ ./examples/stalledloop

generate: ## regenerate the BPF objects (clang llvm libbpf-dev), syscall tables and CPython offsets (python3.11-dev)
	$(GO) generate ./bpf/ ./internal/bench/noop/ ./internal/syscalls/ ./internal/cpython/

check-generate: generate ## fail when committed generated files drift from their sources
	git diff --exit-code -- bpf/ internal/bench/noop/ internal/syscalls/ internal/cpython/

test: cross ## every test; as root this loads BPF and runs the examples (what CI runs)
	/usr/bin/python3 -m unittest discover -s examples/gevent-mysqldb
	$(GO) test -count=1 -p 1 -timeout 20m ./...

test-unit: ## only the tests that need neither root nor servers
	$(GO) test -count=1 -short ./...

# The soak of snag serve takes twice SOAK: half of it untraced before, half after.
SOAK ?= 10m

bench: build ## tracing overhead side by side (untraced, snag, strace, no-op BPF floor) strace-log analysis speed, snag's memory on 2,000 threads and 20,000 connections, and a SOAK (10m) of snag serve over 50 processes
	$(GO) build -o $(BIN)/snagbench ./internal/bench/cmd/snagbench
	$(BIN)/snagbench -snag $(BIN)/snag -strace-log -memory -soak $(SOAK)

demo: build $(BIN)/stalledloop ## run the stalled-loop example under load and show snag's report
	BIN=$(BIN) ./examples/demo.sh

# The test collector is a module of its own (internal/e2e/otelcol), which
# ./... does not reach.
lint: ## go vet, gofmt, go.mod tidy (snag's and the test collector's) and clang-format
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd internal/e2e/otelcol && $(GO) vet ./... && $(GO) mod tidy -diff
	@test -z "$$(gofmt -l . | tee /dev/stderr)"
	@if command -v clang-format >/dev/null; then clang-format --dry-run --Werror bpf/*.c bpf/*.h; fi

FUZZTIME ?= 10s

fuzz: ## run every fuzz target in the tree (func Fuzz*) for FUZZTIME (10s) each
	@grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | sort -u | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; dir=./$$(dirname "$${file#./}"); \
		echo "$(GO) test $$dir -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME)"; \
		$(GO) test "$$dir" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

clean: ## remove build output
	rm -rf $(BIN)
