# ragops Makefile (kubebuilder v4 layout). `make help` lists the targets.

VERSION ?= $(shell cat VERSION)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMG_REPO ?= ragops
# Images: versioned tags only (never latest: a kubelet would then try to pull them).
IMG ?= $(IMG_REPO)/ragops-operator:$(VERSION)
RAGSERVER_IMG ?= $(IMG_REPO)/ragserver:$(VERSION)
FAKEOPENAI_IMG ?= $(IMG_REPO)/fakeopenai:$(VERSION)
CHROMA_IMG ?= ragops-local/chroma:1.0.0

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
GO ?= go
export CGO_ENABLED ?= 0

## Tool and asset locations (all cached under bin/, built once)
LOCALBIN ?= $(CURDIR)/bin
CLUSTER_BIN ?= $(LOCALBIN)/cluster
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s-assets
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
KUBECTL ?= $(CLUSTER_BIN)/kubectl
HELM ?= $(CLUSTER_BIN)/helm
CHROMA ?= $(LOCALBIN)/chroma/node_modules/.bin/chroma
VERSITYGW_VERSION ?= v1.8.0
VERSITYGW ?= $(LOCALBIN)/versitygw-$(VERSITYGW_VERSION)/versitygw
# metrics-server for the autoscaling e2e: the version is the one its build module's go.mod requires.
METRICS_SERVER_MOD := hack/e2e-autoscaling/metrics-server
METRICS_SERVER_VERSION := $(shell awk '$$1 == "sigs.k8s.io/metrics-server" {print $$2}' $(METRICS_SERVER_MOD)/go.mod)
METRICS_SERVER ?= $(CLUSTER_BIN)/metrics-server-$(METRICS_SERVER_VERSION)
NODE_CLIENTS ?= $(LOCALBIN)/node-clients
CHROMIUM ?= /usr/bin/chromium
LOCALCLUSTER := hack/localcluster/localcluster.sh

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
CHROMADB_NPM_VERSION ?= 3.0.3
CHROMADB_BINDINGS_VERSION ?= 0.1.3

LDFLAGS := -s -w -X github.com/ragops/ragops/internal/version.Version=$(VERSION) -X github.com/ragops/ragops/internal/version.Commit=$(COMMIT)

# Environment every test run gets: the envtest binaries, the real Chroma server, the npm OpenAI
# clients and Chromium (test/clients).
TEST_ENV = KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) RAGOPS_CHROMA_BIN=$(CHROMA) RAGOPS_HELM_BIN=$(HELM) RAGOPS_KUBECTL_BIN=$(KUBECTL) \
	RAGOPS_NODE_CLIENTS_DIR=$(NODE_CLIENTS) RAGOPS_CHROMIUM_BIN=$(CHROMIUM) RAGOPS_VERSITYGW_BIN=$(VERSITYGW)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC (ClusterRole) from the API types and markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./internal/controller/..." output:crd:artifacts:config=config/crd/bases
	@# The chart carries generated copies: the CRD and the manager's RBAC rules.
	@mkdir -p charts/ragops/crds charts/ragops/files
	@cp config/crd/bases/*.yaml charts/ragops/crds/
	@sed -n '/^rules:/,$$p' config/rbac/role.yaml | tail -n +2 >charts/ragops/files/manager-rules.yaml
	@# ...and of the observability sources in config/: the dashboard, and the spec of the alert rules.
	@cp config/grafana/ragops-dashboard.json charts/ragops/files/
	@sed -n '/^spec:/,$$p' config/prometheus/ragops-rules.yaml | tail -n +2 >charts/ragops/files/ragops-rules.yaml

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet (also on the end-to-end suite, behind its build tag, and the PDF extractor comparison module).
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/
	cd test/pdfcompare && $(GO) vet .

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (config: .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: test
test: manifests generate fmt vet envtest chroma helm node-clients chromium poppler versitygw ## Run all tests: envtest (real kube-apiserver), real Chroma, OpenAI clients, Chromium, pdftotext, versitygw (S3), a Git server, fuzz smoke.
	$(TEST_ENV) $(GO) test ./... -count=1 -timeout 20m
	$(MAKE) --no-print-directory test-observability
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s

# test/observability is a module of its own (Prometheus' rule and PromQL parsers bring a large
# dependency tree): the dashboard and alerts against the metrics of a running operator and server.
.PHONY: test-observability
test-observability: envtest ## Parse the alert rules and dashboard with Prometheus' parsers; check every metric they name on a running operator and server.
	cd test/observability && KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test ./... -count=1 -timeout 10m

SOAK_KILLS ?= 500
.PHONY: soak
SOAK_SCAN_CHUNKS ?= 100000
soak: chroma ## Long data-safety runs: SOAK_KILLS SIGKILLs of the real ragserver while it writes (make test does 50); a scan of SOAK_SCAN_CHUNKS chunks on Chroma (make test: 20,000).
	RAGOPS_SOAK_KILLS=$(SOAK_KILLS) $(GO) test ./test/crash/ -run TestCrashLoop -count=1 -v -timeout 60m
	$(TEST_ENV) RAGOPS_SCAN_CHUNKS=$(SOAK_SCAN_CHUNKS) $(GO) test ./internal/vectorstore/chromastore/ -run TestScanOfALargeCollection -count=1 -v -timeout 30m

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s).
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed -E 's/func (Fuzz[A-Za-z0-9_]*).*/\1/'); do \
	    echo "fuzz $$t $$f ($(FUZZTIME))"; \
	    $(GO) test $$t -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

.PHONY: bench
bench: chroma ## Run the benchmarks (real Chroma, fake model API with injected latency).
	$(TEST_ENV) $(GO) test ./... -run '^$$' -bench . -benchmem -count=1 -timeout 30m

# make eval: the retrieval benchmark (test/eval): the real ragserver, offline, on the embedded store
# and on a real Chroma, against known-item queries built from the Go standard library's docs.
EVAL_QUERIES ?= 1000
EVAL_MODES ?= vector,lexical,hybrid
# The lexical weights of hybrid fusion measured beside the modes (the choice of rag.LocalLexicalWeight).
EVAL_WEIGHTS ?= 0.5,0.7,0.8,0.9,0.95
.PHONY: eval
eval: chroma ## Print Recall@1/5/10, MRR@10, nDCG@10 and latency of /retrieve per store and mode, beside a BM25 baseline (EVAL_QUERIES queries).
	$(TEST_ENV) $(GO) run ./test/eval -queries $(EVAL_QUERIES) -modes "$(EVAL_MODES)" -weights "$(EVAL_WEIGHTS)"

.PHONY: eval-ci
eval-ci: chroma ## The CI version of eval: 300 queries; fails when a store or mode falls below test/eval/floors.json.
	$(TEST_ENV) $(GO) run ./test/eval -queries 300 -modes "$(EVAL_MODES)" -floors test/eval/floors.json

BENCH_OPERATOR_ARGS ?=
.PHONY: bench-operator
bench-operator: envtest ## Operator scale benchmark (test/scale): 1,000 RagServices beside 10,000 Secrets, the real manager, an audit log; prints a table.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) run ./test/scale $(BENCH_OPERATOR_ARGS)

.PHONY: bench-operator-ci
bench-operator-ci: envtest ## The scale benchmark at CI size (100 RagServices, 1,000 Secrets, 10 s idle); fails on extra or idle writes.
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) run ./test/scale -ragservices 100 -secrets 1000 -idle 10s \
	  -failing 100 -backoff-window 30s $(BENCH_OPERATOR_ARGS)

# make pdf-compare: the PDF text extractors measured on the same files (test/pdfcompare, a module of
# its own so that the candidates stay out of go.mod); PDF_COMPARE_ARGS may add PDF paths.
PDF_COMPARE_ARGS ?=
.PHONY: pdf-compare
pdf-compare: poppler ## Compare pdftotext with the pure-Go PDF extractors (quality and time) on the docformat fixtures.
	cd test/pdfcompare && $(GO) run . $(PDF_COMPARE_ARGS)

BENCH_INDEX_SIZES ?= 25,100
.PHONY: bench-index
bench-index: chroma ## Indexer benchmark (test/indexbench): BENCH_INDEX_SIZES MiB of the Go distribution's text through ragserver ingest into a real Chroma: MB/s, docs/s, peak RSS, re-sync cost.
	RAGOPS_CHROMA_BIN=$(CHROMA) $(GO) run ./test/indexbench -goroot "$$($(GO) env GOROOT)" -sizes $(BENCH_INDEX_SIZES)

.PHONY: verify
verify: ## Regenerate everything and fail when the tree differs from git.
	$(MAKE) --no-print-directory manifests generate fmt
	$(GO) mod tidy
	cd test/pdfcompare && $(GO) mod tidy
	cd test/observability && $(GO) mod tidy
	$(MAKE) --no-print-directory docker-deps
	@if [ -n "$$(git status --porcelain -- . ':!bin')" ]; then \
	  echo "verify: generated files or go.mod are stale; run 'make manifests generate fmt' and 'go mod tidy' and commit:"; \
	  git status --porcelain; git --no-pager diff --stat; exit 1; fi
	@echo "verify: clean"

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager and ragserver binaries into bin/.
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/ragserver ./cmd/ragserver

.PHONY: run
run: manifests generate fmt vet ## Run the operator against the cluster in ~/.kube/config (or KUBECONFIG).
	$(GO) run ./cmd/manager --ragserver-image $(RAGSERVER_IMG)

.PHONY: run-ragserver
run-ragserver: ## Run the RAG server alone on the sample documents (embedded store, offline mode).
	DOCS_DIR=sample_docs $(GO) run ./cmd/ragserver

##@ Deployment

.PHONY: install
install: manifests kubectl ## Install the CRDs into the cluster of KUBECONFIG.
	$(KUBECTL) kustomize config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kubectl ## Uninstall the CRDs.
	$(KUBECTL) kustomize config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kubectl ## Deploy the operator with kustomize (config/default) using IMG.
	$(MAKE) --no-print-directory deploy-overlay
	$(KUBECTL) kustomize $(LOCALBIN)/deploy | $(KUBECTL) apply --server-side -f -

# deploy-overlay writes bin/deploy, a kustomization over config/default that sets the images.
.PHONY: deploy-overlay
deploy-overlay:
	@mkdir -p $(LOCALBIN)/deploy
	@printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
	  'resources:' '- ../../config/default' 'images:' '- name: ragops/ragops-operator' \
	  '  newName: $(firstword $(subst :, ,$(IMG)))' '  newTag: "$(lastword $(subst :, ,$(IMG)))"' \
	  >$(LOCALBIN)/deploy/kustomization.yaml

.PHONY: build-installer
build-installer: manifests kubectl deploy-overlay ## Write dist/install.yaml: the CRD and the operator in one file (uses IMG).
	@mkdir -p dist
	$(KUBECTL) kustomize $(LOCALBIN)/deploy >dist/install.yaml
	@echo "wrote dist/install.yaml"

.PHONY: undeploy
undeploy: kubectl ## Remove the operator deployed by `make deploy`.
	$(KUBECTL) kustomize config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Images

# BASES=local (default) builds the base images from Debian packages and this machine's Go toolchain
# (`make base-images`), for machines that cannot pull; BASES=public uses the Dockerfile's pinned
# public bases.
BASES ?= local
LOCAL_BUILDER_IMAGE ?= ragops-local/golang:1.26-bookworm
LOCAL_DEBIAN_IMAGE ?= ragops-local/debian:bookworm
DOCKER_BUILD_ARGS = --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
	$(if $(filter local,$(BASES)),--build-arg BUILDER_IMAGE=$(LOCAL_BUILDER_IMAGE))
# The cluster's state dir holds unix sockets, whose paths may not exceed 107 bytes: in a deep checkout
# it moves to a short per-checkout folder under /var/tmp.
LOCALCLUSTER_DIR ?= $(shell d='$(CURDIR)/.localcluster'; if [ $${#d} -le 56 ]; then echo "$$d"; \
	else echo "/var/tmp/ragops-lc-$$(printf %s '$(CURDIR)' | sha256sum | cut -c1-12)"; fi)
export LOCALCLUSTER_DIR

.PHONY: docker-deps
docker-deps: ## Write hack/docker/deps.txt: the packages the binaries import (precompiled in a Docker layer).
	@$(GO) list -deps -f '{{if not .Standard}}{{if .Module}}{{if not .Module.Main}}{{.ImportPath}}{{end}}{{end}}{{end}}' ./cmd/... | LC_ALL=C sort >hack/docker/deps.txt

.PHONY: docker-engine
docker-engine: ## Start a Docker daemon when none runs (installs the docker.io package if needed).
	@docker info >/dev/null 2>&1 || LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) docker

.PHONY: base-images
base-images: docker-engine ## Build the local stand-ins for the public base images (debootstrap + host Go).
	hack/images/base-images.sh

.PHONY: docker-build
docker-build: docker-deps docker-engine $(if $(filter local,$(BASES)),base-images) ## Build the operator, ragserver, fake model API and Chroma images.
	docker build $(DOCKER_BUILD_ARGS) --target manager -t $(IMG) .
	docker build $(DOCKER_BUILD_ARGS) --target ragserver -t $(RAGSERVER_IMG) .
	docker build $(DOCKER_BUILD_ARGS) --target fakeopenai -t $(FAKEOPENAI_IMG) .
	$(MAKE) --no-print-directory chroma-image
	@docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^($(IMG)|$(RAGSERVER_IMG)|$(FAKEOPENAI_IMG)|$(CHROMA_IMG))\s' | sort

.PHONY: test-compose
test-compose: docker-build ## docker-compose.yml for real: up, ingest, query, down, up (data kept), down -v.
	hack/compose-test.sh

.PHONY: chroma-image
chroma-image: docker-engine $(if $(filter local,$(BASES)),base-images) ## Build the local Chroma 1.0.0 image (tests and docker compose).
	docker build $(if $(filter local,$(BASES)),--build-arg BASE_IMAGE=$(LOCAL_DEBIAN_IMAGE)) -t $(CHROMA_IMG) hack/images/chroma

.PHONY: docker-push
docker-push: ## Push the operator and ragserver images (set IMG_REPO to your registry path).
	docker push $(IMG)
	docker push $(RAGSERVER_IMG)

##@ End to end (a real cluster)

.PHONY: test-e2e
test-e2e: docker-build helm kubectl metrics-server ## The e2e tests (autoscaling, users' sequence, sources) on one real cluster (the local one unless KUBECONFIG is set); E2E_RUN=REGEXP selects.
	IMG=$(IMG) RAGSERVER_IMG=$(RAGSERVER_IMG) FAKEOPENAI_IMG=$(FAKEOPENAI_IMG) CHROMA_IMG=$(CHROMA_IMG) \
	KUBECTL=$(KUBECTL) HELM=$(HELM) CLUSTER_BIN=$(CLUSTER_BIN) METRICS_SERVER_BIN=$(METRICS_SERVER) \
	METRICS_SERVER_VERSION=$(METRICS_SERVER_VERSION) E2E_RUN='$(E2E_RUN)' hack/e2e.sh

.PHONY: test-e2e-autoscaling
test-e2e-autoscaling: E2E_RUN = ^TestAutoscalingOnCluster$$
test-e2e-autoscaling: test-e2e ## Only the autoscaling test of make test-e2e: HPA up to 3 under load and back to 1; prints the times.

.PHONY: cluster-up
cluster-up: ## Build (once) and start the local single-node cluster; prints its kubeconfig path.
	$(LOCALCLUSTER) deps
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) build
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and clean the host.
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) down

##@ Tools and test assets (cached in bin/)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT):
	GOBIN=$(LOCALBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: envtest
envtest: ## Build kube-apiserver (multi-call k8s binary), etcd and kubectl from Go modules; link them for envtest.
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) build k8s etcd kubectl
	@mkdir -p $(ENVTEST_ASSETS)
	@ln -sfn ../cluster/k8s $(ENVTEST_ASSETS)/kube-apiserver
	@ln -sfn ../cluster/etcd $(ENVTEST_ASSETS)/etcd
	@ln -sfn ../cluster/kubectl $(ENVTEST_ASSETS)/kubectl

.PHONY: kubectl
kubectl:
	@LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) build kubectl

.PHONY: helm
helm: ## Build helm from Go modules into bin/cluster.
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) build helm

.PHONY: netpol
netpol: ## Build kube-network-policies (the local cluster's NetworkPolicy enforcement) from Go modules into bin/cluster.
	LOCALCLUSTER_BIN=$(CLUSTER_BIN) $(LOCALCLUSTER) build netpol

.PHONY: metrics-server
metrics-server: $(METRICS_SERVER) ## Build metrics-server (Go modules; the autoscaling e2e) into bin/cluster/metrics-server-<version>.
$(METRICS_SERVER):
	@test -n "$(METRICS_SERVER_VERSION)" || { echo "no sigs.k8s.io/metrics-server requirement in $(METRICS_SERVER_MOD)/go.mod"; exit 1; }
	mkdir -p $(dir $(METRICS_SERVER))
	cd $(METRICS_SERVER_MOD) && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' \
		-o $(abspath $(METRICS_SERVER)).tmp sigs.k8s.io/metrics-server/cmd/metrics-server
	mv -f $(METRICS_SERVER).tmp $(METRICS_SERVER)

.PHONY: chroma
chroma: $(CHROMA) ## Install the Chroma 1.0.0 server (npm) into bin/chroma.
$(CHROMA):
	mkdir -p $(LOCALBIN)/chroma
	cd $(LOCALBIN)/chroma && npm install --no-audit --no-fund --loglevel=error \
	  chromadb@$(CHROMADB_NPM_VERSION) chromadb-js-bindings-linux-x64-gnu@$(CHROMADB_BINDINGS_VERSION)
	@test -x $(CHROMA)

# versitygw: a real S3-compatible server (posix backend) for the S3 source tests. Built once from Go
# modules (a big build: niced, cached under bin/ by version); `make -j` builds it beside the other tools.
.PHONY: versitygw
versitygw: $(VERSITYGW) ## Build the versitygw S3 server (Go modules) into bin/versitygw-<version>.
$(VERSITYGW):
	mkdir -p $(dir $(VERSITYGW))
	GOBIN=$(dir $(VERSITYGW)) CGO_ENABLED=0 nice -n 10 $(GO) install -trimpath github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	@test -x $(VERSITYGW)

.PHONY: node-clients
node-clients: $(NODE_CLIENTS)/node_modules/.package-lock.json ## Install the pinned openai and LangChain.js npm packages (test/clients/node) into bin/node-clients.
$(NODE_CLIENTS)/node_modules/.package-lock.json: test/clients/node/package.json test/clients/node/package-lock.json
	mkdir -p $(NODE_CLIENTS)
	cp test/clients/node/package.json test/clients/node/package-lock.json $(NODE_CLIENTS)/
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	@test -f $@ && touch $@

.PHONY: poppler
poppler: ## Install Debian's poppler-utils (pdftotext: ragserver reads PDFs with it) unless it is there.
	@command -v pdftotext >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y poppler-utils || { apt-get update && apt-get install -y poppler-utils; }; }
	@command -v pdftotext >/dev/null

.PHONY: chromium
chromium: ## Install Debian's chromium (the browser of the chat page test) unless it is there.
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }
	@test -x $(CHROMIUM)
