# Spikewatch. `make demo` runs the main job locally; `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
BUF := $(GO) run github.com/bufbuild/buf/cmd/buf@v1.75.0
OS_PORT ?= 9200
export SPIKEWATCH_OPENSEARCH_URL ?= http://127.0.0.1:$(OS_PORT)
GOTEST_FLAGS ?= -count=1 -timeout 30m
FUZZTIME ?= 20s

.PHONY: all build test test-deps test-unit test-stacksets lint fmt generate bench fuzz demo \
        opensearch-up opensearch-down opensearch-status opensearch-reset synth deploy clean

all: build

build: ## binaries into bin/
	$(GO) build -o bin/ ./cmd/...

test: opensearch-up test-deps ## every test, against the local OpenSearch (started if needed)
	$(GO) vet ./...
	$(GO) test $(GOTEST_FLAGS) ./...
	@if [ -f stacksets/go.mod ]; then $(MAKE) test-stacksets; fi

test-deps: ## the pinned Python test tools (moto server, cfn-lint), installed when missing
	@python3 -c 'import moto, cfnlint' 2>/dev/null || python3 -m pip install -q -r scripts/requirements-test.txt

test-unit: ## tests that need no OpenSearch (integration tests skip)
	SPIKEWATCH_OPENSEARCH_URL= $(GO) test -count=1 ./...

test-stacksets:
	cd stacksets && $(GO) test $(GOTEST_FLAGS) ./...

lint: ## go vet, gofmt, buf lint and buf breaking
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^internal/gen/')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(BUF) lint
	@if git rev-parse --verify -q origin/main >/dev/null || git rev-parse --verify -q main >/dev/null; then \
	  if git show main:buf.yaml >/dev/null 2>&1; then $(BUF) breaking --against '.git#branch=main'; fi; fi

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '^internal/gen/')

generate: ## regenerate internal/gen from proto/
	$(BUF) generate

bench: ## benchmarks (numbers go into docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## a short run of every fuzz target
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done; done

demo: build opensearch-up ## the pipeline on a generated organization
	./scripts/demo.sh

opensearch-up: ## start the local OpenSearch (downloads once from Maven Central)
	OS_PORT=$(OS_PORT) ./scripts/opensearch-local.sh up

opensearch-down:
	OS_PORT=$(OS_PORT) ./scripts/opensearch-local.sh down

opensearch-status:
	OS_PORT=$(OS_PORT) ./scripts/opensearch-local.sh status

opensearch-reset: ## stop and delete the local node's data
	OS_PORT=$(OS_PORT) ./scripts/opensearch-local.sh reset

synth: ## CloudFormation templates into stacksets/cdk.out
	cd stacksets && $(GO) run . synth

deploy: ## cdk deploy (needs the CDK CLI and AWS credentials; see README)
	cd stacksets && npx --no-install cdk deploy --all $(CDK_ARGS)

clean:
	rm -rf bin stacksets/cdk.out
