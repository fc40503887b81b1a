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

// Command scale is the operator's scale benchmark (make bench-operator).
//
// It starts a real kube-apiserver and etcd (envtest) with an audit log of
// every write and a Service range large enough for thousands of Services,
// creates unrelated Secrets and many RagServices, and runs the real manager
// binary as a child process under its own user, bound to the generated
// ClusterRole (config/rbac/role.yaml). It plays the Deployment and StatefulSet
// controllers (marks them available) and nothing else, and measures from outside:
//
//   - the time until every RagService is Ready for its generation, and each
//     object's time from creation (or spec change) to Ready;
//   - the manager's API writes, from the audit log only, by verb and
//     resource, attributed to RagServices by name;
//   - the writes while nothing changes (every RagService is woken once
//     through its Secret);
//   - the manager's peak RSS (VmHWM) and CPU seconds from /proc;
//   - the writes per minute of RagServices whose children the API server
//     refuses (a ResourceQuota that forbids Services);
//   - a leader failover: two replicas with --leader-elect, the leader
//     SIGKILLed in the middle of a spec change on every object.
//
// With -profile the manager serves pprof on localhost and its heap profile
// after the spec change is saved in the kept work directory.
//
// It prints a markdown table and exits non-zero when a check fails.
package main
