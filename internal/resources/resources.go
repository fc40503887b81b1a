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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// Label keys and values shared by every child.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelPartOf    = "app.kubernetes.io/part-of"

	// ManagedBy is the value of app.kubernetes.io/managed-by on every child;
	// the operator's cache only holds children carrying it.
	ManagedBy = "ragops-operator"
	// PartOf is the value of app.kubernetes.io/part-of on every child.
	PartOf = "ragops"

	// ComponentServer labels the RAG server's objects.
	ComponentServer = "server"
	// ComponentVectorStore labels Chroma's objects.
	ComponentVectorStore = "vector-store"

	// InputsHashAnnotation on the server pod template holds a hash of the
	// referenced API key, so that rotating it rolls the pods. The documents
	// are not in it: the indexing Job reads them.
	InputsHashAnnotation = "rag.ragops.dev/inputs-hash"

	// CollectionOwnerAnnotation on the Chroma volume holds the identity (the
	// UID of the RagService that created it) that the server stamps on its
	// collection, so that a RagService re-created with the same name keeps
	// using the data of a retained volume.
	CollectionOwnerAnnotation = "rag.ragops.dev/collection-owner"
)

// Fixed paths and ports of the server and Chroma containers.
const (
	ServerContainerName = "ragserver"
	ChromaContainerName = "chroma"
	ChromaPort          = 8000
	ServicePort         = 80
	ScratchDir          = "/tmp"
	DataDir             = "/tmp/ragserver"
	ChromaDataDir       = "/data"
	// NonRootUID is the user (and group) the pods run as by default.
	NonRootUID int64 = 65532
)

// ChromaName is the name of the Chroma StatefulSet, Service and NetworkPolicy
// (and of the Deployment that ran Chroma before the StatefulSet).
func ChromaName(rs *ragv1alpha1.RagService) string { return rs.Name + "-chroma" }

// PVCName is the name of the Chroma PersistentVolumeClaim. It depends on the
// RagService name only, so that a re-created RagService reuses a retained
// volume.
func PVCName(rs *ragv1alpha1.RagService) string { return rs.Name + "-chroma-data" }

// Labels returns the standard labels of a child of the given component.
func Labels(rs *ragv1alpha1.RagService, component string) map[string]string {
	l := SelectorLabels(rs, component)
	l[LabelManagedBy] = ManagedBy
	l[LabelPartOf] = PartOf
	return l
}

// SelectorLabels returns the immutable subset of Labels used in selectors.
func SelectorLabels(rs *ragv1alpha1.RagService, component string) map[string]string {
	// The indexer is the ragserver image's ingest subcommand.
	name := "ragserver"
	if component == ComponentVectorStore {
		name = "chroma"
	}
	return map[string]string{
		LabelName:      name,
		LabelInstance:  rs.Name,
		LabelComponent: component,
	}
}

// ServerSelector is the label selector of the server pods, in the string form
// the scale subresource expects in status.selector.
func ServerSelector(rs *ragv1alpha1.RagService) string {
	return labels.SelectorFromSet(SelectorLabels(rs, ComponentServer)).String()
}

// ChromaURL is the URL the server reaches Chroma at.
func ChromaURL(rs *ragv1alpha1.RagService) string {
	if ext := rs.Spec.VectorStore.External; ext != nil {
		return ext.URL
	}
	return fmt.Sprintf("http://%s.%s.svc:%d", ChromaName(rs), rs.Namespace, ChromaPort)
}

// Endpoint is the in-cluster URL of the RAG server Service (port 80, so no
// port in the URL).
func Endpoint(rs *ragv1alpha1.RagService, clusterDomain string) string {
	return fmt.Sprintf("http://%s.%s.svc.%s", rs.Name, rs.Namespace, clusterDomain)
}

// CollectionPrefix is the server's CHROMA_COLLECTION: namespace and name,
// joined by a dot (which neither contains), so that two RagServices never
// share a collection in a shared Chroma. The server appends a slug of the
// embedding model; the result matches Chroma's name rules (3-512 characters
// from [a-zA-Z0-9._-], starting and ending with a letter or digit).
func CollectionPrefix(rs *ragv1alpha1.RagService) string {
	return rs.Namespace + "." + rs.Name
}

// ManagesChroma reports whether the operator runs Chroma for rs.
func ManagesChroma(rs *ragv1alpha1.RagService) bool {
	return rs.Spec.VectorStore.External == nil
}

// Replicas returns the desired server replicas.
func Replicas(rs *ragv1alpha1.RagService) int32 {
	return ptr.Deref(rs.Spec.Replicas, ragv1alpha1.DefaultReplicas)
}

// RetentionPolicy returns the effective Chroma volume retention policy.
func RetentionPolicy(rs *ragv1alpha1.RagService) ragv1alpha1.RetentionPolicy {
	if c := rs.Spec.VectorStore.Chroma; c != nil && c.RetentionPolicy != "" {
		return c.RetentionPolicy
	}
	return ragv1alpha1.RetentionRetain
}

// ownerReference makes rs the controller of a child, so that deleting rs
// garbage-collects the child and the child's events enqueue rs.
func ownerReference(rs *ragv1alpha1.RagService) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(ragv1alpha1.GroupVersion.String()).
		WithKind("RagService").
		WithName(rs.Name).
		WithUID(rs.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// InputsHash hashes what the server pods read at start-up and that lives
// outside their spec: the referenced key of the API key Secret (nil when
// there is none). Only a digest leaves this function; the key itself is
// never stored.
func InputsHash(apiKey []byte) string {
	h := sha256.New()
	if apiKey != nil {
		// Length-prefixed, as every part of a hash of several inputs.
		fmt.Fprintf(h, "secret:0::%d:", len(apiKey))
		h.Write(apiKey)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// restrictedPodSecurityContext is the pod part of the restricted Pod
// Security profile, as the server and the indexer run: the non-root user
// 65532 and the runtime's default seccomp profile.
func restrictedPodSecurityContext() *corev1ac.PodSecurityContextApplyConfiguration {
	return corev1ac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithRunAsUser(NonRootUID).
		WithRunAsGroup(NonRootUID).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}

// restrictedContainerSecurityContext is the container part of the restricted
// Pod Security profile.
func restrictedContainerSecurityContext(readOnlyRoot bool) *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop(corev1.Capability("ALL"))).
		WithReadOnlyRootFilesystem(readOnlyRoot).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}

// resourceRequirements converts spec resources into an apply configuration;
// nil stays nil so that the field is not owned.
func resourceRequirements(r *ragv1alpha1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	if r == nil || (len(r.Limits) == 0 && len(r.Requests) == 0) {
		return nil
	}
	ac := corev1ac.ResourceRequirements()
	if len(r.Limits) > 0 {
		ac.WithLimits(r.Limits)
	}
	if len(r.Requests) > 0 {
		ac.WithRequests(r.Requests)
	}
	return ac
}

// podSecurityContextApply converts a typed PodSecurityContext into its apply
// configuration. Both share one JSON shape, so a JSON round trip is exact.
func podSecurityContextApply(sc *corev1.PodSecurityContext) *corev1ac.PodSecurityContextApplyConfiguration {
	raw, err := json.Marshal(sc)
	if err != nil {
		panic(fmt.Sprintf("marshal PodSecurityContext: %v", err)) // cannot happen for a typed struct
	}
	ac := &corev1ac.PodSecurityContextApplyConfiguration{}
	if err := json.Unmarshal(raw, ac); err != nil {
		panic(fmt.Sprintf("unmarshal PodSecurityContext: %v", err))
	}
	return ac
}
