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
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// AuthMode returns the effective auth mode: Token unless Disabled.
func AuthMode(rs *ragv1alpha1.RagService) ragv1alpha1.AuthMode {
	if rs.Spec.Auth.Mode == ragv1alpha1.AuthDisabled {
		return ragv1alpha1.AuthDisabled
	}
	return ragv1alpha1.AuthToken
}

// APITokenSecretName is the name of the Secret the operator generates the API
// token into.
func APITokenSecretName(rs *ragv1alpha1.RagService) string { return rs.Name + "-api-token" }

// GeneratesAPIToken reports whether the operator generates the token (auth
// on and no secretRef).
func GeneratesAPIToken(rs *ragv1alpha1.RagService) bool {
	return AuthMode(rs) == ragv1alpha1.AuthToken && rs.Spec.Auth.SecretRef == nil
}

// APITokenRef returns the Secret name and key the server reads its token
// from; ok is false when auth is disabled.
func APITokenRef(rs *ragv1alpha1.RagService) (name, key string, ok bool) {
	if AuthMode(rs) != ragv1alpha1.AuthToken {
		return "", "", false
	}
	if ref := rs.Spec.Auth.SecretRef; ref != nil {
		return ref.Name, cmpOr(ref.Key, ragv1alpha1.DefaultTokenKey), true
	}
	return APITokenSecretName(rs), ragv1alpha1.DefaultTokenKey, true
}

// APITokenSecret builds the generated token Secret, owned by the RagService.
// token is the value already stored (the operator never rotates it) or, on
// creation, a new random one.
func APITokenSecret(rs *ragv1alpha1.RagService, token string) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(APITokenSecretName(rs), rs.Namespace).
		WithLabels(Labels(rs, ComponentServer)).
		WithOwnerReferences(ownerReference(rs)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{ragv1alpha1.DefaultTokenKey: []byte(token)})
}
