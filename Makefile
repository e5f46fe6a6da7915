# dimirror — build, test and local tooling.
# `make test` is what CI runs: it installs what the suite needs (Go modules, Azurite from
# package-lock.json) and runs vet, the gofmt check, the whole race-enabled suite (the short
# fault-injection run included) and a few seconds of each fuzz target.

GO        ?= go
NPM       ?= npm
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOTEST_TIMEOUT ?= 8m

.PHONY: all build test vet fmt-check fmt deps go-deps node-deps clean package deploy

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

# The status page's browser test (internal/e2e) drives Debian's chromium headless; it is
# installed only when missing (the test itself installs nothing and fails without it).
CHROMIUM  := /usr/bin/chromium
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser-deps
browser-deps:
	@test -x $(CHROMIUM) || { \
		command -v apt-get >/dev/null 2>&1 || { echo "browser-deps: $(CHROMIUM) is missing and apt-get is not available: install Chromium there by hand" >&2; exit 1; }; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

vet: go-deps
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.local/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run 'make fmt'):"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.local/*')

test: deps browser-deps vet fmt-check
	$(GO) test -race -timeout $(GOTEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz-short FUZZTIME=3s

clean:
	rm -rf $(BIN) dist

# The zip-deploy package for Azure Functions (Flex Consumption, Linux): the linux/amd64 binary at
# bin/dimirror (host.json's defaultExecutablePath), host.json and every function folder at the app
# root. Written to dist/dimirror.zip; see docs/DEPLOY.md.
PACKAGE_ZIP := dist/dimirror.zip

package: go-deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/dimirror ./cmd/dimirror
	$(GO) run ./infra/cmd/pack -root . -binary $(BIN)/dimirror -out $(PACKAGE_ZIP)

# Zip-deploys the package to an existing Function App (created by infra/, e.g. with azd up):
#   make deploy FUNCTION_APP=<app name> RESOURCE_GROUP=<resource group>
# Both default to the deployment's outputs FUNCTION_APP_NAME and AZURE_RESOURCE_GROUP, which azd
# puts in the environment of its hooks.
FUNCTION_APP   ?= $(FUNCTION_APP_NAME)
RESOURCE_GROUP ?= $(AZURE_RESOURCE_GROUP)

deploy:
	@command -v az >/dev/null 2>&1 || { echo "deploy: the Azure CLI (az) is not installed; see https://learn.microsoft.com/cli/azure/install-azure-cli, then run az login" >&2; exit 1; }
	@test -n "$(FUNCTION_APP)" || { echo "deploy: FUNCTION_APP is not set: make deploy FUNCTION_APP=<function app name> RESOURCE_GROUP=<resource group> (the deployment's FUNCTION_APP_NAME output)" >&2; exit 1; }
	@test -n "$(RESOURCE_GROUP)" || { echo "deploy: RESOURCE_GROUP is not set: make deploy FUNCTION_APP=$(FUNCTION_APP) RESOURCE_GROUP=<resource group>" >&2; exit 1; }
	$(MAKE) package
	az functionapp deployment source config-zip --resource-group "$(RESOURCE_GROUP)" --name "$(FUNCTION_APP)" --src $(PACKAGE_ZIP)

# The local stack (README, "Run it"): Azurite (Table Storage), devbus (Service Bus), didev (a
# source and two targets) and `dimirror run`, all on loopback, state in .local/ (kept across
# restarts). Ctrl-C stops everything it started. Ports move with DEV_TABLES_PORT, DEV_BUS_PORT,
# DEV_SOURCE_PORT, DEV_WESTUS2_PORT, DEV_EASTUS_PORT and DEV_API_PORT (0 picks a free port):
#   make run DEV_API_PORT=8080
.PHONY: run demo

run: build node-deps
	@$(BIN)/devup run

# The same, unattended, on fresh data in .local/demo: requests a replication, trains a new model
# on the source, waits until every replica has succeeded, prints the table and the figures and
# stops; the exit status is 0 only if everything converged.
demo: build node-deps
	@$(BIN)/devup demo

# Benchmarks (docs/BENCHMARKS.md): the Go benchmarks of each step, then the driver, which runs
# `dimirror run` instances as child processes against the local stack with didev's S0 rate limits
# (about 20 minutes: seven runs of 300 models × 2 targets — 1, 2 and 4 instances, limits of 2 and
# 15 management calls/s, a competing client — dominate) and writes the report. It quotes the summary
# of the last `make chaos` (bin/chaos.txt) when there is one, and keeps the measurements in
# bin/bench.json (`go run ./cmd/bench -from bin/bench.json -out docs/BENCHMARKS.md` renders again).
.PHONY: bench chaos fuzz-short

bench: build node-deps
	{ $(GO) test -run '^$$' -bench . -benchtime=200x ./internal/bench 2>&1; echo $$? > $(BIN)/gobench.status; } | tee $(BIN)/gobench.txt; exit $$(cat $(BIN)/gobench.status)
	{ $(GO) test -run '^$$' -bench SweepTwoWay -benchtime=3x ./internal/e2e 2>&1; echo $$? > $(BIN)/gobench.status; } | tee -a $(BIN)/gobench.txt; exit $$(cat $(BIN)/gobench.status)
	$(GO) run ./cmd/bench -dimirror $(BIN)/dimirror -gobench $(BIN)/gobench.txt -chaos-summary $(BIN)/chaos.txt -json $(BIN)/bench.json -out docs/BENCHMARKS.md

# The full fault-injection suite (internal/chaos): 500+ replications through two `dimirror run`
# instances killed with SIGKILL at random points, under didev and devbus faults; it ends with a
# one-line summary (also in bin/chaos.txt). `go test ./internal/chaos` is its short variant.
# CHAOS_SEED=N replays a run's faults and kill points (0: a new seed, printed).
CHAOS_SEED ?= 0

chaos: build node-deps
	{ $(GO) test -count=1 -timeout 30m -run '^TestChaos$$' -v ./internal/chaos -chaos.full -chaos.seed=$(CHAOS_SEED) -chaos.dimirror=$(CURDIR)/$(BIN)/dimirror 2>&1; echo $$? > $(BIN)/chaos.status; } | tee $(BIN)/chaos.txt; exit $$(cat $(BIN)/chaos.status)

# A few seconds of each fuzz target (Go fuzzes one target per invocation): the webhook body, the
# custom-handler payload decoder, the Copy API error parser, devbus's frame decoder and didev's
# router. Corpora live in each package's testdata/fuzz.
FUZZTIME ?= 5s

fuzz-short: go-deps
	$(GO) test -run '^$$' -fuzz '^FuzzAuthorizeBody$$' -fuzztime $(FUZZTIME) ./handlers
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./shared/funcproto
	$(GO) test -run '^$$' -fuzz '^FuzzParseError$$' -fuzztime $(FUZZTIME) ./shared/docintel
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./emulators/devbus/amqpframe
	$(GO) test -run '^$$' -fuzz '^FuzzServe$$' -fuzztime $(FUZZTIME) ./emulators/didev
