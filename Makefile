# changelens — build, test, benchmark.
SHELL := /bin/bash
GO    ?= go

TOOLS_BIN    := $(CURDIR)/.build/tools
# OCB pinned with the collector core it builds (see builder-config.yaml).
OCB_VERSION  := v0.164.0
OCB          := $(TOOLS_BIN)/builder-$(OCB_VERSION)
# mdatagen lives in the separate tools/ module: only v0.158.0 works here.
MDATAGEN     := $(TOOLS_BIN)/mdatagen

COMPONENT_DIRS   := $(wildcard processor/*/ exporter/*/)
COLLECTOR_INPUTS := builder-config.yaml go.mod go.sum \
	$(shell find processor exporter internal -name '*.go' -not -name '*_test.go' 2>/dev/null)

.PHONY: all build test bench run generate clean

all: build

## build: the collector distribution (OCB output cached in .build/) into bin/
build: bin/otelcol-changelens

$(OCB):
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(TOOLS_BIN)/builder $@

# Rebuilt only when a collector input changed; OCB's module and Go's build
# cache keep a rebuild incremental.
bin/otelcol-changelens: $(COLLECTOR_INPUTS) | $(OCB)
	$(OCB) --config builder-config.yaml
	@mkdir -p bin
	cp .build/otelcol-changelens/otelcol-changelens $@

## test: everything CI runs (unit, integration against a real ClickHouse, end-to-end)
test: build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

## bench: processor and exporter benchmarks side by side with their anchors
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./processor/...

## run: the local demo (coming with the query API and dashboards)
run:
	@echo "make run is not there yet: it will start ClickHouse, the collector, the API and a demo"
	@echo "traffic generator. Today: 'make build' and 'bin/otelcol-changelens --config config/collector.yaml'."

## generate: regenerate mdatagen output for every component
generate: $(MDATAGEN)
	@for d in $(COMPONENT_DIRS); do (cd $$d && $(MDATAGEN) metadata.yaml) || exit 1; done

$(MDATAGEN):
	@mkdir -p $(TOOLS_BIN)
	cd tools && $(GO) build -o $@ go.opentelemetry.io/collector/cmd/mdatagen

clean:
	rm -rf bin .build
