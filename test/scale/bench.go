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
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// bench runs the phases and collects the figures of the report.
type bench struct {
	o       options
	cp      *controlPlane
	bin     string
	workdir string
	audit   *auditLog
	w       *world

	namespaces []string
	keys       []types.NamespacedName

	rep    report
	checks []check
}

type check struct {
	ok   bool
	what string
}

func (b *bench) check(ok bool, format string, args ...any) {
	b.checks = append(b.checks, check{ok: ok, what: fmt.Sprintf(format, args...)})
}

// phase is one timed step with its manager writes.
type phase struct {
	duration  time.Duration
	p50, p99  time.Duration
	writes    []write
	perObject map[string][]write
}

type report struct {
	setup                         time.Duration
	converge, respec, failover    phase
	idleWrites                    []write
	stats                         procStats
	failingWrites                 []write
	failingFirstHalf, failingLast float64 // writes per failing object per minute
	failingObjects                int
	takeover, afterKill           time.Duration
	failoverExtra                 int
}

func (b *bench) run(ctx context.Context) error {
	o := b.o
	if err := b.populate(ctx); err != nil {
		return err
	}

	logf("Starting the manager %s %s", o.managerEnv, o.managerArgs)
	args := splitArgs(o.managerArgs)
	var pprofAddr string
	if o.profile {
		var err error
		if pprofAddr, err = freeLocalAddr(); err != nil {
			return err
		}
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	m, err := startManager(b.bin, b.workdir, "manager", b.cp.kubeconfig, args, splitArgs(o.managerEnv))
	if err != nil {
		return err
	}
	defer m.kill()
	if err := m.waitLog("Starting workers", 3*time.Minute); err != nil {
		return err
	}

	if err := b.converge(ctx); err != nil {
		return err
	}
	if err := b.idle(ctx); err != nil {
		return err
	}
	if err := b.respec(ctx, "gpt-4.1-mini", &b.rep.respec); err != nil {
		return err
	}
	if b.rep.stats, err = m.stats(); err != nil {
		return err
	}
	if o.profile {
		if err := saveHeapProfile(pprofAddr, b.workdir); err != nil {
			return err
		}
		logf("Heap profile: %s", filepath.Join(b.workdir, "heap.pprof"))
	}
	if o.failing > 0 {
		if err := b.backoff(ctx); err != nil {
			return err
		}
	}
	if ok, err := m.exited(); ok {
		return fmt.Errorf("the manager exited during the run: %w", err)
	}
	if err := m.stop(time.Minute); err != nil {
		return err
	}
	if o.failover {
		// A failed failover still prints what the earlier phases measured.
		if err := b.failoverPhase(ctx); err != nil {
			b.check(false, "failover: %v", err)
		}
	}
	b.print()
	var failed []string
	for _, c := range b.checks {
		if !c.ok {
			failed = append(failed, c.what)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

// populate creates the namespaces, the Secret the RagServices reference in
// each, and the unrelated Secrets.
func (b *bench) populate(ctx context.Context) error {
	o := b.o
	t0 := time.Now()
	for i := range o.namespaces {
		ns := fmt.Sprintf("bench-%02d", i)
		b.namespaces = append(b.namespaces, ns)
		for _, obj := range []client.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openai"}, StringData: map[string]string{"OPENAI_API_KEY": "sk-bench"}},
		} {
			if err := b.w.c.Create(ctx, obj); err != nil {
				return err
			}
		}
	}
	payload := strings.Repeat("x", 512)
	logf("Creating %d unrelated Secrets in %d namespaces", o.secrets, o.namespaces)
	if err := parallel(o.secrets, 16, func(i int) error {
		return b.w.c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: b.namespaces[i%o.namespaces], Name: fmt.Sprintf("unrelated-%05d", i),
				Labels: map[string]string{"app": "unrelated"}},
			StringData: map[string]string{"payload": payload},
		})
	}); err != nil {
		return fmt.Errorf("create Secrets: %w", err)
	}
	for i := range o.ragServices {
		b.keys = append(b.keys, types.NamespacedName{Namespace: b.namespaces[i%o.namespaces], Name: fmt.Sprintf("rs-%05d", i)})
	}
	b.rep.setup = time.Since(t0)
	return nil
}

// converge creates the RagServices and times them to Ready.
func (b *bench) converge(ctx context.Context) error {
	logf("Creating %d RagServices", len(b.keys))
	t0 := time.Now()
	if err := parallel(len(b.keys), 16, func(i int) error {
		k := b.keys[i]
		b.w.track(k, 1, time.Now())
		return b.w.c.Create(ctx, ragService(k.Namespace, k.Name))
	}); err != nil {
		return fmt.Errorf("create RagServices: %w", err)
	}
	if err := b.wait(ctx, t0, b.keys, &b.rep.converge); err != nil {
		return fmt.Errorf("converge: %w", err)
	}
	counts, err := b.w.childCounts(ctx, b.namespaces)
	if err != nil {
		return err
	}
	b.checkChildren(counts, "after convergence")
	over := 0
	var example string
	for _, k := range b.keys {
		ws := b.rep.converge.perObject[k.String()]
		if budget := children(ws) + b.o.extraWrites; len(ws) > budget {
			over++
			if example == "" {
				example = fmt.Sprintf("%s: %d writes > %d (%s)", k, len(ws), budget, summary(ws))
			}
		}
	}
	b.check(over == 0, "writes per RagService to converge at most its children + %d (%d over; %s)", b.o.extraWrites, over, example)
	return nil
}

// wait waits for keys to converge, then for the manager to go quiet, and
// fills in the phase.
func (b *bench) wait(ctx context.Context, t0 time.Time, keys []types.NamespacedName, p *phase) error {
	lastLog := time.Now()
	last, latencies, err := b.w.waitConverged(ctx, keys, b.o.timeout, func(done int) {
		if time.Since(lastLog) > 10*time.Second {
			logf("  %d/%d converged", done, len(keys))
			lastLog = time.Now()
		}
	})
	if err != nil {
		return err
	}
	p.duration = last.Sub(t0)
	p.p50, p.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
	logf("  %d converged in %s (p50 %s, p99 %s); waiting for the manager to go quiet", len(keys), p.duration.Round(time.Millisecond),
		p.p50.Round(time.Millisecond), p.p99.Round(time.Millisecond))
	quiet, err := b.audit.quiesce(ctx, 3*time.Second, b.o.timeout)
	if err != nil {
		return err
	}
	if p.writes, err = b.audit.between(t0, quiet.Add(time.Millisecond)); err != nil {
		return err
	}
	p.perObject = perObject(p.writes)
	return nil
}

// checkChildren asserts that every RagService has exactly one of each
// child: one Deployment, one StatefulSet, two Services, one volume, one PodDisruptionBudget,
// and the same number of NetworkPolicies as the others.
func (b *bench) checkChildren(counts map[string]map[string]int, when string) {
	want := map[string]int{"deployments": 1, "statefulsets": 1, "services": 2, "persistentvolumeclaims": 1, "poddisruptionbudgets": 1}
	if first, ok := counts[b.keys[0].String()]; ok {
		want["networkpolicies"] = max(first["networkpolicies"], 1)
	}
	bad := 0
	var example string
	for _, k := range b.keys {
		got := counts[k.String()]
		for kind, n := range want {
			if got[kind] != n {
				bad++
				if example == "" {
					example = fmt.Sprintf("%s has %d %s, want %d", k, got[kind], kind, n)
				}
			}
		}
	}
	b.check(bad == 0, "every RagService has exactly its children %s (%d wrong; %s)", when, bad, example)
}

// idle wakes every RagService once through its Secret (a label change) and
// counts the manager's writes for the idle period.
func (b *bench) idle(ctx context.Context) error {
	logf("Idle for %s (every RagService woken once through its Secret)", b.o.idle)
	t0 := time.Now()
	for _, ns := range b.namespaces {
		s := &corev1.Secret{}
		if err := b.w.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "openai"}, s); err != nil {
			return err
		}
		patch := client.MergeFrom(s.DeepCopy())
		s.Labels = map[string]string{"touched": "yes"}
		if err := b.w.c.Patch(ctx, s, patch); err != nil {
			return err
		}
	}
	if err := pause(ctx, b.o.idle); err != nil {
		return err
	}
	var err error
	if b.rep.idleWrites, err = b.audit.between(t0, time.Now()); err != nil {
		return err
	}
	b.check(len(b.rep.idleWrites) == 0, "no write while idle (%d: %s)", len(b.rep.idleWrites), summary(b.rep.idleWrites))
	return nil
}

// respec changes spec.model on every RagService and times them to Ready.
func (b *bench) respec(ctx context.Context, model string, p *phase) error {
	logf("Changing spec.model to %s on every RagService", model)
	t0 := time.Now()
	if err := b.changeModel(ctx, b.keys, model); err != nil {
		return err
	}
	if err := b.wait(ctx, t0, b.keys, p); err != nil {
		return fmt.Errorf("re-converge: %w", err)
	}
	return nil
}

func (b *bench) changeModel(ctx context.Context, keys []types.NamespacedName, model string) error {
	return parallel(len(keys), 16, func(i int) error {
		k := keys[i]
		rs := &ragv1alpha1.RagService{}
		if err := b.w.c.Get(ctx, k, rs); err != nil {
			return err
		}
		patch := client.MergeFrom(rs.DeepCopy())
		rs.Spec.Model = model
		at := time.Now()
		if err := b.w.c.Patch(ctx, rs, patch); err != nil {
			return err
		}
		b.w.track(k, rs.Generation, at)
		return nil
	})
}

// backoff creates RagServices in a namespace whose ResourceQuota forbids
// Services: every pass fails at the first Service. It measures their write
// rate over the window; the second half must stay under the bound.
func (b *bench) backoff(ctx context.Context) error {
	o := b.o
	const ns = "bench-quota"
	logf("Creating %d RagServices whose Services a ResourceQuota refuses; watching for %s", o.failing, o.backoffWindow)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-services"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceServices: resource.MustParse("0")}},
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openai"}, StringData: map[string]string{"OPENAI_API_KEY": "sk-bench"}},
		quota,
	} {
		if err := b.w.c.Create(ctx, obj); err != nil {
			return err
		}
	}
	// No quota controller runs in envtest: fill in its status as it would.
	quota.Status = corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{corev1.ResourceServices: resource.MustParse("0")},
		Used: corev1.ResourceList{corev1.ResourceServices: resource.MustParse("0")},
	}
	if err := b.w.c.Status().Update(ctx, quota); err != nil {
		return err
	}
	t0 := time.Now()
	if err := parallel(o.failing, 16, func(i int) error {
		return b.w.c.Create(ctx, ragService(ns, fmt.Sprintf("fail-%05d", i)))
	}); err != nil {
		return err
	}
	if err := pause(ctx, o.backoffWindow); err != nil {
		return err
	}
	end := time.Now()
	var err error
	if b.rep.failingWrites, err = b.audit.between(t0, end); err != nil {
		return err
	}
	b.rep.failingObjects = o.failing
	half := t0.Add(end.Sub(t0) / 2)
	var first, second int
	refused := 0
	for _, w := range b.rep.failingWrites {
		if w.at.Before(half) {
			first++
		} else {
			second++
		}
		if w.code >= 400 {
			refused++
		}
	}
	perMin := func(n int, d time.Duration) float64 { return float64(n) / float64(o.failing) / d.Minutes() }
	b.rep.failingFirstHalf = perMin(first, half.Sub(t0))
	b.rep.failingLast = perMin(second, end.Sub(half))
	b.check(refused > 0, "the quota refused the failing RagServices' Services (%d refused writes)", refused)
	// Passes that are not retries are not rate-limited: the first one, and
	// those woken by the events of the children created before the refused
	// one (at most one more each in practice).
	bound := 2*o.failing + 100 + int(o.retryQPS*end.Sub(t0).Seconds())
	b.check(refused <= bound, "failing RagServices back off: %d refused writes in %s, at most %d (two passes each, a burst of 100, %.0f/s)",
		refused, end.Sub(t0).Round(time.Second), bound, o.retryQPS)

	// Leave them out of the failover phase.
	return b.w.c.DeleteAllOf(ctx, &ragv1alpha1.RagService{}, client.InNamespace(ns))
}

// failoverPhase runs two replicas with leader election, changes the spec of
// every RagService, and SIGKILLs the leader when half of them converged.
func (b *bench) failoverPhase(ctx context.Context) error {
	// Shorter than the manager's defaults (15/10/2 s) so that the takeover
	// is quick, but with a renew deadline that a slow, loaded API server
	// still meets: at 4 s both replicas lost the lease under a load average
	// of 40 and the phase measured nothing.
	le := append([]string{
		"--leader-elect", "--leader-election-namespace=" + leaseNamespace,
		"--leader-election-lease-duration=10s", "--leader-election-renew-deadline=8s", "--leader-election-retry-period=2s",
	}, splitArgs(b.o.managerArgs)...)
	logf("Failover: starting replica a (the leader) and replica b")
	a, err := startManager(b.bin, b.workdir, "replica-a", b.cp.kubeconfig, le, splitArgs(b.o.managerEnv))
	if err != nil {
		return err
	}
	defer a.kill()
	if err := a.waitLog("Starting workers", 3*time.Minute); err != nil {
		return err
	}
	holder, err := b.leaseHolder(ctx)
	if err != nil {
		return err
	}
	rb, err := startManager(b.bin, b.workdir, "replica-b", b.cp.kubeconfig, le, splitArgs(b.o.managerEnv))
	if err != nil {
		return err
	}
	defer rb.kill()
	if err := rb.waitLog("Attempting to acquire leader lease", time.Minute); err != nil {
		return err
	}

	t0 := time.Now()
	logf("Failover: changing spec.model on every RagService; SIGKILL of the leader (%s) at half", holder)
	if err := b.changeModel(ctx, b.keys, "gpt-4.1"); err != nil {
		return err
	}
	deadline := time.Now().Add(b.o.timeout)
	for b.w.countDone(b.keys) < len(b.keys)/2 {
		if time.Now().After(deadline) {
			return errors.New("failover: half of the RagServices never converged under the first leader")
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	a.kill()
	killed := time.Now()
	logf("Failover: leader killed with %d/%d converged", b.w.countDone(b.keys), len(b.keys))
	if err := b.wait(ctx, t0, b.keys, &b.rep.failover); err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	if newHolder, err := b.leaseHolder(ctx); err != nil || newHolder == holder {
		return fmt.Errorf("failover: the lease is still %q (%w)", newHolder, err)
	}
	after, err := b.audit.between(killed, time.Now())
	if err != nil {
		return err
	}
	b.rep.afterKill = b.rep.failover.duration - killed.Sub(t0)
	if len(after) > 0 {
		b.rep.takeover = after[0].at.Sub(killed)
	}
	respec := len(b.rep.respec.writes)
	b.rep.failoverExtra = len(b.rep.failover.writes) - respec
	b.check(b.rep.failoverExtra <= b.o.failoverSlack,
		"failover adds at most %d writes over the same change without one (%d vs %d: %s)",
		b.o.failoverSlack, len(b.rep.failover.writes), respec, summary(b.rep.failover.writes))
	counts, err := b.w.childCounts(ctx, b.namespaces)
	if err != nil {
		return err
	}
	b.checkChildren(counts, "after the failover")
	return rb.stop(time.Minute)
}

func (b *bench) leaseHolder(ctx context.Context) (string, error) {
	lease := &coordinationv1.Lease{}
	if err := b.w.c.Get(ctx, types.NamespacedName{Namespace: leaseNamespace, Name: "ragops-operator.ragops.dev"}, lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// print writes the markdown report to stdout.
func (b *bench) print() {
	o, r := b.o, b.rep
	n := len(b.keys)
	fmt.Printf("\n### Operator scale benchmark\n\n")
	fmt.Printf("%d RagServices in %d namespaces beside %d unrelated Secrets; manager flags: `%s`, environment: `%s`\n\n",
		n, o.namespaces, o.secrets, strings.TrimSpace(o.managerArgs), strings.TrimSpace(o.managerEnv))
	fmt.Println("| measure | value |")
	fmt.Println("| --- | --- |")
	row := func(k, format string, args ...any) { fmt.Printf("| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	perObj := func(p phase) string {
		if n == 0 {
			return ""
		}
		most := 0
		for _, k := range b.keys {
			most = max(most, len(p.perObject[k.String()]))
		}
		return fmt.Sprintf("%.2f (max %d)", float64(len(p.writes))/float64(n), most)
	}
	ms := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	row("setup (unrelated Secrets)", "%s", ms(r.setup))
	row("converge: all Ready", "%s", ms(r.converge.duration))
	row("converge: per object p50 / p99", "%s / %s", ms(r.converge.p50), ms(r.converge.p99))
	row("converge: writes per RagService", "%s", perObj(r.converge))
	row(fmt.Sprintf("idle writes (%s, every object woken once)", o.idle), "%d", len(r.idleWrites))
	row("spec change: all Ready again", "%s", ms(r.respec.duration))
	row("spec change: per object p50 / p99", "%s / %s", ms(r.respec.p50), ms(r.respec.p99))
	row("spec change: writes per RagService", "%s", perObj(r.respec))
	row("manager peak RSS (VmHWM)", "%.1f MiB", float64(r.stats.peakRSSKiB)/1024)
	row("manager CPU (converge, idle, spec change)", "%.1f s", r.stats.cpuSeconds)
	if r.failingObjects > 0 {
		row(fmt.Sprintf("failing objects (%d, Services refused): writes per object per minute", r.failingObjects),
			"%.2f first half, %.2f second half of %s", r.failingFirstHalf, r.failingLast, o.backoffWindow)
		row("failing objects: writes", "%d (%s)", len(r.failingWrites), summary(r.failingWrites))
	}
	if o.failover {
		row("failover: first write of the new leader after SIGKILL", "%s", ms(r.takeover))
		row("failover: all Ready after SIGKILL", "%s", ms(r.afterKill))
		row("failover: writes (extra over the same change without failover)", "%d (%+d)", len(r.failover.writes), r.failoverExtra)
	}

	fmt.Printf("\nWrites per RagService by verb and resource (audit log, user %s):\n\n", managerUser)
	cols := []struct {
		name string
		p    phase
	}{{"converge", r.converge}, {"spec change", r.respec}}
	if o.failover {
		cols = append(cols, struct {
			name string
			p    phase
		}{"spec change + failover", r.failover})
	}
	keys := map[string]bool{}
	for _, c := range cols {
		k, _ := byKey(c.p.writes)
		for _, x := range k {
			keys[x] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	header := "| verb resource |"
	sep := "| --- |"
	for _, c := range cols {
		header += " " + c.name + " |"
		sep += " --- |"
	}
	fmt.Println(header)
	fmt.Println(sep)
	for _, k := range sorted {
		line := "| " + k + " |"
		for _, c := range cols {
			_, counts := byKey(c.p.writes)
			line += fmt.Sprintf(" %.2f |", float64(counts[k])/float64(max(n, 1)))
		}
		fmt.Println(line)
	}
	fmt.Println()
	for _, c := range b.checks {
		mark := "ok  "
		if !c.ok {
			mark = "FAIL"
		}
		fmt.Printf("%s %s\n", mark, c.what)
	}
}
