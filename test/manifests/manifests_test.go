package manifests_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/ragops/ragops/internal/controller"
)

// repoRoot is two levels up from this package.
var repoRoot = func() string { d, _ := filepath.Abs("../.."); return d }()

var cfg *rest.Config

var schemaNamespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: run the tests with `make test` (it builds kube-apiserver and etcd into bin/)")
		os.Exit(1)
	}
	env := &envtest.Environment{
		// The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs
		// (generated from its API types), for the optional observability
		// objects of the chart and config/.
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases"), filepath.Join(repoRoot, "test", "testdata", "monitoring-crds")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting envtest: %v\n", err)
		_ = env.Stop() // a CRD the API server refuses leaves it running
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

// tool returns the path of a tool binary named by an environment variable; missing is a failure.
func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the tests with `make test`", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (run `make test`, which builds it)", env, p, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func decodeAll(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatal("no objects rendered")
	}
	return objs
}

// dryRunApply sends every object to the API server as a server-side apply with dryRun=All, after
// creating (for real) the namespaces they live in. Custom resource definitions are applied for
// real first, so that objects of their kinds can be validated.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seenNS := map[string]bool{}
	for _, o := range objs {
		ns := o.GetNamespace()
		if o.GetKind() == "Namespace" || ns == "" || seenNS[ns] {
			continue
		}
		seenNS[ns] = true
		nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
		data, _ := nsObj.MarshalJSON()
		if _, err := dyn.Resource(schemaNamespaces).Patch(ctx, ns, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "manifests-test"}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s %s: the API server does not serve this kind: %v", gvk, o.GetName(), err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := o.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		data, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{FieldManager: "manifests-test", DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
			t.Errorf("dry-run apply of %s %s/%s rejected: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
}

// roleRules returns the rules of the generated manager ClusterRole.
func roleRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	return role.Rules
}

func find(objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	return nil
}

// managerDefaults are the manager's limits flags at their defaults, as the
// chart and config/manager spell them out.
var managerDefaults = []string{
	fmt.Sprintf("--max-concurrent-reconciles=%d", controller.DefaultMaxConcurrentReconciles),
	fmt.Sprintf("--kube-api-qps=%d", controller.DefaultKubeAPIQPS),
	fmt.Sprintf("--kube-api-burst=%d", controller.DefaultKubeAPIBurst),
}

func TestHelmLint(t *testing.T) {
	helm := tool(t, "RAGOPS_HELM_BIN")
	out := run(t, helm, "lint", "--strict", "charts/ragops")
	if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
		t.Fatalf("helm lint did not pass cleanly:\n%s", out)
	}
	// The schema rejects a bad value with a clear message.
	cmd := exec.Command(helm, "template", "x", "charts/ragops", "--set", "image.pullPolicy=Sometimes")
	cmd.Dir = repoRoot
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "pullPolicy") {
		t.Fatalf("helm template with image.pullPolicy=Sometimes: want a schema error naming pullPolicy, got err=%v:\n%s", err, b)
	}
	cmd = exec.Command(helm, "template", "x", "charts/ragops", "--set", "manager.memoryLimit=lots")
	cmd.Dir = repoRoot
	b, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "memoryLimit") {
		t.Fatalf("helm template with manager.memoryLimit=lots: want a schema error naming memoryLimit, got err=%v:\n%s", err, b)
	}
}

func TestHelmChartAgainstAPIServer(t *testing.T) {
	helm := tool(t, "RAGOPS_HELM_BIN")
	cases := map[string][]string{
		"defaults": nil,
		"every option": {
			"--set", "watchNamespaces={team-a,team-b}",
			"--set", "replicaCount=2",
			"--set", "image.tag=9.9.9",
			"--set", "ragserver.image.tag=9.9.9",
			"--set", "commonLabels.team=platform",
			"--set", "nodeSelector.kubernetes\\.io/os=linux",
			"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
			"--set", "priorityClassName=",
			"--set", "manager.maxConcurrentReconciles=4",
			"--set", "manager.kubeAPIQPS=50",
			"--set", "manager.kubeAPIBurst=100",
			"--set", "manager.memoryLimit=200Mi",
		},
		"observability": {
			"--set", "metrics.serviceMonitor.enabled=true",
			"--set", "grafanaDashboard.enabled=true",
			"--set", "grafanaDashboard.namespace=monitoring",
			"--set", "prometheusRule.enabled=true",
			"--set", "prometheusRule.labels.release=kube-prometheus-stack",
		},
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"template", "ragops", "charts/ragops", "--namespace", "ragops-chart-test", "--include-crds", "--kube-version", "1.37.2"}, extra...)
			objs := decodeAll(t, run(t, helm, args...))

			crd := find(objs, "CustomResourceDefinition", "ragservices.rag.ragops.dev")
			if crd == nil {
				t.Fatal("the chart does not carry the RagService CRD")
			}
			generated, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", "bases", "rag.ragops.dev_ragservices.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := yaml.Unmarshal(generated, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(crd.Object["spec"], want["spec"]) {
				t.Error("charts/ragops/crds differs from config/crd/bases: run `make manifests`")
			}

			cr := find(objs, "ClusterRole", "-manager")
			if cr == nil {
				t.Fatal("no manager ClusterRole rendered")
			}
			var rendered rbacv1.ClusterRole
			data, _ := cr.MarshalJSON()
			if err := yaml.Unmarshal(data, &rendered); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rendered.Rules, roleRules(t)) {
				t.Errorf("the chart's ClusterRole rules differ from config/rbac/role.yaml: run `make manifests`\nchart: %+v", rendered.Rules)
			}

			dep := find(objs, "Deployment", "ragops")
			if dep == nil {
				t.Fatal("no operator Deployment rendered")
			}
			args2, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
			c := args2[0].(map[string]any)
			flags := fmt.Sprint(c["args"])
			for _, f := range []string{"--leader-elect", "--ragserver-image=ragops/ragserver:"} {
				if !strings.Contains(flags, f) {
					t.Errorf("manager args %s lack %s", flags, f)
				}
			}
			if name == "every option" && !strings.Contains(flags, "--watch-namespaces=team-a,team-b") {
				t.Errorf("manager args %s lack --watch-namespaces=team-a,team-b", flags)
			}
			// The chart's defaults are the manager's.
			limits := managerDefaults
			if name == "every option" {
				limits = []string{"--max-concurrent-reconciles=4", "--kube-api-qps=50", "--kube-api-burst=100", "--memory-limit=200Mi"}
			} else if strings.Contains(flags, "--memory-limit") {
				t.Errorf("manager args %s set --memory-limit by default; the manager derives it from the container's limit", flags)
			}
			argList, _, _ := unstructured.NestedStringSlice(c, "args")
			for _, f := range limits {
				if !slices.Contains(argList, f) {
					t.Errorf("manager args %s lack %s", flags, f)
				}
			}
			sc, _, _ := unstructured.NestedMap(c, "securityContext")
			if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
				t.Errorf("manager container securityContext is not restricted: %v", sc)
			}

			if name == "observability" {
				checkObservability(t, objs, "-dashboard", "monitoring")
			}

			var nonCRD []*unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() != "CustomResourceDefinition" {
					nonCRD = append(nonCRD, o)
				}
			}
			dryRunApply(t, nonCRD)
		})
	}
}

// checkObservability checks that the rendered dashboard ConfigMap and
// PrometheusRule carry the sources in config/ unchanged, with the label of
// Grafana's dashboard sidecar.
func checkObservability(t *testing.T, objs []*unstructured.Unstructured, dashboardName, dashboardNamespace string) {
	t.Helper()
	cm := find(objs, "ConfigMap", dashboardName)
	if cm == nil {
		t.Fatal("no dashboard ConfigMap rendered")
	}
	if cm.GetLabels()["grafana_dashboard"] != "1" || (dashboardNamespace != "" && cm.GetNamespace() != dashboardNamespace) {
		t.Errorf("dashboard ConfigMap %s/%s labels %v: want grafana_dashboard=1 in %q", cm.GetNamespace(), cm.GetName(), cm.GetLabels(), dashboardNamespace)
	}
	source, err := os.ReadFile(filepath.Join(repoRoot, "config", "grafana", "ragops-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", "ragops-dashboard.json")
	if strings.TrimSpace(data) != strings.TrimSpace(string(source)) {
		t.Error("the dashboard in the ConfigMap differs from config/grafana/ragops-dashboard.json: run `make manifests`")
	}
	rule := find(objs, "PrometheusRule", "ragops")
	if rule == nil {
		t.Fatal("no PrometheusRule rendered")
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "prometheus", "ragops-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.Object["spec"], want["spec"]) {
		t.Error("the PrometheusRule's spec differs from config/prometheus/ragops-rules.yaml: run `make manifests`")
	}
}

// TestKustomizeObservabilityAgainstAPIServer: config/grafana and
// config/prometheus render the same dashboard and rules as the chart, and the
// API server (with the Prometheus Operator's CRDs) accepts them.
func TestKustomizeObservabilityAgainstAPIServer(t *testing.T) {
	kubectl := tool(t, "RAGOPS_KUBECTL_BIN")
	var objs []*unstructured.Unstructured
	for _, dir := range []string{"config/grafana", "config/prometheus"} {
		objs = append(objs, decodeAll(t, run(t, kubectl, "kustomize", dir))...)
	}
	checkObservability(t, objs, "grafana-dashboard", "system")
	dryRunApply(t, objs)
}

func TestKustomizeDefaultAgainstAPIServer(t *testing.T) {
	kubectl := tool(t, "RAGOPS_KUBECTL_BIN")
	objs := decodeAll(t, run(t, kubectl, "kustomize", "config/default"))
	var nonCRD []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			continue
		}
		nonCRD = append(nonCRD, o)
	}
	dep := find(objs, "Deployment", "controller-manager")
	if dep == nil {
		t.Fatal("config/default renders no controller-manager Deployment")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	for _, f := range managerDefaults {
		if !slices.Contains(args, f) {
			t.Errorf("config/manager args %v lack %s (the manager's default)", args, f)
		}
	}
	if find(objs, "CustomResourceDefinition", "ragservices.rag.ragops.dev") == nil {
		t.Fatal("config/default renders no RagService CRD")
	}
	dryRunApply(t, nonCRD)
}

func TestSampleAgainstAPIServer(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "samples", "rag_v1alpha1_ragservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, string(data))
	for _, o := range objs {
		if o.GetNamespace() == "" {
			o.SetNamespace("samples")
		}
	}
	dryRunApply(t, objs)
}
