/*
Copyright 2026 The ragops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package contract is the contract between the operator and the RAG server:
// the environment variables the operator sets, and the bounds and defaults of
// the settings that both the RagService API and the server's configuration
// check. The API types (api/v1alpha1), the operator's builders
// (internal/resources) and the server (internal/ragserver) import it, so a
// number changes in one place.
//
// Kubebuilder markers cannot reference Go constants: a test in api/v1alpha1
// checks that the generated CRD carries the numbers below.
package contract

import "time"

// Environment variables of the RAG server that the operator sets.
const (
	EnvPort             = "PORT"
	EnvLLMModel         = "LLM_MODEL"
	EnvEmbeddingModel   = "EMBEDDING_MODEL"
	EnvAPIKey           = "OPENAI_API_KEY"
	EnvAPIKeyFile       = "OPENAI_API_KEY_FILE"
	EnvBaseURL          = "OPENAI_BASE_URL"
	EnvEmbeddingBaseURL = "EMBEDDING_BASE_URL"
	EnvChromaURL        = "CHROMA_URL"
	EnvChromaCollection = "CHROMA_COLLECTION"
	// EnvOwner is the identity of the RagService that owns the Chroma
	// collection. The server stamps it on a collection it creates and refuses
	// to start on a collection stamped with another owner.
	EnvOwner           = "RAGOPS_OWNER"
	EnvDocsDir         = "DOCS_DIR"
	EnvDataDir         = "DATA_DIR"
	EnvTopK            = "TOP_K"
	EnvChunkSize       = "CHUNK_SIZE"
	EnvChunkOverlap    = "CHUNK_OVERLAP"
	EnvAPIToken        = "API_TOKEN"
	EnvAPITokenFile    = "API_TOKEN_FILE"
	EnvShutdownTimeout = "SHUTDOWN_TIMEOUT"
	EnvDrainPeriod     = "DRAIN_PERIOD"
	// EnvOTLPEndpoint and EnvOTelServiceName are the standard OpenTelemetry
	// variables: with an endpoint set (spec.server.tracing) the server
	// exports its spans over OTLP/HTTP to <endpoint>/v1/traces.
	EnvOTLPEndpoint    = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTelServiceName = "OTEL_SERVICE_NAME"
	// EnvRetrievalMode is the default retrieval mode (RetrievalModes).
	EnvRetrievalMode = "RETRIEVAL_MODE"
	// The optional reranker: an OpenAI-style POST {base}/rerank endpoint
	// (vLLM, TEI, Jina, Cohere shape), called with the model API key.
	EnvRerankBaseURL = "RERANK_BASE_URL"
	EnvRerankModel   = "RERANK_MODEL"
	EnvRerankTopN    = "RERANK_TOP_N"
)

// Retrieval modes (spec.retrieval.mode, RETRIEVAL_MODE, "mode" of /retrieve
// and /query): vector similarity, lexical (BM25) ranking, or both fused.
const (
	ModeVector  = "vector"
	ModeLexical = "lexical"
	ModeHybrid  = "hybrid"
	// DefaultRetrievalMode: hybrid beats both alone on make eval (README).
	DefaultRetrievalMode = ModeHybrid
)

// RetrievalModes lists the valid modes, in the order the API documents them.
var RetrievalModes = []string{ModeVector, ModeLexical, ModeHybrid}

// ValidRetrievalMode reports whether mode is one of RetrievalModes.
func ValidRetrievalMode(mode string) bool {
	for _, m := range RetrievalModes {
		if m == mode {
			return true
		}
	}
	return false
}

// Bounds and default of the reranker's candidates (spec.retrieval.rerank.topN,
// RERANK_TOP_N): the fused passages sent to the reranker per query.
const (
	MinRerankTopN     = 1
	MaxRerankTopN     = 100
	DefaultRerankTopN = 20
)

// MaxOTLPEndpointLength bounds spec.server.tracing.otlpEndpoint.
const MaxOTLPEndpointLength = 2048

// Bounds and defaults of the retrieval settings (spec.retrieval, TOP_K,
// CHUNK_SIZE, CHUNK_OVERLAP).
const (
	MinTopK     = 1
	MaxTopK     = 50
	DefaultTopK = 4

	MinChunkSize     = 50
	MaxChunkSize     = 100000
	DefaultChunkSize = 800

	MinChunkOverlap = 0
	// MaxChunkOverlap: the overlap must stay below the chunk size.
	MaxChunkOverlap = MaxChunkSize - 1
	// DefaultChunkOverlap is the overlap with the default chunk size; see
	// ChunkOverlap for a smaller chunk size.
	DefaultChunkOverlap = 100
	// DefaultOverlapDivisor: an unset overlap is at most a fifth of the chunk.
	DefaultOverlapDivisor = 5

	MinPort     = 1
	MaxPort     = 65535
	DefaultPort = 8080
)

// Shutdown of the server (SHUTDOWN_TIMEOUT, DRAIN_PERIOD).
const (
	// DefaultShutdownTimeout is the time given to in-flight requests once
	// the server stops accepting connections.
	DefaultShutdownTimeout = 20 * time.Second
	// DefaultDrainPeriod is how long the server keeps serving after SIGTERM
	// with a failing readiness probe, so that endpoints stop routing to it
	// before it closes its listener.
	DefaultDrainPeriod = 5 * time.Second
)

// Autoscaling signals of the server.
const (
	// MetricRequestsInFlight is the server's gauge of requests being served
	// (API routes; not probes or scrapes). The server exposes it on
	// /metrics; the operator names it in the HorizontalPodAutoscaler's Pods
	// metric for spec.autoscaling.targetRequestsInFlight.
	MetricRequestsInFlight = "ragserver_http_requests_in_flight"
	// DefaultServerCPURequest is the CPU request of the server container
	// when spec.server.resources sets none: an HPA's CPU utilisation is a
	// percentage of the request, so the container always has one. A tenth
	// of a core is what one server uses under a steady trickle of queries
	// (embedding and generation happen upstream).
	DefaultServerCPURequest = "100m"
)

// ChunkOverlap is the effective overlap: the given one, or, when unset, the
// default overlap capped at a fifth of the chunk size, so that a default
// never makes a valid chunk size invalid.
func ChunkOverlap(chunkSize int, overlap *int) int {
	if overlap != nil {
		return *overlap
	}
	return min(DefaultChunkOverlap, chunkSize/DefaultOverlapDivisor)
}

// The indexing Job: the operator runs the ragserver image with the
// "ingest" subcommand (IndexerCommand), the store settings of the server
// (EnvChromaURL, EnvChromaCollection, EnvOwner, EnvEmbeddingModel, ...) and
// the sources below. The indexer writes an IndexReport as JSON to
// IndexReportPath, the container's termination message, which the operator
// reads from the Job's pod.
const (
	// IndexerCommand is the ragserver subcommand that indexes the sources.
	IndexerCommand = "ingest"
	// EnvSources is the JSON of the RagService's spec.documents
	// (api/v1alpha1.DocumentsSource), with configMapRef, if set, as the
	// source named ConfigMapSourceName.
	EnvSources = "RAGOPS_SOURCES"
	// ConfigMapSourceName names the source of documents.configMapRef.
	ConfigMapSourceName = "configmap"
	// SourcesMountDir holds, per source, what the Job mounts for it:
	// SourcesMountDir/<source>/secret (the files of its Secret),
	// SourcesMountDir/<source>/volume (its PVC, read-only, at pvc.path),
	// SourcesMountDir/<source>/configmap (its ConfigMap).
	SourcesMountDir = "/var/run/ragops/sources"
	// IndexReportPath is where the indexer writes its IndexReport: the
	// Kubernetes termination message path.
	IndexReportPath = "/dev/termination-log"
	// MaxIndexReportBytes bounds the report so that it fits the termination
	// message (4096 bytes); the indexer drops skipped-file details first.
	MaxIndexReportBytes = 4096
	// MaxSkippedReported is the number of skipped files reported per source.
	MaxSkippedReported = 10
	// EnvSourcesMountDir and EnvIndexReportPath override SourcesMountDir and
	// IndexReportPath, for running the indexer outside a Job (tests, a
	// laptop); the operator sets neither.
	EnvSourcesMountDir = "RAGOPS_SOURCES_DIR"
	EnvIndexReportPath = "RAGOPS_INDEX_REPORT"
)

// What the Job mounts for a source, under SourcesMountDir/<source>/ (the
// names of the paths in SourcesMountDir's comment).
const (
	SourceSecretDir    = "secret"
	SourceVolumeDir    = "volume"
	SourceConfigMapDir = "configmap"
)

// IndexReport is what an indexing run found, written by the indexer and read
// by the operator into status.index. Short JSON keys keep it inside the
// termination message.
type IndexReport struct {
	// Documents and Chunks are the totals of the declared sources in the
	// index after the run.
	Documents int64 `json:"d"`
	Chunks    int64 `json:"c"`
	// Sources has one entry per source, in spec order.
	Sources []SourceReport `json:"s"`
}

// SourceReport is the outcome of one source in an IndexReport.
type SourceReport struct {
	Name     string `json:"n"`
	Revision string `json:"r,omitempty"`
	Indexed  int64  `json:"i"`
	Skipped  int64  `json:"k"`
	// SkippedFiles holds up to MaxSkippedReported [path, reason] pairs.
	SkippedFiles [][2]string `json:"kf,omitempty"`
	// Error is set when the source could not be read; its documents already
	// in the index are kept as they were.
	Error string `json:"e,omitempty"`
}

// The switch of embedding models (spec.embeddingModel changed): the operator
// runs the ragserver image with the "migrate" subcommand (MigrateCommand), the
// store settings of the server with EnvEmbeddingModel set to the new model,
// and the variables below. The Job writes a MigrationReport as JSON to
// IndexReportPath.
const (
	// MigrateCommand is the ragserver subcommand that copies the documents
	// added through the API from the previous model's collection.
	MigrateCommand = "migrate"
	// EnvMigrateFromModel is the previous embedding model: its collection
	// (EnvChromaCollection and a slug of the model) is read.
	EnvMigrateFromModel = "RAGOPS_MIGRATE_FROM_MODEL"
	// EnvMigratePhase is one of the MigratePhase values (default
	// MigratePhaseAll).
	EnvMigratePhase = "RAGOPS_MIGRATE_PHASE"
	// EnvMigrateSince is the catch-up's start, in Unix seconds: documents
	// committed in the previous collection from then on are copied if newer.
	EnvMigrateSince = "RAGOPS_MIGRATE_SINCE"
	// EnvKeepPreviousCollection "true" keeps the previous collection after
	// the catch-up (spec.vectorStore.keepPreviousCollection).
	EnvKeepPreviousCollection = "RAGOPS_KEEP_PREVIOUS_COLLECTION"
)

// Phases of a switch of embedding models.
const (
	// MigratePhaseCopy fills the new collection before the cut-over: every
	// document of the API is copied, and documents of the API that the
	// previous collection no longer holds are removed from the new one.
	MigratePhaseCopy = "copy"
	// MigratePhaseFinalize runs once no server uses the previous model: the
	// documents written there since EnvMigrateSince are copied if newer,
	// then the previous collection is deleted (unless kept).
	MigratePhaseFinalize = "finalize"
	// MigratePhaseAll is copy then delete, for a server that is stopped
	// (the standalone "ragserver migrate").
	MigratePhaseAll = "all"
)

// MigrateSinceMargin is subtracted from the copy Job's start to get the
// catch-up's start (EnvMigrateSince), for the clocks of the nodes: a
// larger window only copies more, never less.
const MigrateSinceMargin = 5 * time.Minute

// MigrationReport is what a migrate run did, written like an IndexReport.
type MigrationReport struct {
	Phase string `json:"p"`
	// Documents and Chunks were copied (re-embedded with the new model).
	Documents int64 `json:"d"`
	Chunks    int64 `json:"c"`
	// Unchanged documents were there already; Kept ones were there with
	// newer content or belong to a declared source; Pruned ones were
	// removed from the new collection.
	Unchanged int64 `json:"u"`
	Kept      int64 `json:"k"`
	Pruned    int64 `json:"x"`
	// Dropped says whether the previous collection was deleted.
	Dropped bool `json:"dropped,omitempty"`
}
