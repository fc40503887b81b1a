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
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Retry policy of RagServices whose pass failed with a transient error (an
// apply the API server refuses: quota exceeded, no Service IP left, an
// admission webhook). controller-runtime's default with its priority queue
// is per object only, from 5 ms: 1,000 failing RagServices would send about
// 13,000 refused writes in their first minute. Here each object backs off
// from half a second to five minutes, and all retries together are held to
// 10 per second (a burst of 100), however many objects fail.
const (
	retryBaseDelay = 500 * time.Millisecond
	retryMaxDelay  = 5 * time.Minute
	retryQPS       = 10
	retryBurst     = 100
)

// RateLimiter is the workqueue's retry policy for failed passes. Successful
// passes and RequeueAfter are not limited by it.
func RateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](retryBaseDelay, retryMaxDelay),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(retryQPS, retryBurst)},
	)
}
