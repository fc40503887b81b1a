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
)

// Defaults that the API server fills in (see the +kubebuilder:default markers)
// and that the operator falls back to when an object predates a default.
const (
	// DefaultSecretKey is the key of the API key in the referenced Secret.
	DefaultSecretKey = "OPENAI_API_KEY"
	// DefaultChromaImage is the pinned Chroma 1.x image.
	DefaultChromaImage = "chromadb/chroma:1.0.0"
	// DefaultStorageSize is the size of the Chroma volume.
	DefaultStorageSize = "1Gi"
	// DefaultServerPort is the container port of the RAG server.
	DefaultServerPort int32 = 8080
	// DefaultReplicas is the number of RAG server replicas.
	DefaultReplicas int32 = 1
	// DefaultTopK is the number of chunks retrieved per query.
	DefaultTopK int32 = 4
	// DefaultChunkSize is the size of a document chunk, in characters.
	DefaultChunkSize int32 = 1000
	// DefaultChunkOverlap is the overlap between two chunks, in characters.
	DefaultChunkOverlap int32 = 200
)

// RagServiceSpec is the desired state of a RagService.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || has(self.baseURL)",message="secretRef is required unless baseURL points to a keyless OpenAI-compatible server"
type RagServiceSpec struct {
	// model is the chat model the RAG server answers with, e.g. gpt-4o-mini.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^\S+$`
	Model string `json:"model"`

	// embeddingModel is the model that embeds documents and queries,
	// e.g. text-embedding-3-small.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^\S+$`
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
	// chat, e.g. http://ollama.llm.svc:11434/v1. Empty means OpenAI.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="baseURL must be an absolute http or https URL"
	BaseURL string `json:"baseURL,omitempty"`

	// embeddingBaseURL is an OpenAI-compatible endpoint for embeddings.
	// Defaults to baseURL, so chat and embeddings can be served by different
	// servers.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="embeddingBaseURL must be an absolute http or https URL"
	EmbeddingBaseURL string `json:"embeddingBaseURL,omitempty"`

	// documents is where the documents to index come from. They are mounted
	// read-only into the server and ingested at start-up; changing them
	// rolls the server pods.
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
	Key string `json:"key,omitempty"`
}

// DocumentsSource says where the documents to index come from.
type DocumentsSource struct {
	// configMapRef names a ConfigMap in the RagService's namespace; every key
	// (data and binaryData) is one document.
	// +required
	ConfigMapRef *ConfigMapReference `json:"configMapRef"`
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
	// +kubebuilder:validation:XValidation:rule="self.contains('@') || self.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')",message="image must carry a tag or a digest"
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
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

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
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(oldSelf.size) || quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",message="storage.size may grow but not shrink"
type ChromaStorage struct {
	// size of the volume.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage.size must be greater than zero"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the volume; empty means the cluster's default
	// StorageClass. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
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
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.contains('@') || self.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')",message="image must carry a tag or a digest"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith(':latest')",message="image must be pinned: the latest tag is not allowed"
	Image string `json:"image,omitempty"`

	// resources of the server container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// port the server listens on inside the pod. The Service always exposes
	// port 80.
	// +optional
	// +kubebuilder:default=8080
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// RetrievalSpec tunes chunking and retrieval.
//
// +kubebuilder:validation:XValidation:rule="!has(self.chunkOverlap) || !has(self.chunkSize) || self.chunkOverlap < self.chunkSize",message="retrieval.chunkOverlap must be less than retrieval.chunkSize"
type RetrievalSpec struct {
	// topK is the number of chunks retrieved for a query.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TopK *int32 `json:"topK,omitempty"`

	// chunkSize is the size of a document chunk, in characters.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=100000
	ChunkSize *int32 `json:"chunkSize,omitempty"`

	// chunkOverlap is the number of characters two neighbouring chunks share.
	// +optional
	// +kubebuilder:default=200
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99999
	ChunkOverlap *int32 `json:"chunkOverlap,omitempty"`
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
	// ReasonConfigMapNotFound: the documents ConfigMap does not exist.
	ReasonConfigMapNotFound = "ConfigMapNotFound"
	// ReasonInvalidSpec: the spec cannot work as written; the operator
	// waits for it to change.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonReconcileError: a transient error; the operator retries.
	ReasonReconcileError = "ReconcileError"
)

// RagServiceStatus is the observed state of a RagService.
type RagServiceStatus struct {
	// conditions: Ready (the summary), VectorStoreReady and ServerAvailable,
	// each with the generation it describes.
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
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Endpoint",type=string,priority=1,JSONPath=`.status.endpoint`
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
