# go.temporal.io/server needs Go >= 1.26.10; the module proxy serves this
# toolchain, and the go command fetches it on first use.
export GOTOOLCHAIN := go1.27.3

GO ?= go
# Tests read real public inputs (HL7, FHIR, Stripe events) in place from the
# shared cases folder beside the repository.
export CAREBOOK_SHARED_CASES ?= $(abspath $(CURDIR)/../shared/cases)
# workflowcheck is Temporal's determinism linter for workflow code.
WORKFLOWCHECK_VERSION ?= v0.6.0

.PHONY: dev build test vet fmt-check lint services tools bench bench-labs clean

## dev: build and run the whole product with demo data (needs Postgres and Redis)
dev: tools build
	./bin/carebook dev

## tools: the local peers the product and its tests run against
tools:
	$(GO) install github.com/stripe/stripe-mock@v0.203.0
	$(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	$(GO) install github.com/axllent/mailpit@v1.33.1

build:
	$(GO) build -o bin/carebook ./cmd/carebook

## test: gofmt check, go vet, and every test against the local Postgres and Redis
# The api package alone runs a few minutes; on a loaded machine it can pass
# go test's default 10-minute limit without anything being wrong.
test: services tools fmt-check vet
	$(GO) test -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.data/*'))"; \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

## lint: vet, gofmt, and workflowcheck over the workflows
lint: vet fmt-check
	$(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)
	"$$($(GO) env GOPATH)/bin/workflowcheck" ./workflows/...

services:
	./.ci/services

## bench: load run against a running `make dev` (see README)
bench:
	$(GO) run ./bench

# BENCH_LABS_FLAGS passes flags to the MLLP run (go run ./bench -labs -h).
BENCH_LABS_FLAGS ?=

## bench-labs: parser throughput, then lab messages over MLLP against a
## running dev (`make dev`: MLLP 127.0.0.1:2575, database carebook). For a
## dev apart from anyone else's, start it with its own ports and database:
##   CAREBOOK_HTTP_ADDR=127.0.0.1:18080 CAREBOOK_TEMPORAL_PORT=17233
##   CAREBOOK_TEMPORAL_UI_PORT=18233 CAREBOOK_MLLP_ADDR=127.0.0.1:12575
##   CAREBOOK_DATA_DIR=/tmp/bench-dev
##   CAREBOOK_DATABASE_URL=postgres://carebook_app@127.0.0.1:5432/carebook_bench?sslmode=disable
##   CAREBOOK_ADMIN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/carebook_bench?sslmode=disable
##   ./bin/carebook dev
## and run make bench-labs BENCH_LABS_FLAGS='-mllp 127.0.0.1:12575
##   -db postgres://postgres@127.0.0.1:5432/carebook_bench?sslmode=disable'
bench-labs:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./hl7 ./labs
	$(GO) run ./bench -labs $(BENCH_LABS_FLAGS)

clean:
	rm -rf bin
