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

import (
	"errors"
	"fmt"
	"time"

	ragv1alpha1 "github.com/ragops/ragops/api/v1alpha1"
)

// A step returns one of three kinds of error, and Reconcile treats each
// differently:
//
//   - a stallError: the spec cannot work as written (something the CRD's
//     validation cannot express). The pass sets Ready=False with the reason
//     and returns a terminal error: no retry until the spec changes.
//   - a waitError: a prerequisite is missing (the Secret, its key, the
//     documents ConfigMap). The pass sets a condition and requeues after a
//     long interval as a safety net; the watch on the prerequisite wakes the
//     RagService as soon as it appears.
//   - anything else is transient and returned, so the workqueue backs off.

// stallError is an invalid spec.
type stallError struct {
	reason  string
	message string
}

func (e *stallError) Error() string { return e.message }

func stall(reason, format string, args ...any) error {
	return &stallError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// waitError is a missing prerequisite.
type waitError struct {
	reason  string
	message string
	// after overrides waitRequeueAfter, for a prerequisite no watch sees.
	after time.Duration
}

func (e *waitError) Error() string { return e.message }

func wait(reason, format string, args ...any) error {
	return &waitError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// conflict is a wait for an object that blocks a child's name and that the
// operator does not watch (it is not labelled as a child): look again soon.
func conflict(format string, args ...any) error {
	return &waitError{reason: ragv1alpha1.ReasonChildConflict, message: fmt.Sprintf(format, args...), after: conflictWaitRequeueAfter}
}

// conflictWaitRequeueAfter is how often a ChildConflict looks again.
const conflictWaitRequeueAfter = 10 * time.Second

// waitRequeueAfter is the safety-net requeue of a waiting RagService. The
// watches on Secrets and ConfigMaps normally wake it much earlier.
const waitRequeueAfter = 5 * time.Minute

// conflictRequeueAfter is how soon a pass that lost a status write race
// looks again.
const conflictRequeueAfter = time.Second

func asStall(err error) (*stallError, bool) {
	var s *stallError
	ok := errors.As(err, &s)
	return s, ok
}

func asWait(err error) (*waitError, bool) {
	var w *waitError
	ok := errors.As(err, &w)
	return w, ok
}
