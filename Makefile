# Every workflow of the sandbox broker. `make test` and `make run` set up what they need.
SHELL := /bin/bash
GO ?= go
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help check test lint bench deps tools vet fmt run build synth diff deploy cleanup-bench bootstrap-sizes cold-start

## help: this list of targets, from their ## lines.
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST) | awk -F': ' '{printf "  %-8s %s\n", $$1, $$2}'

# npm ci runs when node_modules is missing or older than the lock file.
node_modules/.installed: package-lock.json package.json
	@scripts/check-tools node
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed
	$(GO) mod download

tools: bin/aws-lambda-rie
	@scripts/check-tools node java chromium

# The Lambda runtime interface emulator, from the Go module proxy: the tests run the real
# bootstrap of a function under it.
RIE_MODULE := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
bin/aws-lambda-rie:
	GOBIN=$(CURDIR)/bin $(GO) install $(RIE_MODULE)

# RACE is empty for `make vet` and `make lint` on their own. make test sets it: vet and lint
# then check the race build its tests compile (the same files: none here is build-tagged
# race), so every package, the CDK's included, is compiled once instead of twice.
RACE ?=

## vet: go vet on every package.
vet:
	$(GO) vet $(RACE) ./...

# staticcheck, pinned, from the Go module proxy into ./bin (v0.8.x supports Go 1.26).
STATICCHECK_MODULE := honnef.co/go/tools/cmd/staticcheck@v0.8.2
bin/staticcheck:
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK_MODULE)

## lint: staticcheck on every package; each finding is fixed or carries a //lint:ignore reason.
lint: bin/staticcheck deps
	GOFLAGS='$(strip $(shell $(GO) env GOFLAGS) $(RACE))' bin/staticcheck ./...

GOFILES = $$(find . -name '*.go' -not -path './node_modules/*' -not -path './cdk.out/*')

## fmt: gofmt every Go file.
fmt:
	gofmt -w $(GOFILES)

## check: every piece each route and job lacks (README "Checklists") and every citation of docs that does not exist, in about a second, without Java.
# -vet=off: the loop is the tables' check alone; make test vets. Go's test cache reruns it
# when a file it read changed.
check:
	$(GO) test -vet=off ./internal/tablecheck ./internal/doccheck

## test: vet, lint and every test with the race detector, against DynamoDB Local.
# -vet=off: the vet target has just run every analyzer on the same code, tests included.
# -timeout only catches a hang: no test's verdict depends on the machine's speed, so a busy
# machine may take long.
test: RACE = -race
test: tools deps vet lint
	@unformatted=$$(gofmt -l $(GOFILES)); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	$(GO) test -race -count=1 -vet=off -timeout 30m ./...
	$(GO) test -run '^$$' -fuzz '^FuzzRequestParsing$$' -fuzztime 10s ./pkg/api
	$(GO) test -run '^$$' -fuzz '^FuzzAdminQueryParsing$$' -fuzztime 5s ./pkg/api

## bench: the allocation benchmark table: Lambda's instance model in process and over the local stack, the upstream strategy as baseline, without and with AWS's DynamoDB limits (a DynamoDB Local per row; about 25 minutes on 2 cores).
bench: tools deps
	$(GO) run ./cmd/poolbench

## cleanup-bench: the cleanup drain table (deletes in flight vs one at a time, fake CSP with delete latency and a 429 limiter, one DynamoDB Local; about 2 minutes).
cleanup-bench: tools deps
	$(GO) run ./cmd/cleanupbench

## run: the whole broker on 127.0.0.1 (DynamoDB Local, fake CSP, jobs, API Gateway emulator).
run: tools deps
	$(GO) build -o bin/broker-local ./cmd/local
	exec bin/broker-local

## build: every function as an arm64 bootstrap for provided.al2023, in build/<function>/.
FUNCTIONS = $(notdir $(patsubst %/,%,$(wildcard functions/*/)))
# The flags of every bootstrap build (infra's tests build with the same and check it).
BOOTSTRAP_FLAGS = -tags lambda.norpc,grpcnotrace -trimpath -ldflags="-s -w"
build:
	@rm -rf build
	@for f in $(FUNCTIONS); do \
		echo "build/$$f/bootstrap"; \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BOOTSTRAP_FLAGS) \
			-o build/$$f/bootstrap ./functions/$$f || exit 1; \
	done

## bootstrap-sizes: every bootstrap's bytes per kind of function (linux/arm64 and linux/amd64), written to testdata/bootstrap-sizes.json.
bootstrap-sizes:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	for arch in arm64 amd64; do \
		GOOS=linux GOARCH=$$arch CGO_ENABLED=0 $(GO) build $(BOOTSTRAP_FLAGS) -o "$$dir/linux/$$arch/" ./functions/... || exit 1; \
	done && \
	$(GO) run ./cmd/coldstart sizes -write testdata/bootstrap-sizes.json "$$dir"

## cold-start: each function's init as Lambda measures it, on this machine (package init, main; RUNS=15 starts each).
RUNS ?= 15
cold-start:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	CGO_ENABLED=0 $(GO) build $(BOOTSTRAP_FLAGS) -o "$$dir/worktree/" ./functions/... ./cmd/coldstart/emptyfunction && \
	$(GO) run ./cmd/coldstart init -runs $(RUNS) "$$dir/worktree"

# cdk runs `make build` itself before every synth, diff, deploy and watch (the build step of
# cdk.json), so no target here can ship stale bootstraps.
# CDK_ARGS passes context and options to cdk, e.g. CDK_ARGS="-c waf=true -c alarmEmail=ops@example.com".
CDK_ARGS ?=

## synth: the CloudFormation template in cdk.out/, without AWS credentials.
synth: deps
	npx --no-install cdk synth --quiet $(CDK_ARGS)

## diff: what a deploy would change, against the deployed stack (AWS credentials needed).
diff: deps
	npx --no-install cdk diff $(CDK_ARGS)

## deploy: cdk deploy of the whole stack (AWS credentials and a bootstrapped account needed).
deploy: deps
	npx --no-install cdk deploy $(CDK_ARGS)
