# nanofaas control plane (Go). `make run` starts it with the embedded defaults; `make test` runs
# every test with the race detector. CI runs `make lint test` (see .ci/run).
GO          ?= go
BIN         ?= bin
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
RUN_ARGS    ?=

.PHONY: all build build-lite run test kube-binaries helm lint fmt vet staticcheck bench bench-smoke microbench docs clean

all: build

EXAMPLES    := word-stats json-transform

build:
	$(GO) build -o $(BIN)/control-plane ./cmd/control-plane
	@for ex in $(EXAMPLES); do $(GO) build -o $(BIN)/examples/$$ex ./examples/$$ex || exit 1; done

# A control plane without the Kubernetes client (no k8s backend, no image validator): 18 MB
# instead of 34 MB, ~12 MiB idle RSS instead of ~18 MiB.
build-lite:
	$(GO) build -tags nok8s -o $(BIN)/control-plane-lite ./cmd/control-plane

# The control plane with the embedded defaults, the process backend and the examples registered.
run: build
	./$(BIN)/control-plane --register-examples --nanofaas.deployment.default-backend=process $(RUN_ARGS)

# The Kubernetes tests run against a real kube-apiserver + etcd built from the Go module proxy
# (tools/kube, cached in ~/.cache/nanofaas; the first build takes several minutes).
# The deploy artifact tests render the Helm chart with helm, installed from the module proxy.
test: kube-binaries helm
	NANOFAAS_KUBE_BIN_DIR=$$(./scripts/kube-binaries.sh) NANOFAAS_HELM=$(HELM_DIR)/helm $(GO) test -race -count=1 ./...

kube-binaries:
	@./scripts/kube-binaries.sh >/dev/null

HELM_VERSION ?= v3.22.0
HELM_DIR     ?= $(HOME)/.cache/nanofaas/helm-$(HELM_VERSION)
helm:
	@test -x $(HELM_DIR)/helm || GOBIN=$(HELM_DIR) CGO_ENABLED=0 $(GO) install -trimpath \
	  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags nok8s ./cmd/control-plane ./internal/controlplane

staticcheck:
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

# The load harness: control plane vs direct calls vs a bare reverse proxy, on loopback.
bench:
	$(GO) run ./cmd/nanofaas-bench -out bench-results.json -md bench-results.md $(BENCH_ARGS)

bench-smoke:
	$(GO) run ./cmd/nanofaas-bench -smoke $(BENCH_ARGS)

# Go micro-benchmarks of every package.
microbench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)

docs:
	UPDATE_README=1 $(GO) test -count=1 -run TestREADME ./internal/config
