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

package controller

// The envtest suite runs the controller in a real manager against a real
// kube-apiserver and etcd (no controllers besides this one: no garbage
// collector, no Deployment controller, no kubelet; tests play those parts).
//
// It needs KUBEBUILDER_ASSETS pointing at a folder with kube-apiserver and
// etcd (make envtest builds them into bin/k8s-assets). Without them the
// suite fails: it never skips.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

const testServerImage = "ragops/ragserver:0.0.0-test"

var (
	// testCfg is the admin config of the test's own client; its requests
	// are not counted.
	testCfg *rest.Config
	// k8sClient is the test's uncached client.
	k8sClient client.Client
	// reconciler is the reconciler the manager runs; the idle-writes test
	// also calls it directly.
	reconciler *RagServiceReconciler
	// managerCache is the manager's informer cache, read directly by the
	// cache test (the client reads Secrets uncached).
	managerCache cache.Cache
	// writes counts the write requests the manager (reconciler, status
	// writes, event recorder) sends to the API server.
	writes = &writeCounter{byNamespace: map[string][]string{}}
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set. The envtest suite needs kube-apiserver and etcd: "+
			"run `make envtest` and set KUBEBUILDER_ASSETS=$(pwd)/bin/k8s-assets (make test does both).")
		return 1
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: KUBEBUILDER_ASSETS=%s has no usable %s: %v\n", assets, bin, err)
			return 1
		}
	}

	logLevel := zapcore.ErrorLevel
	if os.Getenv("RAGOPS_TEST_LOG") != "" {
		logLevel = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(logLevel)))

	testEnv := &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// envtest's default service range (a /24) runs out after about 250
	// Services; the suite creates two per RagService.
	testEnv.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start envtest: %v\n", err)
		// A failure after the control plane started (a CRD the API server
		// refuses) would otherwise leave kube-apiserver and etcd running.
		_ = testEnv.Stop()
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()
	testCfg = cfg
	// Stop the control plane when the test binary is interrupted, so that
	// no kube-apiserver or etcd outlives it.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		_ = testEnv.Stop()
		os.Exit(1)
	}()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ragv1alpha1.AddToScheme(scheme))
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: create client: %v\n", err)
		return 1
	}

	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.WrapTransport = writes.wrap
	// The suite creates hundreds of objects quickly; the default client-side
	// rate limit would make it wait, not the operator.
	mgrCfg.QPS, mgrCfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(nil),
		Client:                 ClientOptions(),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: create manager: %v\n", err)
		return 1
	}
	managerCache = mgr.GetCache()
	reconciler = &RagServiceReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("ragops-operator"),
		RagServerImage: testServerImage,
		ClusterDomain:  "cluster.local",
		// Short enough for TestIndexFailureBacksOff to see several
		// attempts, the policy of the default.
		IndexBackoff: IndexBackoff{Base: time.Second, Max: 4 * time.Second},
	}
	if err := reconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 4}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: set up controller: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "FAIL: cache did not sync")
		return 1
	}
	return m.Run()
}

// writeCounter counts the write requests (anything but GET, HEAD and
// OPTIONS: create, update, patch, apply, delete, including status and
// events) that go through a rest.Config, by namespace.
type writeCounter struct {
	mu          sync.Mutex
	byNamespace map[string][]string
}

var namespaceInPath = regexp.MustCompile(`/namespaces/([^/]+)/`)

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			ns := ""
			if m := namespaceInPath.FindStringSubmatch(req.URL.Path); m != nil {
				ns = m[1]
			}
			w.mu.Lock()
			w.byNamespace[ns] = append(w.byNamespace[ns], req.Method+" "+req.URL.Path)
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

// in returns the writes made so far in a namespace.
func (w *writeCounter) in(ns string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.byNamespace[ns]...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// summarize groups writes by method and resource for failure messages.
func summarize(writes []string) string {
	counts := map[string]int{}
	for _, w := range writes {
		method, path, _ := strings.Cut(w, " ")
		parts := strings.Split(path, "/")
		// /apis/<g>/<v>/namespaces/<ns>/<resource>/<name>[/<sub>]
		resource := path
		for i, p := range parts {
			if p == "namespaces" && i+2 < len(parts) {
				resource = strings.Join(append([]string{parts[i+2]}, parts[min(i+4, len(parts)):]...), "/")
				break
			}
		}
		counts[method+" "+resource]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s x%d; ", k, counts[k])
	}
	return b.String()
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newNamespace creates a namespace for one test. envtest has no namespace
// controller, so namespaces are never deleted; each test gets its own.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
