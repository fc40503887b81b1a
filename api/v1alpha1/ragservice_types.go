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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ragops/ragops/internal/contract"
)

// Defaults that the API server fills in (see the +kubebuilder:default markers)
// and that the operator falls back to when an object predates a default. The
// numbers shared with the RAG server come from internal/contract; a test
// checks that the CRD's markers carry the same ones.
const (
	// DefaultSecretKey is the key of the API key in the referenced Secret.
	DefaultSecretKey = "OPENAI_API_KEY"
	// DefaultChromaImage is the pinned Chroma 1.x image.
	DefaultChromaImage = "chromadb/chroma:1.0.0"
	// DefaultStorageSize is the size of the Chroma volume.
	DefaultStorageSize = "1Gi"
	// DefaultTokenKey is the key of the API token in its Secret.
	DefaultTokenKey = "token"
	// DefaultServerPort is the container port of the RAG server.
	DefaultServerPort int32 = contract.DefaultPort
	// DefaultReplicas is the number of RAG server replicas.
	DefaultReplicas int32 = 1
	// DefaultTopK is the number of chunks retrieved per query.
	DefaultTopK int32 = contract.DefaultTopK
	// DefaultChunkSize is the size of a document chunk, in characters.
	DefaultChunkSize int32 = contract.DefaultChunkSize
	// DefaultChunkOverlap is the overlap between two chunks of the default
	// size, in characters; an unset overlap is at most a fifth of the chunk
	// size (contract.ChunkOverlap).
	DefaultChunkOverlap int32 = contract.DefaultChunkOverlap
)

// RagServiceSpec is the desired state of a RagService.
//
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.replicas) || self.replicas >= 1",message="replicas must be at least 1 while autoscaling is set (a HorizontalPodAutoscaler does not scale a target at zero); remove autoscaling to scale to zero"
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || (has(self.baseURL) && size(self.baseURL) > 0)",message="secretRef is required unless baseURL points to a keyless OpenAI-compatible server"
type RagServiceSpec struct {
	// model is the chat model the RAG server answers with, e.g. gpt-4o-mini.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\p{Z}\p{C}]+$`
	Model string `json:"model"`

	// embeddingModel is the model that embeds documents and queries,
	// e.g. text-embedding-3-small.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^\p{Z}\p{C}]+$`
	EmbeddingModel string `json:"embeddingModel"`

	// replicas is the number of RAG server replicas. The scale subresource
	// writes this field, so kubectl scale and a HorizontalPodAutoscaler
	// targeting the RagService work.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// secretRef names the Secret (in the RagService's namespace) and the key
	// that hold the API key. The key is passed to the server through a
	// secretKeyRef and never copied. Required unless baseURL is set.
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// baseURL is an OpenAI-compatible endpoint (Ollama, vLLM, a proxy) for
	// chat, e.g. http://ollama.llm.svc:11434/v1. Empty (or unset) means
	// OpenAI.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self == '' || isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="baseURL must be an absolute http or https URL"
	BaseURL string `json:"baseURL,omitempty"`

	// embeddingBaseURL is an OpenAI-compatible endpoint for embeddings.
	// Defaults to baseURL, so chat and embeddings can be served by different
	// servers. Empty (or unset) means baseURL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self == '' || isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="embeddingBaseURL must be an absolute http or https URL"
	EmbeddingBaseURL string `json:"embeddingBaseURL,omitempty"`

	// documents is where the documents to index come from. The operator
	// indexes them from a Job whenever they change (and on their schedule);
	// the server pods do not read them and do not roll when they change.
	// +optional
	Documents *DocumentsSource `json:"documents,omitempty"`

	// vectorStore is where the embeddings live: a Chroma that the operator
	// runs (the default) or an external one.
	// +optional
	// +kubebuilder:default={chroma:{}}
	VectorStore VectorStoreSpec `json:"vectorStore,omitzero"`

	// server configures the RAG server container.
	// +optional
	// +kubebuilder:default={}
	Server ServerSpec `json:"server,omitzero"`

	// retrieval tunes chunking and retrieval.
	// +optional
	// +kubebuilder:default={}
	Retrieval RetrievalSpec `json:"retrieval,omitzero"`

	// auth says how clients authenticate to the RAG server. By default the
	// operator generates a token into the Secret <name>-api-token (key
	// token) and the server requires it as a bearer token.
	// +optional
	// +kubebuilder:default={}
	Auth AuthSpec `json:"auth,omitzero"`

	// autoscaling lets a HorizontalPodAutoscaler (autoscaling/v2) that the
	// operator creates own replicas: the HPA targets this RagService through
	// its scale subresource and writes spec.replicas; the operator only
	// follows spec.replicas and never writes it. Removing autoscaling
	// deletes the HPA and leaves replicas at its last value.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// monitoring makes the operator create a ServiceMonitor
	// (monitoring.coreos.com/v1) for the server when the Prometheus
	// Operator's CRD is installed.
	// +optional
	Monitoring *MonitoringSpec `json:"monitoring,omitempty"`
}

// AutoscalingSpec configures the server's HorizontalPodAutoscaler.
//
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas"
// +kubebuilder:validation:XValidation:rule="has(self.targetCPUUtilizationPercentage) || has(self.targetRequestsInFlight)",message="autoscaling needs at least one target: targetCPUUtilizationPercentage or targetRequestsInFlight"
type AutoscalingSpec struct {
	// minReplicas is the fewest server replicas the autoscaler keeps.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinReplicas int32 `json:"minReplicas,omitempty"`

	// maxReplicas is the most server replicas the autoscaler starts.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReplicas int32 `json:"maxReplicas"`

	// targetCPUUtilizationPercentage is the average CPU use of the server
	// pods, in percent of their CPU request, that the autoscaler aims at
	// (needs metrics-server). The server container always has a CPU
	// request (spec.server.resources or the operator's default), so the
	// percentage is defined.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`

	// targetRequestsInFlight is the average number of requests in flight
	// per server pod that the autoscaler aims at: the server's own gauge
	// ragserver_http_requests_in_flight, as a Pods metric. It needs a
	// custom metrics adapter (for example prometheus-adapter) serving that
	// metric under the same name.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	TargetRequestsInFlight *int32 `json:"targetRequestsInFlight,omitempty"`

	// scaleDownStabilizationSeconds is how long the autoscaler looks back
	// before it scales down: it takes the highest recommendation of that
	// window, so a short lull does not drop pods (Kubernetes' default is
	// 300).
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	ScaleDownStabilizationSeconds *int32 `json:"scaleDownStabilizationSeconds,omitempty"`
}

// MonitoringSpec configures the Prometheus Operator objects of the server.
type MonitoringSpec struct {
	// enabled creates a ServiceMonitor that scrapes /metrics of every server
	// pod. Without the monitoring.coreos.com CRD the operator reports
	// MonitoringReady=False (CRDNotInstalled) and creates it once the CRD
	// appears; the RagService is Ready either way.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// interval between scrapes, e.g. 30s; empty means Prometheus' default.
	// +optional
	// +kubebuilder:validation:Pattern=`^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`
	// +kubebuilder:validation:MaxLength=32
	Interval string `json:"interval,omitempty"`

	// labels are added to the ServiceMonitor, for a Prometheus whose
	// serviceMonitorSelector picks monitors by label (e.g. release:
	// kube-prometheus-stack).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels,omitempty"`
}

// AuthMode says whether the RAG server requires a bearer token.
// +kubebuilder:validation:Enum=Token;Disabled
type AuthMode string

const (
	// AuthToken requires a bearer token on every API route (not on health
	// and metrics).
	AuthToken AuthMode = "Token"
	// AuthDisabled serves the API to every client the NetworkPolicy admits.
	AuthDisabled AuthMode = "Disabled"
)

// AuthSpec configures the RAG server's authentication.
//
// +kubebuilder:validation:XValidation:rule="!has(self.secretRef) || !has(self.mode) || self.mode == 'Token'",message="auth.secretRef is only allowed with auth.mode Token"
type AuthSpec struct {
	// mode is Token (the default: clients send Authorization: Bearer
	// <token>) or Disabled (no authentication; say so explicitly).
	// +optional
	// +kubebuilder:default=Token
	Mode AuthMode `json:"mode,omitempty"`

	// secretRef names the Secret (in the RagService's namespace) and key that
	// hold the token. Unset: the operator generates a random token once into
	// the Secret <name>-api-token, key token, owned by the RagService.
	// +optional
	SecretRef *TokenSecretReference `json:"secretRef,omitempty"`
}

// TokenSecretReference selects the key of a Secret that holds the API token.
type TokenSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the Secret's data that holds the token.
	// +optional
	// +kubebuilder:default=token
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && !self.startsWith('..')",message="auth.secretRef.key must be a valid Secret key: not '.' and not starting with '..'"
	Key string `json:"key,omitempty"`
}

// SecretKeyReference selects a key of a Secret in the RagService's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key in the Secret's data that holds the API key.
	// +optional
	// +kubebuilder:default=OPENAI_API_KEY
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && !self.startsWith('..')",message="secretRef.key must be a valid Secret key: not '.' and not starting with '..'"
	Key string `json:"key,omitempty"`
}

// DocumentsSource says where the documents to index come from. The operator
// indexes them from a Job (see status.index); the server pods do not ingest
// them at start-up and do not roll when only the documents change.
//
// +kubebuilder:validation:XValidation:rule="has(self.configMapRef) || (has(self.sources) && size(self.sources) > 0)",message="documents needs configMapRef or at least one entry in sources"
type DocumentsSource struct {
	// configMapRef names a ConfigMap in the RagService's namespace; every key
	// (data and binaryData) is one document. It is indexed as the source
	// named "configmap"; sources[].configMap does the same with a name.
	// +optional
	ConfigMapRef *ConfigMapReference `json:"configMapRef,omitempty"`

	// sources are the places the indexer reads documents from. Each has a
	// unique name; a document is identified by its source's name and its path
	// in the source, so two sources never overwrite each other.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Sources []DocumentSource `json:"sources,omitempty"`

	// schedule re-syncs every source on a cron schedule (standard five-field
	// syntax, or a descriptor such as @hourly), in the operator's time zone
	// (UTC). Unset: sources are indexed when their spec changes.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9a-z.]+|[^ @]+( [^ ]+){4})$')",message="documents.schedule must be five cron fields (minute hour day-of-month month day-of-week, e.g. */15 * * * *) or a descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every <duration>)"
	Schedule string `json:"schedule,omitempty"`

	// include keeps only the files whose path (relative to its source) matches
	// one of these glob patterns ("**" matches any number of directories).
	// Unset: every file with a supported format. Applies to every source, in
	// addition to the source's own include.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Include []string `json:"include,omitempty"`

	// exclude drops the files whose path matches one of these glob patterns;
	// exclude wins over include. Applies to every source.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Exclude []string `json:"exclude,omitempty"`
}

// DocumentSource is one named place documents come from. Exactly one of git,
// http, s3, pvc and configMap is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.git), has(self.http), has(self.s3), has(self.pvc), has(self.configMap)].filter(x, x).size() == 1",message="a source sets exactly one of git, http, s3, pvc and configMap"
type DocumentSource struct {
	// name identifies the source in the index and in status.index.sources.
	// "configmap" is reserved for documents.configMapRef.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self != 'configmap'",message="the source name configmap is reserved for documents.configMapRef"
	Name string `json:"name"`

	// git is a Git repository.
	// +optional
	Git *GitSource `json:"git,omitempty"`
	// http is a list of files served over HTTP(S).
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`
	// s3 is a prefix of an S3-compatible bucket.
	// +optional
	S3 *S3Source `json:"s3,omitempty"`
	// pvc is a directory on a PersistentVolumeClaim in the RagService's
	// namespace, for files a user's own pipeline writes.
	// +optional
	PVC *PVCSource `json:"pvc,omitempty"`
	// configMap is a ConfigMap in the RagService's namespace; every key is
	// one document.
	// +optional
	ConfigMap *ConfigMapReference `json:"configMap,omitempty"`

	// include keeps only the files of this source whose path matches one of
	// these glob patterns.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Include []string `json:"include,omitempty"`

	// exclude drops the files of this source whose path matches one of these
	// glob patterns.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Exclude []string `json:"exclude,omitempty"`
}

// GitSource is a Git repository, read with a pure-Go client (no git binary).
type GitSource struct {
	// url of the repository: https://, http://, ssh://, git:// or the scp
	// form user@host:path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^((https?|ssh|git)://[^/\s]+(/\S*)?|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\s]\S*)$`
	URL string `json:"url"`

	// ref is a branch, a tag or a full commit SHA. Unset: the remote's
	// default branch (HEAD). A branch or tag is re-resolved at every sync.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[^\s~^:?*\[\\]+$`
	Ref string `json:"ref,omitempty"`

	// paths limits the sync to these directories or glob patterns of the
	// repository (relative to its root). Unset: the whole tree.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Paths []string `json:"paths,omitempty"`

	// secretRef names a Secret with the credentials: keys username and
	// password (or token) for HTTPS; ssh-privatekey and known_hosts (the
	// server's host keys, as ssh-keyscan prints them) for SSH. An unknown
	// host key fails the source; it is never ignored.
	// +optional
	SecretRef *LocalSecretReference `json:"secretRef,omitempty"`
}

// HTTPSource is a list of files served over HTTP(S).
type HTTPSource struct {
	// urls of the files; each file's path in the index is its URL's host and
	// path.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:Pattern=`^https?://[^/?#\s@]+([/?#]\S*)?$`
	URLs []string `json:"urls"`

	// headersSecretRef names a Secret whose keys are HTTP header names and
	// whose values are sent with every request of this source (for example
	// Authorization).
	// +optional
	HeadersSecretRef *LocalSecretReference `json:"headersSecretRef,omitempty"`
}

// S3Source is a prefix of a bucket on an S3-compatible object store.
type S3Source struct {
	// endpoint of the object store: scheme, host and optional port, for
	// example https://s3.us-east-1.amazonaws.com or http://minio.storage:9000.
	// The scheme decides TLS.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^/?#\s@]+/?$`
	Endpoint string `json:"endpoint"`

	// bucket name.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	Bucket string `json:"bucket"`

	// prefix of the object keys to index. Unset: the whole bucket.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Prefix string `json:"prefix,omitempty"`

	// region of the bucket. Unset: us-east-1.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`

	// secretRef names a Secret with the keys accessKeyID and
	// secretAccessKey. Unset: anonymous access.
	// +optional
	SecretRef *LocalSecretReference `json:"secretRef,omitempty"`
}

// PVCSource is a directory on a PersistentVolumeClaim.
type PVCSource struct {
	// claimName of the PersistentVolumeClaim, mounted read-only into the
	// indexing Job.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ClaimName string `json:"claimName"`

	// path of the directory inside the volume, relative, without "." or ".."
	// segments. Unset: its root.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^([^/.][^/]*|\.[^/.][^/]*)(/([^/.][^/]*|\.[^/.][^/]*))*/?$`
	Path string `json:"path,omitempty"`
}

// LocalSecretReference names a Secret in the RagService's namespace.
type LocalSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ConfigMapReference names a ConfigMap in the RagService's namespace.
type ConfigMapReference struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// VectorStoreSpec selects the vector store. Exactly one of chroma and
// external is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.chroma) != has(self.external)",message="exactly one of vectorStore.chroma and vectorStore.external must be set"
type VectorStoreSpec struct {
	// chroma runs a single-replica Chroma next to the server, with its data
	// on a PersistentVolumeClaim.
	// +optional
	Chroma *ChromaSpec `json:"chroma,omitempty"`

	// external points at a Chroma that runs elsewhere; no Chroma is deployed.
	// +optional
	External *ExternalVectorStore `json:"external,omitempty"`
}

// RetentionPolicy says whether the Chroma volume outlives its RagService.
// +kubebuilder:validation:Enum=Retain;Delete
type RetentionPolicy string

const (
	// RetentionRetain keeps the PersistentVolumeClaim when the RagService is
	// deleted; a RagService re-created with the same name reuses it.
	RetentionRetain RetentionPolicy = "Retain"
	// RetentionDelete deletes the PersistentVolumeClaim with the RagService.
	RetentionDelete RetentionPolicy = "Delete"
)

// ChromaSpec configures the Chroma the operator runs.
type ChromaSpec struct {
	// image is the Chroma 1.x image. It must carry a tag or a digest, and the
	// tag must not be latest. The container listens on 8000 and stores its
	// data in /data.
	// +optional
	// +kubebuilder:default="chromadb/chroma:1.0.0"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^((localhost|[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)+)(:[0-9]+)?/|[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?:[0-9]+/)?[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64}|@sha512:[a-f0-9]{128})?$')",message="image must be a valid image reference: no spaces, a lower-case repository, and a digest of the full length (sha256: 64 hex digits)"
	// +kubebuilder:validation:XValidation:rule="self.contains('@') || self.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}[[:space:]]*$')",message="image must carry a tag or a digest"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith(':latest')",message="image must be pinned: the latest tag is not allowed"
	Image string `json:"image,omitempty"`

	// storage is the Chroma volume.
	// +optional
	// +kubebuilder:default={}
	Storage ChromaStorage `json:"storage,omitzero"`

	// retentionPolicy says whether the volume outlives the RagService: Retain
	// (the default) keeps the PersistentVolumeClaim, Delete removes it with
	// the RagService, like a StatefulSet's PVC retention policy.
	// +optional
	// +kubebuilder:default=Retain
	RetentionPolicy RetentionPolicy `json:"retentionPolicy,omitempty"`

	// resources of the Chroma container.
	// +optional
	Resources *ResourceRequirements `json:"resources,omitempty"`

	// securityContext replaces the Chroma pod's security context. By default
	// the pod runs as the non-root user 65532 with fsGroup 65532 so that the
	// volume is writable, which works for images that only write to /data
	// and /tmp. Set it for an image that must run as another user.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
}

// ChromaStorage is the Chroma PersistentVolumeClaim.
//
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(oldSelf.size) || !isQuantity(string(self.size)) || !isQuantity(string(oldSelf.size)) || quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",message="storage.size may grow but not shrink"
type ChromaStorage struct {
	// size of the volume.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",message="storage.size must be greater than zero"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || quantity(string(self)).isInteger()",message="storage.size must be a whole number of bytes (500m is half a byte; use 500Mi)"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the volume (a DNS-1123 subdomain: lower case);
	// unset means the cluster's default StorageClass. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="storage.storageClassName must be a lower-case DNS-1123 subdomain, e.g. fast-ssd"
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// ExternalVectorStore is a Chroma that runs outside the RagService.
type ExternalVectorStore struct {
	// url of the Chroma HTTP API, e.g. http://chroma.shared.svc:8000.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="vectorStore.external.url must be an absolute http or https URL"
	URL string `json:"url"`
}

// ServerSpec configures the RAG server container.
type ServerSpec struct {
	// image of the RAG server. Empty means the image matching the operator's
	// version (the operator's --ragserver-image flag), so upgrading the
	// operator rolls the servers. When set it must carry a tag or a digest,
	// and the tag must not be latest.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^((localhost|[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)+)(:[0-9]+)?/|[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?:[0-9]+/)?[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64}|@sha512:[a-f0-9]{128})?$')",message="image must be a valid image reference: no spaces, a lower-case repository, and a digest of the full length (sha256: 64 hex digits)"
	// +kubebuilder:validation:XValidation:rule="self == '' || self.contains('@') || self.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}[[:space:]]*$')",message="image must carry a tag or a digest"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith(':latest')",message="image must be pinned: the latest tag is not allowed"
	Image string `json:"image,omitempty"`

	// resources of the server container.
	// +optional
	Resources *ResourceRequirements `json:"resources,omitempty"`

	// port the server listens on inside the pod. The Service always exposes
	// port 80.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// allowedNamespaces lists the namespaces, besides the RagService's own,
	// whose pods may reach the server (for example the namespace of an
	// ingress controller). The server's NetworkPolicy admits only those;
	// kubectl port-forward works regardless, since it goes through the
	// kubelet into the pod.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`

	// tracing exports the server's OpenTelemetry spans (HTTP requests,
	// retrieval, generation, ingestion, model and vector store calls) over
	// OTLP/HTTP. Unset, the server does not trace.
	// +optional
	Tracing *TracingSpec `json:"tracing,omitempty"`
}

// TracingSpec configures the RAG server's OpenTelemetry tracing.
type TracingSpec struct {
	// otlpEndpoint is the base URL of an OTLP/HTTP receiver, such as an
	// OpenTelemetry Collector (http://otel-collector.observability:4318);
	// spans are posted to <otlpEndpoint>/v1/traces. The operator sets it as
	// OTEL_EXPORTER_OTLP_ENDPOINT, and OTEL_SERVICE_NAME to the RagService's
	// name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="server.tracing.otlpEndpoint must be an absolute http or https URL"
	OTLPEndpoint string `json:"otlpEndpoint"`
}

// ResourceRequirements are the compute resources of a container: requests
// and limits of cpu, memory, ephemeral-storage and hugepages-<size>.
//
// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('cpu' in self.limits) || !('cpu' in self.requests) || !isQuantity(string(self.limits['cpu'])) || !isQuantity(string(self.requests['cpu'])) || quantity(string(self.limits['cpu'])).compareTo(quantity(string(self.requests['cpu']))) >= 0",message="resources: the cpu limit must be at least the cpu request"
// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('memory' in self.limits) || !('memory' in self.requests) || !isQuantity(string(self.limits['memory'])) || !isQuantity(string(self.requests['memory'])) || quantity(string(self.limits['memory'])).compareTo(quantity(string(self.requests['memory']))) >= 0",message="resources: the memory limit must be at least the memory request"
// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.requests) || !('ephemeral-storage' in self.limits) || !('ephemeral-storage' in self.requests) || !isQuantity(string(self.limits['ephemeral-storage'])) || !isQuantity(string(self.requests['ephemeral-storage'])) || quantity(string(self.limits['ephemeral-storage'])).compareTo(quantity(string(self.requests['ephemeral-storage']))) >= 0",message="resources: the ephemeral-storage limit must be at least the ephemeral-storage request"
type ResourceRequirements struct {
	// limits are the maximum resources the container may use.
	// +optional
	// +kubebuilder:validation:MaxProperties=6
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-'))",message="resources.limits: only cpu, memory, ephemeral-storage and hugepages-<size> are supported"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !isQuantity(string(self[k])) || !quantity(string(self[k])).isLessThan(quantity('0')))",message="resources.limits must not be negative"
	Limits corev1.ResourceList `json:"limits,omitempty"`

	// requests are the resources the scheduler reserves for the container.
	// +optional
	// +kubebuilder:validation:MaxProperties=6
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-'))",message="resources.requests: only cpu, memory, ephemeral-storage and hugepages-<size> are supported"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !isQuantity(string(self[k])) || !quantity(string(self[k])).isLessThan(quantity('0')))",message="resources.requests must not be negative"
	Requests corev1.ResourceList `json:"requests,omitempty"`
}

// RetrievalSpec tunes chunking and retrieval.
//
// +kubebuilder:validation:XValidation:rule="!has(self.chunkOverlap) || !has(self.chunkSize) || self.chunkOverlap < self.chunkSize",message="retrieval.chunkOverlap must be less than retrieval.chunkSize"
type RetrievalSpec struct {
	// topK is the number of chunks retrieved for a query.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=50
	TopK *int32 `json:"topK,omitempty"`

	// chunkSize is the size of a document chunk, in characters.
	// +optional
	// +kubebuilder:default=800
	// +kubebuilder:validation:Minimum=50
	// +kubebuilder:validation:Maximum=100000
	ChunkSize *int32 `json:"chunkSize,omitempty"`

	// chunkOverlap is the number of characters two neighbouring chunks
	// share; it must be less than chunkSize. Unset means 100, or a fifth of
	// chunkSize when that is smaller.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999
	ChunkOverlap *int32 `json:"chunkOverlap,omitempty"`

	// mode is how passages are found: vector (embedding similarity),
	// lexical (BM25 ranking of the words) or hybrid (both, fused by
	// reciprocal rank). A request may override it with its "mode" field.
	// +optional
	// +kubebuilder:default=hybrid
	// +kubebuilder:validation:Enum=vector;lexical;hybrid
	Mode string `json:"mode,omitempty"`

	// rerank sends the best passages to a reranking model, which orders
	// them again. Off when unset. When the reranker fails, the server
	// answers with the passages in their fused order.
	// +optional
	Rerank *RerankSpec `json:"rerank,omitempty"`
}

// RerankSpec is an OpenAI-style rerank endpoint (POST {baseURL}/rerank, the
// request and answer of vLLM, TEI, Jina and Cohere). The model API key of
// secretRef, if any, is sent as its bearer token.
type RerankSpec struct {
	// baseURL is the base URL of the rerank API, e.g. http://tei:8080/v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="retrieval.rerank.baseURL must be an absolute http or https URL"
	BaseURL string `json:"baseURL"`

	// model is the reranking model.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Model string `json:"model"`

	// topN is the number of fused passages sent to the reranker per query
	// (at least the query's topK are returned from them).
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TopN *int32 `json:"topN,omitempty"`
}

// Condition types of a RagService.
const (
	// ConditionReady summarises the others: the server has its desired ready
	// replicas and the vector store is ready.
	ConditionReady = "Ready"
	// ConditionVectorStoreReady says whether Chroma is ready (or external).
	ConditionVectorStoreReady = "VectorStoreReady"
	// ConditionServerAvailable says whether the server Deployment has its
	// desired ready replicas.
	ConditionServerAvailable = "ServerAvailable"
	// ConditionIndexed says whether the declared documents are indexed as
	// the current spec (and schedule) asks. It does not gate Ready: a server
	// answers from the last complete index while a sync runs.
	ConditionIndexed = "Indexed"
	// ConditionMonitoringReady says whether the ServiceMonitor of
	// spec.monitoring exists; present only while monitoring is enabled.
	// It does not count towards Ready.
	ConditionMonitoringReady = "MonitoringReady"
)

// Condition reasons of a RagService.
const (
	// ReasonAvailable: the condition holds.
	ReasonAvailable = "Available"
	// ReasonScaledToZero: replicas is 0, so no server pod is wanted.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonExternal: the vector store is external, so nothing to wait for.
	ReasonExternal = "External"
	// ReasonProgressing: children are being created or rolled out.
	ReasonProgressing = "Progressing"
	// ReasonPVCPending: the Chroma volume is not bound yet.
	ReasonPVCPending = "PVCPending"
	// ReasonSecretNotFound: the Secret named by secretRef does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: the Secret exists without secretRef.key.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonSecretKeyEmpty: the Secret's key holds only whitespace.
	ReasonSecretKeyEmpty = "SecretKeyEmpty"
	// ReasonChildConflict: an object the operator did not create has the
	// name of a child; the operator does not adopt it.
	ReasonChildConflict = "ChildConflict"
	// ReasonRetainedVolumeOrphaned: the RagService switched to an external
	// vector store while the retained Chroma volume still holds its data.
	ReasonRetainedVolumeOrphaned = "RetainedVolumeOrphaned"
	// ReasonConfigMapNotFound: a ConfigMap of spec.documents does not exist
	// (condition Indexed).
	ReasonConfigMapNotFound = "ConfigMapNotFound"
	// ReasonPVCNotFound: a PersistentVolumeClaim of spec.documents does not
	// exist (condition Indexed).
	ReasonPVCNotFound = "PersistentVolumeClaimNotFound"
	// ReasonInvalidSpec: the spec cannot work as written; the operator
	// waits for it to change.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonReconcileError: a transient error; the operator retries.
	ReasonReconcileError = "ReconcileError"

	// ReasonIndexing: an indexing Job runs for the current sources.
	ReasonIndexing = "Indexing"
	// ReasonIndexed: the last sync of the current sources finished and
	// every source was read.
	ReasonIndexed = "Indexed"
	// ReasonSourceUnreachable: the last sync finished, but at least one
	// source could not be read; the others were indexed.
	ReasonSourceUnreachable = "SourceUnreachable"
	// ReasonIndexFailed: the indexing Job failed; the operator retries with
	// a back-off.
	ReasonIndexFailed = "IndexFailed"
	// ReasonNoDocuments: spec.documents is unset; nothing to index.
	ReasonNoDocuments = "NoDocuments"
	// ReasonCRDNotInstalled: spec.monitoring is enabled but the cluster has
	// no ServiceMonitor CRD; the operator creates the monitor once it
	// appears.
	ReasonCRDNotInstalled = "CRDNotInstalled"
)

// RagServiceStatus is the observed state of a RagService.
type RagServiceStatus struct {
	// conditions: Ready (the summary), VectorStoreReady, ServerAvailable and
	// Indexed (which does not gate Ready), each with the generation it
	// describes.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the last reconcile pass that
	// went through without error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of server pods (the Deployment's replicas).
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of ready server pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// selector is the label selector of the server pods, for the scale
	// subresource (HorizontalPodAutoscaler).
	// +optional
	Selector string `json:"selector,omitempty"`

	// endpoint is the in-cluster URL of the RAG server.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// index reports the declared documents' index: what the last sync
	// found, per source.
	// +optional
	Index *IndexStatus `json:"index,omitempty"`

	// autoscaling is the state of the HorizontalPodAutoscaler while
	// spec.autoscaling is set.
	// +optional
	Autoscaling *AutoscalingStatus `json:"autoscaling,omitempty"`

	// lastError is the most recent reason a reconcile pass could not finish
	// (an invalid spec, a missing input, a failed API call). It stays after
	// the RagService recovers, so that on-call sees what happened; the
	// Ready condition says whether it still holds.
	// +optional
	LastError *LastError `json:"lastError,omitempty"`
}

// IndexStatus is the state of the index of the declared sources.
type IndexStatus struct {
	// documents is the number of documents of the declared sources in the
	// index after the last sync (documents added through the API are not
	// counted).
	// +optional
	Documents int64 `json:"documents"`

	// chunks is the number of chunks of those documents.
	// +optional
	Chunks int64 `json:"chunks"`

	// lastSyncTime is when the last sync finished.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// sourcesHash is the hash of the sources' spec (and of their content
	// revisions where the operator knows them) that the last sync indexed.
	// +optional
	SourcesHash string `json:"sourcesHash,omitempty"`

	// job is the name of the indexing Job that runs or ran last.
	// +optional
	Job string `json:"job,omitempty"`

	// sources is the state of each source after the last sync.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=33
	Sources []SourceIndexStatus `json:"sources,omitempty"`
}

// SourceIndexStatus is the state of one source after the last sync.
type SourceIndexStatus struct {
	// name of the source ("configmap" for documents.configMapRef).
	// +required
	Name string `json:"name"`

	// revision indexed: the Git commit, a digest of the S3 ETags or HTTP
	// validators, the ConfigMap's resourceVersion.
	// +optional
	Revision string `json:"revision,omitempty"`

	// filesIndexed is the number of files whose documents are in the index.
	// +optional
	FilesIndexed int64 `json:"filesIndexed"`

	// filesSkipped is the number of files left out (unsupported format,
	// unreadable, too large).
	// +optional
	FilesSkipped int64 `json:"filesSkipped"`

	// skipped lists up to 10 skipped files with the reason.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	Skipped []SkippedFile `json:"skipped,omitempty"`

	// lastError is why the source could not be read, if it could not.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// SkippedFile is a file a sync left out, and why.
type SkippedFile struct {
	// path of the file in its source.
	// +required
	Path string `json:"path"`
	// reason it was skipped.
	// +required
	Reason string `json:"reason"`
}

// AutoscalingStatus is what the HorizontalPodAutoscaler reports.
type AutoscalingStatus struct {
	// hpaName is the name of the HorizontalPodAutoscaler.
	// +optional
	HPAName string `json:"hpaName,omitempty"`
	// minReplicas and maxReplicas are the bounds in force.
	// +optional
	MinReplicas int32 `json:"minReplicas,omitempty"`
	// +optional
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// currentReplicas is the number of pods the autoscaler last saw.
	// +optional
	CurrentReplicas int32 `json:"currentReplicas,omitempty"`
	// desiredReplicas is the number of pods the autoscaler last asked for.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`
	// lastScaleTime is when the autoscaler last changed replicas.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// message is the autoscaler's own account of why it cannot scale or
	// is limited (its AbleToScale, ScalingActive and ScalingLimited
	// conditions); empty when it scales freely.
	// +optional
	Message string `json:"message,omitempty"`
}

// LastError is a reconcile failure as the user saw it.
type LastError struct {
	// message of the failure.
	// +required
	Message string `json:"message"`
	// time the failure was first seen with this message.
	// +required
	Time metav1.Time `json:"time"`
}

// RagService is a retrieval augmented generation service: a RAG server
// Deployment and Service, and a Chroma vector store with its volume.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=rag,categories=ragops
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model`
// +kubebuilder:printcolumn:name="Embedding",type=string,JSONPath=`.spec.embeddingModel`
// +kubebuilder:printcolumn:name="Ready-Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Documents",type=integer,JSONPath=`.status.index.documents`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Min",type=integer,priority=1,JSONPath=`.status.autoscaling.minReplicas`
// +kubebuilder:printcolumn:name="Max",type=integer,priority=1,JSONPath=`.status.autoscaling.maxReplicas`
// +kubebuilder:printcolumn:name="Endpoint",type=string,priority=1,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Last-Error",type=string,priority=1,JSONPath=`.status.lastError.message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 50",message="metadata.name must be a DNS-1035 label of at most 50 characters (it names Services such as <name>-chroma)"
type RagService struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the desired state.
	// +required
	Spec RagServiceSpec `json:"spec"`

	// status is the observed state, written by the operator.
	// +optional
	Status RagServiceStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// RagServiceList is a list of RagServices.
type RagServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []RagService `json:"items"`
}
