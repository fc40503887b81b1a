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

// Package resources builds the desired state of every object a RagService
// owns: the RAG server Deployment, Service and PodDisruptionBudget, the
// Chroma Deployment, Service, PersistentVolumeClaim and NetworkPolicy, and
// the indexing Job.
//
// The builders are pure: given a RagService and the inputs the reconciler
// resolved (the server image, the hash of the referenced Secret, the
// sources hash), they return server-side apply configurations and make no
// client calls. The reconciler applies them with a fixed field owner (and
// creates the indexing Job once: a Job's template is immutable).
package resources
