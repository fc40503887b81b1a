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

// Command manager runs the ragops operator: the RagService controller, a
// metrics endpoint, health and readiness probes and, optionally, leader
// election.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/flowcontrol"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
	ragcontroller "github.com/ragops/ragops/internal/controller"
	"github.com/ragops/ragops/internal/metricsauth"
	"github.com/ragops/ragops/internal/version"
)

// defaultGCPercent is the manager's GOGC unless the environment sets one
// (make bench-operator measured it; see the README).
const defaultGCPercent = 50

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var (
		metricsAddr             string
		metricsSecure           bool
		enableHTTP2             bool
		probeAddr               string
		pprofAddr               string
		leaderElect             bool
		leaderElectNamespace    string
		watchNamespaces         string
		ragServerImage          string
		clusterDomain           string
		maxConcurrentReconciles int
		kubeAPIQPS              float64
		kubeAPIBurst            int
		leaseDuration           time.Duration
		renewDeadline           time.Duration
		retryPeriod             time.Duration
		memLimit                string
	)
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (https) or :8080 (http); 0 disables it")
	fs.BoolVar(&metricsSecure, "metrics-secure", true,
		"Serve metrics over https, authenticated and authorised through the Kubernetes API")
	fs.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset and Stream Cancellation)")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to")
	fs.StringVar(&pprofAddr, "pprof-bind-address", "",
		"Address the Go profiler (/debug/pprof/) binds to, unauthenticated, e.g. 127.0.0.1:8082; empty disables it")
	fs.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles")
	fs.StringVar(&leaderElectNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; empty means the operator's own namespace (required out of cluster)")
	fs.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch; empty watches all namespaces")
	fs.StringVar(&ragServerImage, "ragserver-image", "ragops/ragserver:"+version.Version,
		"RAG server image for RagServices that set no spec.server.image")
	fs.StringVar(&clusterDomain, "cluster-domain", "cluster.local", "Cluster DNS domain, for status.endpoint")
	fs.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", ragcontroller.DefaultMaxConcurrentReconciles,
		"RagServices reconciled in parallel")
	fs.StringVar(&memLimit, "memory-limit", "",
		"The Go runtime's soft memory limit, e.g. 200Mi (0: none); empty: GOMEMLIMIT if set, else 90% of the container's memory limit")
	fs.Float64Var(&kubeAPIQPS, "kube-api-qps", ragcontroller.DefaultKubeAPIQPS,
		"Requests per second the manager sends to the API server at most, all resources together; "+
			"0 leaves the rate to the API server's priority and fairness")
	fs.IntVar(&kubeAPIBurst, "kube-api-burst", ragcontroller.DefaultKubeAPIBurst, "Requests the manager may send at once above --kube-api-qps (0: twice the QPS)")
	fs.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a replica waits after the leader's last renewal before taking over")
	fs.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it gives up leadership (and exits)")
	fs.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second, "Interval between leader election attempts")
	config.RegisterFlags(fs) // --kubeconfig
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if _, set := os.LookupEnv("GOGC"); !set {
		// The heap is mostly the informer cache, which lives as long as the
		// process: collecting at 1.5 times the live heap instead of twice
		// costs little CPU and a third of the peak memory above it.
		debug.SetGCPercent(defaultGCPercent)
	}
	limit, limitFrom, err := memoryLimit(memLimit, os.Getenv, defaultReadFile)
	if err != nil {
		return err
	}
	if limitFrom == "--memory-limit" || limit > 0 {
		if limit == 0 {
			limit = math.MaxInt64 // none
		}
		debug.SetMemoryLimit(limit)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ragv1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: metricsSecure,
		TLSOpts:       tlsOpts,
	}
	if metricsSecure {
		metricsOpts.FilterProvider = metricsauth.FilterProvider
	}

	restCfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("load the kubeconfig: %w", err)
	}
	// One limiter for every request: client-go would otherwise give each
	// REST client (one per resource) its own QPS.
	restCfg.QPS = -1
	if kubeAPIQPS > 0 {
		if kubeAPIBurst <= 0 {
			kubeAPIBurst = int(2 * kubeAPIQPS)
		}
		restCfg.QPS, restCfg.Burst = float32(kubeAPIQPS), kubeAPIBurst
		restCfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(restCfg.QPS, kubeAPIBurst)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "ragops-operator.ragops.dev",
		LeaderElectionNamespace:       leaderElectNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
		Cache:                         ragcontroller.CacheOptions(splitList(watchNamespaces)),
		Client:                        ragcontroller.ClientOptions(),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	if err := (&ragcontroller.RagServiceReconciler{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Recorder:       mgr.GetEventRecorder("ragops-operator"),
		RagServerImage: ragServerImage,
		ClusterDomain:  clusterDomain,
	}).SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: maxConcurrentReconciles,
		RateLimiter:             ragcontroller.RateLimiter(),
	}); err != nil {
		return fmt.Errorf("set up the RagService controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}

	log.Info("Starting manager", "version", version.Version, "commit", version.Commit, "ragserverImage", ragServerImage,
		"watchNamespaces", watchNamespaces, "leaderElect", leaderElect, "memoryLimit", debug.SetMemoryLimit(-1), "memoryLimitFrom", limitFrom)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
