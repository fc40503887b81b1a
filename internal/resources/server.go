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

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// ServerInputs are what the server builders need beyond the RagService.
type ServerInputs struct {
	// Image is the server image: spec.server.image or the operator default.
	Image string
	// InputsHash is InputsHash of the referenced Secret key and documents.
	InputsHash string
}

// ServerPort returns the container port of the server.
func ServerPort(rs *ragv1alpha1.RagService) int32 {
	if rs.Spec.Server.Port != 0 {
		return rs.Spec.Server.Port
	}
	return ragv1alpha1.DefaultServerPort
}

// ServerDeployment builds the RAG server Deployment.
func ServerDeployment(rs *ragv1alpha1.RagService, in ServerInputs) *appsv1ac.DeploymentApplyConfiguration {
	selector := SelectorLabels(rs, ComponentServer)
	port := ServerPort(rs)

	volumes := []*corev1ac.VolumeApplyConfiguration{
		corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
	}
	mounts := []*corev1ac.VolumeMountApplyConfiguration{
		corev1ac.VolumeMount().WithName("tmp").WithMountPath(ScratchDir),
	}
	if d := rs.Spec.Documents; d != nil && d.ConfigMapRef != nil {
		volumes = append(volumes, corev1ac.Volume().WithName("documents").
			WithConfigMap(corev1ac.ConfigMapVolumeSource().WithName(d.ConfigMapRef.Name)))
		mounts = append(mounts, corev1ac.VolumeMount().WithName("documents").
			WithMountPath(DocumentsDir).WithReadOnly(true))
	}

	container := corev1ac.Container().
		WithName(ServerContainerName).
		WithImage(in.Image).
		WithPorts(corev1ac.ContainerPort().WithName("http").WithContainerPort(port).WithProtocol(corev1.ProtocolTCP)).
		WithEnv(serverEnv(rs)...).
		WithVolumeMounts(mounts...).
		WithStartupProbe(httpProbe("/healthz", 5, 60)).
		WithLivenessProbe(httpProbe("/healthz", 10, 3)).
		WithReadinessProbe(httpProbe("/readyz", 5, 3)).
		WithSecurityContext(restrictedContainerSecurityContext(true))
	if r := resourceRequirements(rs.Spec.Server.Resources); r != nil {
		container.WithResources(r)
	}

	return appsv1ac.Deployment(rs.Name, rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(Replicas(rs)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(Labels(rs, ComponentServer)).
				WithAnnotations(map[string]string{InputsHashAnnotation: in.InputsHash}).
				WithSpec(corev1ac.PodSpec().
					// The server needs no Kubernetes API access and no
					// service environment variables.
					WithAutomountServiceAccountToken(false).
					WithEnableServiceLinks(false).
					WithSecurityContext(corev1ac.PodSecurityContext().
						WithRunAsNonRoot(true).
						WithRunAsUser(NonRootUID).
						WithRunAsGroup(NonRootUID).
						WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
					WithContainers(container).
					WithVolumes(volumes...))))
}

// serverEnv is the RAG server's configuration (see the ragserver contract).
func serverEnv(rs *ragv1alpha1.RagService) []*corev1ac.EnvVarApplyConfiguration {
	env := func(name, value string) *corev1ac.EnvVarApplyConfiguration {
		return corev1ac.EnvVar().WithName(name).WithValue(value)
	}
	itoa := func(v *int32, def int32) string { return strconv.Itoa(int(ptr.Deref(v, def))) }
	s := rs.Spec

	vars := []*corev1ac.EnvVarApplyConfiguration{
		env("LLM_MODEL", s.Model),
		env("EMBEDDING_MODEL", s.EmbeddingModel),
	}
	if s.SecretRef != nil {
		key := s.SecretRef.Key
		if key == "" {
			key = ragv1alpha1.DefaultSecretKey
		}
		vars = append(vars, corev1ac.EnvVar().WithName("OPENAI_API_KEY").
			WithValueFrom(corev1ac.EnvVarSource().
				WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(s.SecretRef.Name).WithKey(key))))
	}
	if s.BaseURL != "" {
		vars = append(vars, env("OPENAI_BASE_URL", s.BaseURL))
	}
	if embeddingURL := cmpOr(s.EmbeddingBaseURL, s.BaseURL); embeddingURL != "" {
		vars = append(vars, env("EMBEDDING_BASE_URL", embeddingURL))
	}
	vars = append(vars,
		env("CHROMA_URL", ChromaURL(rs)),
		env("CHROMA_COLLECTION", rs.Name),
	)
	if s.Documents != nil && s.Documents.ConfigMapRef != nil {
		vars = append(vars, env("DOCS_DIR", DocumentsDir))
	}
	return append(vars,
		env("DATA_DIR", DataDir),
		env("PORT", strconv.Itoa(int(ServerPort(rs)))),
		env("TOP_K", itoa(s.Retrieval.TopK, ragv1alpha1.DefaultTopK)),
		env("CHUNK_SIZE", itoa(s.Retrieval.ChunkSize, ragv1alpha1.DefaultChunkSize)),
		env("CHUNK_OVERLAP", itoa(s.Retrieval.ChunkOverlap, ragv1alpha1.DefaultChunkOverlap)),
	)
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
