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

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// managerUser is the user the manager authenticates as; the audit log is
// filtered on it.
const managerUser = "ragops-manager"

// leaseNamespace holds the leader election Lease.
const leaseNamespace = "ragops-system"

// auditPolicy logs every write (metadata only: who, what, which object,
// the answer's code) and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// controlPlane is the envtest API server with its audit log and the
// manager's kubeconfig.
type controlPlane struct {
	env        *envtest.Environment
	adminCfg   *rest.Config
	auditPath  string
	kubeconfig string
}

// startControlPlane starts etcd and kube-apiserver with the audit log and a
// /12 Service range, installs the CRDs, and creates the manager's user bound
// to the generated ClusterRole and the leader election Role.
func startControlPlane(ctx context.Context, root, workdir string) (*controlPlane, error) {
	policy := filepath.Join(workdir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	cp := &controlPlane{auditPath: filepath.Join(workdir, "audit.log"), kubeconfig: filepath.Join(workdir, "manager.kubeconfig")}
	cp.env = &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    os.Getenv("KUBEBUILDER_ASSETS"),
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  15 * time.Second,
	}
	args := cp.env.ControlPlane.GetAPIServer().Configure()
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", cp.auditPath)
	// The default /24 gives 254 addresses: the run would measure IP
	// exhaustion, not the operator.
	args.Set("service-cluster-ip-range", "10.96.0.0/12")
	cfg, err := cp.env.Start()
	if err != nil {
		_ = cp.env.Stop() // a CRD the API server refuses leaves it running
		return nil, fmt.Errorf("start envtest: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1 // no client-side limit: the benchmark must not be the bottleneck
	cp.adminCfg = cfg

	user, err := cp.env.ControlPlane.AddUser(envtest.User{Name: managerUser}, nil)
	if err != nil {
		return cp, fmt.Errorf("add user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return cp, err
	}
	if err := os.WriteFile(cp.kubeconfig, kubeconfig, 0o600); err != nil {
		return cp, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return cp, err
	}
	return cp, grantManagerRBAC(ctx, c, root)
}

// grantManagerRBAC binds the manager's user to the ClusterRole controller-gen
// generates from the RBAC markers and to the leader election Role, so that a
// missing permission fails the benchmark as it would fail a deployment.
func grantManagerRBAC(ctx context.Context, c client.Client, root string) error {
	role := &rbacv1.ClusterRole{}
	if err := readYAML(filepath.Join(root, "config", "rbac", "role.yaml"), role); err != nil {
		return err
	}
	role.ObjectMeta = metav1.ObjectMeta{Name: "ragops-bench-manager"}
	leRole := &rbacv1.Role{}
	if err := readYAML(filepath.Join(root, "config", "rbac", "leader_election_role.yaml"), leRole); err != nil {
		return err
	}
	leRole.ObjectMeta = metav1.ObjectMeta{Name: "ragops-bench-leader-election", Namespace: leaseNamespace}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: managerUser}}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}},
		role,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "ragops-bench-manager"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   subjects,
		},
		leRole,
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "ragops-bench-leader-election", Namespace: leaseNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: leRole.Name},
			Subjects:   subjects,
		},
	} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

func readYAML(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (cp *controlPlane) stop() {
	if err := cp.env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
	}
}
