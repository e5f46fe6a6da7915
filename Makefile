# dimirror — build, test and local tooling.
# `make test` is what CI runs: it installs what the suite needs (Go modules, Azurite from
# package-lock.json) and runs vet, the gofmt check and the whole race-enabled suite.

GO        ?= go
NPM       ?= npm
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOTEST_TIMEOUT ?= 8m

.PHONY: all build test vet fmt-check fmt deps go-deps node-deps clean

all: build

build: go-deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps: go-deps node-deps

go-deps:
	$(GO) mod download

# Azurite (the Storage emulator the table tests start) comes from the lockfile; reinstalled only
# when the lockfile changes.
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

node-deps: node_modules/.package-lock.json

vet: go-deps
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.local/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run 'make fmt'):"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.local/*')

test: deps vet fmt-check
	$(GO) test -race -timeout $(GOTEST_TIMEOUT) ./...

clean:
	rm -rf $(BIN) dist
