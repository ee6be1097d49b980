# airgapd — the two commands that matter: `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/airgapd
# Peers such as named live in /usr/sbin, which a non-login PATH may lack;
# crane is installed into Go's bin folder.
export PATH := $(PATH):/usr/sbin:/sbin:$(shell $(GO) env GOPATH)/bin
# Every test run is bounded; see README for how long `make test` takes.
TEST_TIMEOUT ?= 30m

.PHONY: all build run test test-deps check vet fmt clean rpm lab

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/airgapd

# Serve the built-in development defaults (examples/dev.yaml): loopback only,
# unprivileged ports, no upstreams, gateway in plan mode, data under ./var.
run: build
	./$(BIN) serve

# Install the test peers (as root, with apt-get) and Go modules, then run the
# unit and end-to-end tests.
test: test-deps
	$(GO) vet ./...
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

test-deps:
	bash scripts/install-test-deps.sh

# The seed lab end to end (as root): wan, admin and two nodes in network
# namespaces run the seed checklist before and after admin's uplink is cut,
# and print it as a table. `make test` runs it too.
lab:
	$(GO) test -count=1 -run TestSeedLab -v ./test/e2e/

check: build
	./$(BIN) check --config examples/lab.yaml
	./$(BIN) check --config examples/dev.yaml

fmt:
	gofmt -l -w .

clean:
	rm -rf bin dist var

# ---- packaging: see packaging/README.md ----
# nfpm runs from the module proxy, pinned, so it stays out of go.mod.
# nfpm: the one scripts/install-test-deps.sh built, else fetched and run.
NFPM_CACHED  = /var/cache/airgapd-test/nfpm/nfpm
NFPM        ?= $(if $(wildcard $(NFPM_CACHED)),$(NFPM_CACHED),$(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.44.0)
RPM_VERSION  = $(shell sh packaging/rpm-version.sh '$(VERSION)')
RPM          = dist/airgapd-$(RPM_VERSION).x86_64.rpm

.PHONY: verify-unit

# The RPM is for x86_64 Rocky 9 hosts, whatever this machine is: build (run as
# rpm's prerequisite) inherits these. nfpm itself is run for this machine.
rpm: export GOOS = linux
rpm: export GOARCH = amd64
rpm: build
	mkdir -p dist
	env -u GOOS -u GOARCH AIRGAPD_RPM_VERSION='$(RPM_VERSION)' AIRGAPD_BIN='$(BIN)' \
		SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
		$(NFPM) pkg --packager rpm --config packaging/nfpm.yaml --target $(RPM)
	@echo "built $(RPM)"

# systemd-analyze verify insists that ExecStart's binary exists, and this
# host has no /usr/bin/airgapd. So verify a temporary copy of the unit whose
# ExecStart points at a stand-in script; the copy keeps the name
# airgapd.service, and everything else in it is the shipped unit. Fails on
# any message, not only on errors.
verify-unit:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	printf '#!/bin/sh\nexit 0\n' >"$$tmp/airgapd" && chmod +x "$$tmp/airgapd" && \
	sed "s|/usr/bin/airgapd|$$tmp/airgapd|g" packaging/airgapd.service >"$$tmp/airgapd.service" && \
	out=$$(systemd-analyze verify "$$tmp/airgapd.service" 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then printf '%s\n' "$$out" >&2; exit 1; fi; \
	echo "verify-unit: packaging/airgapd.service ok"
