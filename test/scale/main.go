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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the benchmark's flags.
type options struct {
	secrets       int
	ragServices   int
	namespaces    int
	idle          time.Duration
	failing       int
	backoffWindow time.Duration
	failover      bool
	managerArgs   string
	managerSrc    string
	timeout       time.Duration
	keep          bool
	failoverSlack int
	retryQPS      float64
	extraWrites   int
	profile       bool
	managerEnv    string
}

func main() {
	var o options
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	fs.IntVar(&o.secrets, "secrets", 10000, "unrelated Secrets, spread over the namespaces")
	fs.IntVar(&o.ragServices, "ragservices", 1000, "RagServices, spread over the namespaces")
	fs.IntVar(&o.namespaces, "namespaces", 10, "namespaces")
	fs.DurationVar(&o.idle, "idle", time.Minute, "idle period during which the manager must not write")
	fs.IntVar(&o.failing, "failing", 1000, "RagServices whose Services a ResourceQuota refuses (0 skips the phase)")
	fs.DurationVar(&o.backoffWindow, "backoff-window", 2*time.Minute, "how long the failing RagServices are watched")
	fs.Float64Var(&o.retryQPS, "retry-qps", 10,
		"retries per second of failing RagServices allowed in aggregate (the manager's workqueue bucket), beyond two passes each and a burst of 100")
	fs.IntVar(&o.extraWrites, "extra-writes", 4,
		"writes a RagService may cost to converge beyond one apply per child: a status patch and an event "+
			"when its children are created (Progressing), and again when it becomes Ready")
	fs.BoolVar(&o.failover, "failover", true, "run the leader failover phase")
	fs.IntVar(&o.failoverSlack, "failover-slack", 8,
		"writes the failover may add over the same spec change without one (passes in flight when the leader dies)")
	fs.StringVar(&o.managerArgs, "manager-args", "", "extra manager flags, space-separated")
	fs.StringVar(&o.managerEnv, "manager-env", "", "extra environment of the manager, space-separated NAME=value (e.g. GOMEMLIMIT=80MiB)")
	fs.BoolVar(&o.profile, "profile", false,
		"serve the manager's pprof on localhost and save its heap profile after the spec change (heap.pprof, heap.txt) in the kept work directory")
	fs.StringVar(&o.managerSrc, "manager-src", "", "source tree of the manager to build (default: this repository)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "deadline of each phase")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (audit log, manager logs)")
	_ = fs.Parse(os.Args[1:])
	if o.profile {
		o.keep = true
	}

	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (retErr error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make envtest` and set it to bin/k8s-assets (make bench-operator does both)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	src := o.managerSrc
	if src == "" {
		src = root
	}
	workdir, err := os.MkdirTemp("", "ragops-scale-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil || o.keep {
			fmt.Fprintf(os.Stderr, "work directory kept: %s\n", workdir)
			return
		}
		_ = os.RemoveAll(workdir)
	}()

	logf("Building the manager (%s) while the control plane starts", src)
	built := make(chan error, 1)
	var bin string
	go func() {
		var err error
		bin, err = buildManager(src, workdir)
		built <- err
	}()
	cp, err := startControlPlane(ctx, root, workdir)
	if cp != nil {
		defer cp.stop()
	}
	if err != nil {
		return err
	}
	if err := <-built; err != nil {
		return err
	}
	b := &bench{o: o, cp: cp, bin: bin, workdir: workdir, audit: &auditLog{path: cp.auditPath}}
	// The benchmark's own watches end before the control plane stops (the
	// API server would wait for them).
	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	if b.w, err = newWorld(wctx, cp.adminCfg); err != nil {
		return err
	}
	return b.run(ctx)
}

// repoRoot finds the directory of go.mod from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from the repository")
		}
		dir = parent
	}
}

var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func splitArgs(s string) []string { return strings.Fields(s) }
