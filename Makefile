# changelens — build, test, benchmark.
SHELL := /bin/bash
GO    ?= go

TOOLS_BIN    := $(CURDIR)/.build/tools
# OCB pinned with the collector core it builds (see builder-config.yaml).
OCB_VERSION  := v0.165.0
OCB          := $(TOOLS_BIN)/builder-$(OCB_VERSION)
# mdatagen lives in the separate tools/ module: only v0.158.0 works here.
MDATAGEN     := $(TOOLS_BIN)/mdatagen

COMPONENT_DIRS   := $(wildcard receiver/*/ processor/*/ exporter/*/)
# Go sources and the files they embed (the schema's SQL).
COLLECTOR_INPUTS := builder-config.yaml go.mod go.sum \
	$(shell find receiver processor exporter internal \( -name '*.go' -not -name '*_test.go' \) -o -name '*.sql' 2>/dev/null)

.PHONY: all build test deps bench run generate clean

all: build

## build: every binary into bin/: the collector distribution (OCB output
## cached in .build/), the query API, the worker (stored verdicts,
## notifications) and the demo traffic generator
build: bin/otelcol-changelens bin/changelens-api bin/changelens-worker bin/changelens-demo

# go build is incremental by itself: always ask it.
.PHONY: bin/changelens-api bin/changelens-worker bin/changelens-demo
bin/changelens-api bin/changelens-worker bin/changelens-demo:
	$(GO) build -o $@ ./cmd/$(notdir $@)

$(OCB):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(TOOLS_BIN)/builder $@

# Rebuilt only when a collector input changed; OCB's module and Go's build
# cache keep a rebuild incremental.
bin/otelcol-changelens: $(COLLECTOR_INPUTS) | $(OCB)
	$(OCB) --config builder-config.yaml
	@mkdir -p bin
	cp .build/otelcol-changelens/otelcol-changelens $@.tmp && mv -f $@.tmp $@

# gotestsum prints each leg's failures and a closing count.
GOTESTSUM_VERSION := v1.13.0
GOTESTSUM         := $(TOOLS_BIN)/gotestsum-$(GOTESTSUM_VERSION)

# The two ClickHouse legs of `make test` (see testkit/chtest): Debian's
# clickhouse-server 18.16, the oldest supported server, and a current engine
# (26.x) from PyPI's chdb in .venv/.
LEG_18 := CHTEST_ENGINE=clickhouse-server CHTEST_EXPECT_VERSION=18.16.
LEG_26 := CHTEST_ENGINE=chdb CHTEST_EXPECT_VERSION=26.
# conformance/ (schemathesis) is a step of its own, after the two legs.
GO_TEST_PKGS = $(shell $(GO) list ./... | grep -v '/conformance$$')
# Every package whose tests start a ClickHouse server (they import testkit/chtest).
CH_TEST_PKGS = $(shell $(GO) list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' $(GO_TEST_PKGS) \
	| awk '{for (i = 1; i <= NF; i++) if ($$i ~ /\/testkit\/chtest$$/) { print $$1; break }}')

## deps: what make test needs beyond Go, each installed only when missing:
## Debian's clickhouse-server 18.16, ZooKeeper and chromium (apt-get,
## through sudo unless root; deploy/local/install.sh, which make run uses
## too), then chdb and schemathesis into .venv/ and axe-core (the browser
## tests' accessibility rules, pinned in testkit/browser/package-lock.json)
## into .build/npm/
deps:
	@deploy/local/install.sh clickhouse-server zookeeper python3-venv chromium npm
	@$(MAKE) --no-print-directory .venv/.chdb-installed $(AXE_STAMP)
	@echo "deps: clickhouse-server $$(dpkg-query -W -f='$${Version}' clickhouse-server 2>/dev/null || echo '?')," \
	  "zookeeper $$(dpkg-query -W -f='$${Version}' zookeeper 2>/dev/null || echo '?')," \
	  "chromium $$(dpkg-query -W -f='$${Version}' chromium 2>/dev/null || echo '?')," \
	  "axe-core $$(node -p 'require("./$(AXE_DIR)/node_modules/axe-core/package.json").version' 2>/dev/null || echo '?')," \
	  "$$(.venv/bin/python -c 'import importlib.metadata as m; print("chdb", m.version("chdb"), "chdb-core", m.version("chdb-core"), "schemathesis", m.version("schemathesis"))')"

## test: everything CI runs: unit tests, then every ClickHouse-backed test
## (integration, API, end-to-end, dashboards) on 18.16 and on 26.x, then
## schemathesis against the API's OpenAPI document (conformance/); installs
## what is missing first (deps), so a fresh Debian machine needs only Go
test: deps build $(GOTESTSUM)
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.build/*' -not -path './.run/*' -not -path './.venv/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@pkgs="$(CH_TEST_PKGS)"; [ -n "$$pkgs" ] || { echo "no ClickHouse-backed test packages found"; exit 1; }; \
	  rc=0; \
	  echo "== leg 1: every package, ClickHouse 18.16 (Debian's clickhouse-server)"; \
	  $(LEG_18) $(GOTESTSUM) --format pkgname-and-test-fails --jsonfile .build/test-18.16.json -- -count=1 -timeout 25m $(GO_TEST_PKGS) || rc=1; \
	  echo "== leg 2: the ClickHouse-backed packages, ClickHouse 26.x (chdb); not the cluster tests (no Keeper in chdb)"; \
	  $(LEG_26) $(GOTESTSUM) --format pkgname-and-test-fails --jsonfile .build/test-26.json -- -count=1 -timeout 25m -skip '^TestCluster' $$pkgs || rc=1; \
	  echo "== conformance: schemathesis (.venv) against /openapi.json, ClickHouse 18.16; any failure fails"; \
	  $(LEG_18) CHANGELENS_SCHEMATHESIS=$(CURDIR)/.venv/bin/st $(GO) test -count=1 -timeout 15m -run '^TestSchemathesis$$' -v ./conformance/ || rc=1; \
	  exit $$rc

# telemetrygen feeds BenchmarkPipelineCPU (make bench only). v0.161.0 is the
# newest the Go proxy serves (v0.149.0, v0.160.0, v0.161.0) and builds with
# our Go.
TELEMETRYGEN_VERSION := v0.161.0
TELEMETRYGEN         := $(TOOLS_BIN)/telemetrygen-$(TELEMETRYGEN_VERSION)

$(TELEMETRYGEN):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VERSION)
	mv $(TOOLS_BIN)/telemetrygen $@

$(GOTESTSUM):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)
	mv $(TOOLS_BIN)/gotestsum $@

# The current ClickHouse engine for the second leg, `make bench` and
# `CLICKHOUSE_ENGINE=chdb make run` (the one recipe that installs it).
.venv/.chdb-installed: requirements-test.txt
	@deploy/local/install.sh python3-venv
	python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
	@touch $@

# axe-core for testkit/browser's accessibility checks: the version and its
# sha512 are pinned in testkit/browser/package-lock.json, and npm ci installs
# exactly that (checking the hash) into .build/npm/, again only when the
# lockfile changed. --ignore-scripts: axe-core has no install scripts, and
# none of a package's should run here.
AXE_DIR   := .build/npm
AXE_LOCK  := testkit/browser/package.json testkit/browser/package-lock.json
AXE_STAMP := $(AXE_DIR)/.axe-installed

$(AXE_STAMP): $(AXE_LOCK)
	@mkdir -p $(AXE_DIR)
	cp $(AXE_LOCK) $(AXE_DIR)/
	cd $(AXE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# The commit before per-operation verdicts: make bench runs the worker's
# judging cycle (queryapi/usecase/cycle_bench_test.go, copied into its tree)
# and the cold /v1/dora there and here, on the same data, side by side
# (docs/performance.md). Its tree is a git worktree under .build/.
BENCH_ANCHOR := 7a6d0fa
ANCHOR_TREE  := .build/anchor-$(BENCH_ANCHOR)

## bench: processor and exporter benchmarks side by side with their anchors
bench: build .venv/.chdb-installed $(TELEMETRYGEN)
	@echo "== processor per span beside spanmetricsconnector: no flags, flags as span events, as evaluation spans, error kinds; log-based flags per record"
	$(GO) test -run '^$$' -bench 'PerSpan|PerLogRecord' -benchtime 3000x ./processor/changelensprocessor/
	$(GO) test -run '^$$' -bench . -benchmem ./exporter/changelensexporter/
	$(GO) test -run '^$$' -bench CollectorThroughput -benchtime 3000x ./e2e/
	@echo "== the whole pipeline's CPU per million spans (telemetrygen; bare, processor, processor + exporter into ClickHouse)"
	TELEMETRYGEN=$(TELEMETRYGEN) $(GO) test -v -run '^$$' -bench PipelineCPU -benchtime 1x -timeout 60m ./e2e/
	$(GO) test -run '^$$' -bench 'CompareDay|JudgeEvidence' -benchtime 20x -benchmem ./queryapi/analysis/
	@echo "== store benchmarks, ClickHouse 18.16"; $(LEG_18) $(GO) test -run '^$$' -bench 'DORA|Deployments|Latency|Compare' -benchtime 20x -timeout 60m ./queryapi/usecase/
	@echo "== store benchmarks, ClickHouse 26.x (chdb)"; $(LEG_26) $(GO) test -run '^$$' -bench 'DORA|Deployments|Latency|Compare' -benchtime 20x -timeout 60m ./queryapi/usecase/
	@echo "== API load (bin/changelens-api under 1-200 clients), ClickHouse 18.16"; $(LEG_18) $(GO) test -run '^$$' -bench APILoad -benchtime 1x -timeout 30m ./loadtest/
	@echo "== the web UI's pages' data, cold and on a running API (bin/changelens-api, stored verdicts), ClickHouse 18.16"; $(LEG_18) $(GO) test -run '^$$' -bench UIPages -benchtime 1x -timeout 30m ./loadtest/
	@$(MAKE) --no-print-directory bench-verdicts
	@$(MAKE) --no-print-directory bench-attribution

## bench-verdicts: the worker's judging cycle and the cold /v1/dora before
## per-operation verdicts ($(BENCH_ANCHOR)) and now, ClickHouse 18.16
.PHONY: bench-verdicts
bench-verdicts:
	@test -d $(ANCHOR_TREE) || git worktree add --detach $(ANCHOR_TREE) $(BENCH_ANCHOR)
	cp queryapi/usecase/cycle_bench_test.go $(ANCHOR_TREE)/queryapi/usecase/
	@echo "== before per-operation verdicts ($(BENCH_ANCHOR))"
	cd $(ANCHOR_TREE) && $(LEG_18) $(GO) test -run '^$$' -bench 'WorkerCycle|DORA/.*/api-cold' -benchtime 10x -timeout 60m ./queryapi/usecase/
	@echo "== now"
	$(LEG_18) $(GO) test -run '^$$' -bench 'WorkerCycle|DORA/.*/api-cold' -benchtime 10x -timeout 60m ./queryapi/usecase/

# The commit before attribution (issue "cause, not coincidence"): make
# bench-attribution times a cold /v1/deployments/{id}/impact there and here
# (queryapi/usecase/impact_bench_test.go, copied into its tree), 1.3M events.
ATTRIBUTION_ANCHOR := 3dd208d
ATTRIBUTION_TREE   := .build/anchor-$(ATTRIBUTION_ANCHOR)

## bench-attribution: a cold /impact before attribution ($(ATTRIBUTION_ANCHOR)) and now,
## and the cost of the service graph per million spans, ClickHouse 18.16 and 26.x
.PHONY: bench-attribution
bench-attribution: .venv/.chdb-installed
	@test -d $(ATTRIBUTION_TREE) || git worktree add --detach $(ATTRIBUTION_TREE) $(ATTRIBUTION_ANCHOR)
	cp queryapi/usecase/impact_bench_test.go $(ATTRIBUTION_TREE)/queryapi/usecase/
	@echo "== before attribution ($(ATTRIBUTION_ANCHOR))"
	cd $(ATTRIBUTION_TREE) && CHANGELENS_BENCH_PER_MINUTE=3 $(LEG_18) $(GO) test -run '^$$' -bench 'Impact' -benchtime 20x -timeout 60m ./queryapi/usecase/
	@echo "== now"
	CHANGELENS_BENCH_PER_MINUTE=3 $(LEG_18) $(GO) test -run '^$$' -bench 'Impact' -benchtime 20x -timeout 60m ./queryapi/usecase/
	@echo "== the service graph, ClickHouse 18.16"; $(LEG_18) $(GO) test -run '^$$' -bench Graph -benchtime 10x ./queryapi/store/
	@echo "== the service graph, ClickHouse 26.x (chdb)"; $(LEG_26) $(GO) test -run '^$$' -bench Graph -benchtime 10x ./queryapi/store/

## run: ClickHouse, the collector, the API and the demo traffic generator; Ctrl-C stops all
run:
	@deploy/local/run.sh

## generate: regenerate mdatagen output for every component
generate: $(MDATAGEN)
	@for d in $(COMPONENT_DIRS); do (cd $$d && $(MDATAGEN) metadata.yaml) || exit 1; done

$(MDATAGEN):
	@mkdir -p $(TOOLS_BIN)
	cd tools && $(GO) build -o $@ go.opentelemetry.io/collector/cmd/mdatagen

clean:
	rm -rf bin .build .venv

## proto: regenerate queryapi/gen (Go, gRPC, gateway, OpenAPI) from queryapi/proto — offline:
## Debian's protoc 3.21 (well-known types in /usr/include), googleapis and openapiv2
## annotations vendored in third_party/, plugins pinned to go.mod's versions; then
## queryapi/proto/openapifix completes the OpenAPI document where the plugin cannot
## (parameter limits, enum and time spellings; see its doc comment). The output is
## committed: `make build`/`make test` never need protoc.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPC_GATEWAY_VERSION       := v2.33.0
PROTO_PLUGINS := $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/protoc-gen-go-grpc \
	$(TOOLS_BIN)/protoc-gen-grpc-gateway $(TOOLS_BIN)/protoc-gen-openapiv2

.PHONY: proto
proto: $(PROTO_PLUGINS)
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	@mkdir -p queryapi/gen/openapiv2
	PATH="$(TOOLS_BIN):$$PATH" protoc -I queryapi/proto -I third_party/googleapis -I third_party/grpc-gateway -I /usr/include \
		--go_out=queryapi/gen --go_opt=paths=source_relative \
		--go-grpc_out=queryapi/gen --go-grpc_opt=paths=source_relative \
		--grpc-gateway_out=queryapi/gen --grpc-gateway_opt=paths=source_relative \
		--openapiv2_out=queryapi/gen/openapiv2 --openapiv2_opt=json_names_for_fields=false,disable_default_errors=true \
		queryapi/proto/changelens/v1/query.proto
	$(GO) run ./queryapi/proto/openapifix queryapi/gen/openapiv2/changelens/v1/query.swagger.json

$(TOOLS_BIN)/protoc-gen-go:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS_BIN)/protoc-gen-go-grpc:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS_BIN)/protoc-gen-grpc-gateway:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(TOOLS_BIN)/protoc-gen-openapiv2:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
