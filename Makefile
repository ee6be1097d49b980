# airgapd — the two commands that matter: `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/airgapd
# Every test run is bounded; see README for how long `make test` takes.
TEST_TIMEOUT ?= 30m

.PHONY: all build run test test-deps check vet fmt clean rpm bench

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

check: build
	./$(BIN) check --config examples/lab.yaml
	./$(BIN) check --config examples/dev.yaml

fmt:
	gofmt -l -w .

clean:
	rm -rf bin dist var
