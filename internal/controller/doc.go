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

// Package controller holds the RagService reconciler: it resolves the
// RagService's inputs (the API key Secret), applies the children built by
// package resources with server-side apply under a fixed field owner, runs
// the indexing Jobs of spec.documents, and reports what it observed in the
// status.
//
// The files split the controller by concern:
//
//   - ragservice_controller.go: the Reconcile skeleton and the ordered steps;
//   - ragservice_apply.go: applying and deleting children without idle writes;
//   - ragservice_index.go: the indexing Jobs (when to run, supersession,
//     back-off) and status.index;
//   - ragservice_status.go: conditions, the status patch and events;
//   - ragservice_manager.go: watches, cache scoping and field indexes;
//   - errors.go: the kinds of errors a step returns.
package controller
