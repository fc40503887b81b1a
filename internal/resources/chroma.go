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
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// chromaSpec returns spec.vectorStore.chroma, or an empty spec (all
// defaults) for objects stored before the API server defaulted it.
func chromaSpec(rs *ragv1alpha1.RagService) *ragv1alpha1.ChromaSpec {
	if c := rs.Spec.VectorStore.Chroma; c != nil {
		return c
	}
	return &ragv1alpha1.ChromaSpec{}
}

// ChromaImage returns the effective Chroma image.
func ChromaImage(rs *ragv1alpha1.RagService) string {
	return cmpOr(chromaSpec(rs).Image, ragv1alpha1.DefaultChromaImage)
}

// ChromaStatefulSet builds the single-replica Chroma StatefulSet, bound to
// the volume ChromaPVC creates (by claim name, not volumeClaimTemplates, so
// that a volume created for the former Deployment, or retained from an
// earlier RagService, is kept as it is).
//
// A StatefulSet, not a Deployment: at most one Chroma process may ever use
// the volume (two writers on Chroma's SQLite and segment files can corrupt
// the index, and on one node ReadWriteOnce does not stop a second pod from
// mounting it). A Deployment replaces a deleted or evicted pod at once, while
// the old one may still run for its whole grace period; the StatefulSet
// controller creates the pod of an identity only after the previous pod of
// that identity is gone, and a rolling update deletes the old pod before it
// creates the new one.
//
// The image's own entrypoint runs (no command), so any Chroma 1.x image that
// listens on 8000 and stores its data in /data works. The pod runs as the
// non-root user 65532 with fsGroup 65532, which makes the volume writable
// whatever user the image was built for; spec.vectorStore.chroma.
// securityContext replaces that for images that need another user.
func ChromaStatefulSet(rs *ragv1alpha1.RagService) *appsv1ac.StatefulSetApplyConfiguration {
	return appsv1ac.StatefulSet(ChromaName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentVectorStore)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(appsv1ac.StatefulSetSpec().
			WithReplicas(1).
			WithServiceName(ChromaName(rs)).
			WithPodManagementPolicy(appsv1.OrderedReadyPodManagement).
			WithUpdateStrategy(appsv1ac.StatefulSetUpdateStrategy().WithType(appsv1.RollingUpdateStatefulSetStrategyType)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentVectorStore))).
			WithTemplate(chromaPodTemplate(rs)))
}

// chromaPodTemplate is the pod of ChromaStatefulSet.
func chromaPodTemplate(rs *ragv1alpha1.RagService) *corev1ac.PodTemplateSpecApplyConfiguration {
	c := chromaSpec(rs)
	probe := func(period, failures int32) *corev1ac.ProbeApplyConfiguration {
		return corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/api/v2/heartbeat").WithPort(intstr.FromString("http"))).
			WithPeriodSeconds(period).
			WithFailureThreshold(failures)
	}
	container := corev1ac.Container().
		WithName(ChromaContainerName).
		WithImage(ChromaImage(rs)).
		WithPorts(corev1ac.ContainerPort().WithName("http").WithContainerPort(ChromaPort).WithProtocol(corev1.ProtocolTCP)).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("data").WithMountPath(ChromaDataDir),
			corev1ac.VolumeMount().WithName("tmp").WithMountPath(ScratchDir),
		).
		WithStartupProbe(probe(5, 60)).
		WithLivenessProbe(probe(10, 3)).
		WithReadinessProbe(probe(5, 3)).
		// Chroma images may write outside /data and /tmp, so the root file
		// system stays writable; everything else is the restricted profile.
		WithSecurityContext(restrictedContainerSecurityContext(false))
	if r := resourceRequirements(c.Resources); r != nil {
		container.WithResources(r)
	}
	return corev1ac.PodTemplateSpec().
		WithLabels(Labels(rs, ComponentVectorStore)).
		WithSpec(corev1ac.PodSpec().
			WithAutomountServiceAccountToken(false).
			WithEnableServiceLinks(false).
			WithSecurityContext(chromaPodSecurityContext(c.SecurityContext)).
			WithContainers(container).
			WithVolumes(
				corev1ac.Volume().WithName("data").WithPersistentVolumeClaim(
					corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(PVCName(rs))),
				corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
			))
}

// chromaPodSecurityContext returns the default non-root pod security context,
// or the user's override converted field by field.
func chromaPodSecurityContext(override *corev1.PodSecurityContext) *corev1ac.PodSecurityContextApplyConfiguration {
	if override == nil {
		return corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(NonRootUID).
			WithRunAsGroup(NonRootUID).
			WithFSGroup(NonRootUID).
			WithFSGroupChangePolicy(corev1.FSGroupChangeOnRootMismatch).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	}
	return podSecurityContextApply(override)
}

// ChromaService builds the ClusterIP Service of Chroma on port 8000.
func ChromaService(rs *ragv1alpha1.RagService) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(ChromaName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentVectorStore)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(SelectorLabels(rs, ComponentVectorStore)).
			WithPorts(corev1ac.ServicePort().
				WithName("http").
				WithProtocol(corev1.ProtocolTCP).
				WithPort(ChromaPort).
				WithTargetPort(intstr.FromString("http"))))
}

// ChromaPVC builds the Chroma PersistentVolumeClaim. owner is the collection
// owner recorded on it (CollectionOwnerAnnotation). With the Retain policy
// it carries no owner reference, so garbage collection never deletes it and
// a RagService re-created with the same name finds it by name; with Delete
// it is owned by the RagService and goes with it. Switching the policy adds
// or removes the owner reference (server-side apply drops a field its
// manager no longer sends).
func ChromaPVC(rs *ragv1alpha1.RagService, owner string) *corev1ac.PersistentVolumeClaimApplyConfiguration {
	c := chromaSpec(rs)
	size := resource.MustParse(ragv1alpha1.DefaultStorageSize)
	if c.Storage.Size != nil {
		size = *c.Storage.Size
	}
	spec := corev1ac.PersistentVolumeClaimSpec().
		WithAccessModes(corev1.ReadWriteOnce).
		WithResources(corev1ac.VolumeResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceStorage: size}))
	if c.Storage.StorageClassName != nil {
		spec.WithStorageClassName(*c.Storage.StorageClassName)
	}
	pvc := corev1ac.PersistentVolumeClaim(PVCName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentVectorStore)).
		WithAnnotations(map[string]string{CollectionOwnerAnnotation: owner}).
		WithSpec(spec)
	if RetentionPolicy(rs) == ragv1alpha1.RetentionDelete {
		pvc.WithOwnerReferences(ownerReference(rs))
	}
	return pvc
}

// ChromaNetworkPolicy admits only this RagService's server pods, indexing
// Job pods and migrator Job pods to Chroma, which has no authentication.
func ChromaNetworkPolicy(rs *ragv1alpha1.RagService) *networkingv1ac.NetworkPolicyApplyConfiguration {
	return networkingv1ac.NetworkPolicy(ChromaName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentVectorStore)).
		WithOwnerReferences(ownerReference(rs)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentVectorStore))).
			WithPolicyTypes("Ingress").
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(
					networkingv1ac.NetworkPolicyPeer().
						WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentServer))),
					networkingv1ac.NetworkPolicyPeer().
						WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentIndexer))),
					networkingv1ac.NetworkPolicyPeer().
						WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(rs, ComponentMigrator)))).
				WithPorts(networkingv1ac.NetworkPolicyPort().
					WithProtocol(corev1.ProtocolTCP).
					WithPort(intstr.FromInt32(ChromaPort)))))
}
