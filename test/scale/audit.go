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
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// write is one write request of the manager, as the audit log saw it.
type write struct {
	at        time.Time
	verb      string // create, patch (server-side apply included), update, delete
	resource  string // resource[/subresource]
	namespace string
	name      string
	code      int
}

// key is "verb resource", the table's row.
func (w write) key() string { return w.verb + " " + w.resource }

// auditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// auditLog reads the API server's audit log as it grows and keeps the
// manager's writes.
type auditLog struct {
	path string

	mu     sync.Mutex
	offset int64
	rest   []byte
	writes []write
}

// refresh reads what the API server appended since the last call.
func (a *auditLog) refresh() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		a.offset += int64(len(line))
		if err == io.EOF {
			a.rest = append(a.rest, line...)
			return nil
		}
		if err != nil {
			return err
		}
		if len(a.rest) > 0 {
			line = append(a.rest, line...)
			a.rest = nil
		}
		var ev auditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		if ev.User.Username != managerUser || ev.ObjectRef == nil {
			continue
		}
		switch {
		case ev.Verb == "get" || ev.Verb == "list" || ev.Verb == "watch":
			continue
		case ev.ObjectRef.Resource == "leases":
			// Leader election renews its Lease every retry period: that is
			// the election's cost, not the reconciler's.
			continue
		}
		w := write{at: ev.RequestReceivedTimestamp, verb: ev.Verb, resource: ev.ObjectRef.Resource,
			namespace: ev.ObjectRef.Namespace, name: ev.ObjectRef.Name}
		if ev.ObjectRef.Subresource != "" {
			w.resource += "/" + ev.ObjectRef.Subresource
		}
		if ev.ResponseStatus != nil {
			w.code = ev.ResponseStatus.Code
		}
		a.writes = append(a.writes, w)
	}
}

// between returns the manager's writes received in [from, to).
func (a *auditLog) between(from, to time.Time) ([]write, error) {
	if err := a.refresh(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []write
	for _, w := range a.writes {
		if !w.at.Before(from) && w.at.Before(to) {
			out = append(out, w)
		}
	}
	return out, nil
}

// last returns the time of the manager's latest write (zero without any).
func (a *auditLog) last() (time.Time, error) {
	if err := a.refresh(); err != nil {
		return time.Time{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.writes) == 0 {
		return time.Time{}, nil
	}
	return a.writes[len(a.writes)-1].at, nil
}

// quiesce waits until the manager made no write for quiet, and returns
// when that quiet period began.
func (a *auditLog) quiesce(ctx context.Context, quiet, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		last, err := a.last()
		if err != nil {
			return time.Time{}, err
		}
		if time.Since(last) >= quiet {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the manager kept writing for %s (last write %s ago)", timeout, time.Since(last).Round(time.Millisecond))
		}
		if err := pause(ctx, 250*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// objectName matches the names of the benchmark's RagServices and of the
// objects named after them (children "rs-00001-chroma", events
// "rs-00001.18a...").
var objectName = regexp.MustCompile(`^((?:rs|fail)-\d{5})(?:[-.].*)?$`)

// owner returns the RagService ("namespace/name") a write is about, or "".
func owner(w write) string {
	m := objectName.FindStringSubmatch(w.name)
	if m == nil {
		return ""
	}
	return w.namespace + "/" + m[1]
}

// perObject groups writes by the RagService they are about; writes about
// nothing the benchmark created (the Lease) are under "".
func perObject(writes []write) map[string][]write {
	out := map[string][]write{}
	for _, w := range writes {
		o := owner(w)
		out[o] = append(out[o], w)
	}
	return out
}

// children counts the distinct objects other than the RagService and its
// events that writes touched.
func children(writes []write) int {
	seen := map[string]bool{}
	for _, w := range writes {
		if strings.HasPrefix(w.resource, "ragservices") || w.resource == "events" {
			continue
		}
		seen[w.resource+"/"+w.name] = true
	}
	return len(seen)
}

// byKey counts writes by "verb resource", sorted.
func byKey(writes []write) ([]string, map[string]int) {
	counts := map[string]int{}
	for _, w := range writes {
		counts[w.key()]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, counts
}

// summary is a one-line "verb resource xN" list.
func summary(writes []write) string {
	keys, counts := byKey(writes)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, counts[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
