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

package resources

import (
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	"github.com/ragops/ragops/internal/contract"
)

// ServerInputs are what the server builders need beyond the RagService.
type ServerInputs struct {
	// Image is the server image: spec.server.image or the operator default.
	Image string
	// InputsHash is InputsHash of the referenced Secret key.
	InputsHash string
	// CollectionOwner is the identity the server stamps on its Chroma
	// collection (RAGOPS_OWNER): the RagService's UID, or the one recorded on
	// a retained volume.
	CollectionOwner string
	// EmbeddingModel is the model the server uses: status.embedding's
	// active model, which trails spec.embeddingModel while a switch copies
	// the documents to the new model's collection. Empty: the spec's.
	EmbeddingModel string
}

// Shutdown timing of the server pods: on SIGTERM the server fails readiness
// and keeps serving for DrainPeriod, then gives in-flight requests
// ShutdownTimeout; the grace period covers both with a margin.
const (
	DrainPeriod     = contract.DefaultDrainPeriod
	ShutdownTimeout = contract.DefaultShutdownTimeout
	// TerminationGracePeriodSeconds is drain + shutdown + 5 s.
	TerminationGracePeriodSeconds = int64((DrainPeriod + ShutdownTimeout + 5*time.Second) / time.Second)
)

// Mount of the API token Secret in the server container.
const (
	APITokenDir  = "/etc/ragops/api-token"
	APITokenFile = APITokenDir + "/token"
)

// ServerPort returns the container port of the server.
func ServerPort(rs *ragv1alpha1.RagService) int32 {
	if rs.Spec.Server.Port != 0 {
		return rs.Spec.Server.Port
	}
	return ragv1alpha1.DefaultServerPort
}

// ServerDeployment builds the RAG server Deployment. The server does not
// read spec.documents: the indexing Job (IndexerJob) does, so a change of the
// documents never rolls the server pods.
func ServerDeployment(rs *ragv1alpha1.RagService, in ServerInputs) *appsv1ac.DeploymentApplyConfiguration {
	selector := SelectorLabels(rs, ComponentServer)
	port := ServerPort(rs)

	volumes := []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
	}
	mounts := []*corev1ac.VolumeMountApplyConfiguration{
		corev1ac.VolumeMount().WithName("tmp").WithMountPath(ScratchDir),
	}
	if name, key, ok := APITokenRef(rs); ok {
		volumes = append(volumes, corev1ac.Volume().WithName("api-token").
			WithSecret(corev1ac.SecretVolumeSource().WithSecretName(name).
				WithItems(corev1ac.KeyToPath().WithKey(key).WithPath("token"))))
		mounts = append(mounts, corev1ac.VolumeMount().WithName("api-token").
			WithMountPath(APITokenDir).WithReadOnly(true))
	}

	container := corev1ac.Container().
		WithName(ServerContainerName).
		WithImage(in.Image).
		WithPorts(corev1ac.ContainerPort().WithName("http").WithContainerPort(port).WithProtocol(corev1.ProtocolTCP)).
		WithEnv(serverEnv(rs, in)...).
		WithVolumeMounts(mounts...).
		WithStartupProbe(httpProbe("/healthz", 5, 60)).
		WithLivenessProbe(httpProbe("/healthz", 10, 3)).
		WithReadinessProbe(httpProbe("/readyz", 5, 3)).
		WithSecurityContext(restrictedContainerSecurityContext(true))
	container.WithResources(resourceRequirements(ServerResources(rs)))

	return appsv1ac.Deployment(rs.Name, rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(Replicas(rs)).
			// A rollout starts a new pod before it stops an old one, and
			// never has fewer ready pods than wanted.
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(intstr.FromInt32(0)).
					WithMaxSurge(intstr.FromInt32(1)))).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(Labels(rs, ComponentServer)).
				WithAnnotations(map[string]string{InputsHashAnnotation: in.InputsHash}).
				WithSpec(corev1ac.PodSpec().
					// The server needs no Kubernetes API access and no
					// service environment variables.
					WithAutomountServiceAccountToken(false).
					WithEnableServiceLinks(false).
					WithTerminationGracePeriodSeconds(TerminationGracePeriodSeconds).
					WithSecurityContext(restrictedPodSecurityContext()).
					WithContainers(container).
					WithVolumes(volumes...))))
}

// ServerResources returns the server container's resources: spec.server.
// resources, with a CPU request of contract.DefaultServerCPURequest when it
// sets none (an HPA's CPU utilisation is a percentage of the request). A CPU
// limit below the default lowers the default request to the limit, which the
// API server would otherwise refuse.
func ServerResources(rs *ragv1alpha1.RagService) *ragv1alpha1.ResourceRequirements {
	out := &ragv1alpha1.ResourceRequirements{}
	if r := rs.Spec.Server.Resources; r != nil {
		out = r.DeepCopy()
	}
	if _, ok := out.Requests[corev1.ResourceCPU]; ok {
		return out
	}
	cpu := resource.MustParse(contract.DefaultServerCPURequest)
	if limit, ok := out.Limits[corev1.ResourceCPU]; ok && limit.Cmp(cpu) < 0 {
		cpu = limit
	}
	if out.Requests == nil {
		out.Requests = corev1.ResourceList{}
	}
	out.Requests[corev1.ResourceCPU] = cpu
	return out
}

// serverEnv is the RAG server's configuration (see internal/contract).
func serverEnv(rs *ragv1alpha1.RagService, in ServerInputs) []*corev1ac.EnvVarApplyConfiguration {
	vars := modelStoreEnv(rs, cmpOr(in.EmbeddingModel, rs.Spec.EmbeddingModel), in.CollectionOwner)
	if _, _, ok := APITokenRef(rs); ok {
		vars = append(vars, envVar(contract.EnvAPITokenFile, APITokenFile))
	}
	vars = append(vars,
		envVar(contract.EnvDataDir, DataDir),
		envVar(contract.EnvPort, strconv.Itoa(int(ServerPort(rs)))),
	)
	vars = append(vars, retrievalEnv(rs)...)
	vars = append(vars, envVar(contract.EnvRetrievalMode, RetrievalMode(rs)))
	if t := rs.Spec.Server.Tracing; t != nil && t.OTLPEndpoint != "" {
		vars = append(vars, envVar(contract.EnvOTLPEndpoint, t.OTLPEndpoint), envVar(contract.EnvOTelServiceName, rs.Name))
	}
	if rr := rs.Spec.Retrieval.Rerank; rr != nil {
		vars = append(vars,
			envVar(contract.EnvRerankBaseURL, rr.BaseURL),
			envVar(contract.EnvRerankModel, rr.Model),
			envVar(contract.EnvRerankTopN, strconv.Itoa(int(ptr.Deref(rr.TopN, contract.DefaultRerankTopN)))),
		)
	}
	return append(vars,
		envVar(contract.EnvDrainPeriod, DrainPeriod.String()),
		envVar(contract.EnvShutdownTimeout, ShutdownTimeout.String()),
	)
}

// modelStoreEnv is the configuration the server and the indexing Job share:
// the models, the API key (a secretKeyRef, never a copy), the endpoints, the
// vector store and its collection owner. embeddingModel is the model of
// the collection the pod works on: the active one for the server, the
// spec's for the indexer (see EmbeddingModel).
func modelStoreEnv(rs *ragv1alpha1.RagService, embeddingModel, collectionOwner string) []*corev1ac.EnvVarApplyConfiguration {
	s := rs.Spec
	vars := []*corev1ac.EnvVarApplyConfiguration{
		envVar(contract.EnvLLMModel, s.Model),
		envVar(contract.EnvEmbeddingModel, embeddingModel),
	}
	if s.SecretRef != nil {
		vars = append(vars, corev1ac.EnvVar().WithName(contract.EnvAPIKey).
			WithValueFrom(corev1ac.EnvVarSource().
				WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(s.SecretRef.Name).WithKey(SecretKey(rs)))))
	}
	if s.BaseURL != "" {
		vars = append(vars, envVar(contract.EnvBaseURL, s.BaseURL))
	}
	if embeddingURL := cmpOr(s.EmbeddingBaseURL, s.BaseURL); embeddingURL != "" {
		vars = append(vars, envVar(contract.EnvEmbeddingBaseURL, embeddingURL))
	}
	vars = append(vars,
		envVar(contract.EnvChromaURL, ChromaURL(rs)),
		envVar(contract.EnvChromaCollection, CollectionPrefix(rs)),
	)
	if collectionOwner != "" {
		vars = append(vars, envVar(contract.EnvOwner, collectionOwner))
	}
	return vars
}

// retrievalEnv is TOP_K, CHUNK_SIZE and CHUNK_OVERLAP.
func retrievalEnv(rs *ragv1alpha1.RagService) []*corev1ac.EnvVarApplyConfiguration {
	topK, chunkSize, chunkOverlap := Retrieval(rs)
	return []*corev1ac.EnvVarApplyConfiguration{
		envVar(contract.EnvTopK, strconv.Itoa(topK)),
		envVar(contract.EnvChunkSize, strconv.Itoa(chunkSize)),
		envVar(contract.EnvChunkOverlap, strconv.Itoa(chunkOverlap)),
	}
}

func envVar(name, value string) *corev1ac.EnvVarApplyConfiguration {
	return corev1ac.EnvVar().WithName(name).WithValue(value)
}

// Retrieval returns the effective topK, chunk size and chunk overlap: the
// spec's, or the contract's defaults (an unset overlap depends on the chunk
// size, see contract.ChunkOverlap).
func Retrieval(rs *ragv1alpha1.RagService) (topK, chunkSize, chunkOverlap int) {
	r := rs.Spec.Retrieval
	topK = int(ptr.Deref(r.TopK, ragv1alpha1.DefaultTopK))
	chunkSize = int(ptr.Deref(r.ChunkSize, ragv1alpha1.DefaultChunkSize))
	var overlap *int
	if r.ChunkOverlap != nil {
		overlap = ptr.To(int(*r.ChunkOverlap))
	}
	return topK, chunkSize, contract.ChunkOverlap(chunkSize, overlap)
}

// RetrievalMode is the spec's retrieval mode, or the contract's default.
func RetrievalMode(rs *ragv1alpha1.RagService) string {
	return cmpOr(rs.Spec.Retrieval.Mode, contract.DefaultRetrievalMode)
}

// SecretKey returns the key of the model API key in spec.secretRef's Secret.
func SecretKey(rs *ragv1alpha1.RagService) string {
	if ref := rs.Spec.SecretRef; ref != nil && ref.Key != "" {
		return ref.Key
	}
	return ragv1alpha1.DefaultSecretKey
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func httpProbe(path string, period, failures int32) *corev1ac.ProbeApplyConfiguration {
	return corev1ac.Probe().
		WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("http"))).
		WithPeriodSeconds(period).
		WithFailureThreshold(failures)
}

// ServerService builds the ClusterIP Service of the server: port 80, named
// http, to the container port.
func ServerService(rs *ragv1alpha1.RagService) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(rs.Name, rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(SelectorLabels(rs, ComponentServer)).
			WithPorts(corev1ac.ServicePort().
				WithName("http").
				WithProtocol(corev1.ProtocolTCP).
				WithPort(ServicePort).
				WithTargetPort(intstr.FromString("http"))))
}

// NeedsPDB reports whether the server gets a PodDisruptionBudget: only with
// more than one replica, since a budget on one replica blocks node drains.
func NeedsPDB(rs *ragv1alpha1.RagService) bool { return Replicas(rs) > 1 }

// ServerPDB builds the server's PodDisruptionBudget: at most one pod down at
// a time, whatever the replica count.
func ServerPDB(rs *ragv1alpha1.RagService) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(rs.Name, rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentServer))))
}

// ServerNetworkPolicy admits traffic to the server's port from the pods of
// the RagService's namespace and of spec.server.allowedNamespaces only.
// kubectl port-forward goes through the kubelet into the pod's network
// namespace, so it is not affected.
func ServerNetworkPolicy(rs *ragv1alpha1.RagService) *networkingv1ac.NetworkPolicyApplyConfiguration {
	peers := []*networkingv1ac.NetworkPolicyPeerApplyConfiguration{
		networkingv1ac.NetworkPolicyPeer().WithPodSelector(metav1ac.LabelSelector()),
	}
	if ns := rs.Spec.Server.AllowedNamespaces; len(ns) > 0 {
		peers = append(peers, networkingv1ac.NetworkPolicyPeer().
			WithNamespaceSelector(metav1ac.LabelSelector().WithMatchExpressions(
				metav1ac.LabelSelectorRequirement().
					WithKey(corev1.LabelMetadataName).
					WithOperator(metav1.LabelSelectorOpIn).
					WithValues(ns...))))
	}
	return networkingv1ac.NetworkPolicy(rs.Name, rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentServer))).
			WithPolicyTypes("Ingress").
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(peers...).
				WithPorts(networkingv1ac.NetworkPolicyPort().
					WithProtocol(corev1.ProtocolTCP).
					WithPort(intstr.FromInt32(ServerPort(rs))))))
}
