// Package metricsauth protects the manager's metrics endpoint: a request must carry a bearer token
// that the API server accepts (TokenReview) for a user allowed to GET the path (SubjectAccessReview,
// e.g. through a ClusterRole with nonResourceURLs ["/metrics"]).
//
// It does what controller-runtime's metrics/filters package does, without k8s.io/apiserver and its
// dependencies (gRPC, CEL, OpenTelemetry), which more than doubled the size of the manager binary.
// Decisions are cached briefly (allow 1 minute, deny 10 seconds) so that scrapes do not load the API
// server.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authzclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const (
	allowTTL    = time.Minute
	denyTTL     = 10 * time.Second
	reviewLimit = 10 * time.Second
	maxEntries  = 1024
)

// FilterProvider is a metricsserver.Options.FilterProvider.
func FilterProvider(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	authn, err := authnclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("authentication client: %w", err)
	}
	authz, err := authzclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("authorization client: %w", err)
	}
	a := &Authorizer{TokenReviews: authn.TokenReviews(), SubjectAccessReviews: authz.SubjectAccessReviews(), now: time.Now}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return a.Wrap(log, next), nil
	}, nil
}

// Authorizer checks requests against the API server and caches its answers.
type Authorizer struct {
	TokenReviews         authnclient.TokenReviewInterface
	SubjectAccessReviews authzclient.SubjectAccessReviewInterface

	now   func() time.Time
	mu    sync.Mutex
	cache map[[32]byte]decision
}

type decision struct {
	code    int // http.StatusOK, StatusUnauthorized or StatusForbidden
	expires time.Time
}

// Wrap returns next behind the authentication and authorization check.
func (a *Authorizer) Wrap(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		code, err := a.decide(r.Context(), token, strings.ToLower(r.Method), r.URL.Path)
		if err != nil {
			log.Error(err, "Metrics request authorization failed")
			http.Error(w, "Authorization check failed", http.StatusInternalServerError)
			return
		}
		if code != http.StatusOK {
			http.Error(w, http.StatusText(code), code)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

func (a *Authorizer) decide(ctx context.Context, token, verb, path string) (int, error) {
	key := sha256.Sum256([]byte(verb + "\x00" + path + "\x00" + token))
	now := a.clock()
	a.mu.Lock()
	if d, ok := a.cache[key]; ok && now.Before(d.expires) {
		a.mu.Unlock()
		return d.code, nil
	}
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, reviewLimit)
	defer cancel()
	tr, err := a.TokenReviews.Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return 0, fmt.Errorf("token review: %w", err)
	}
	code := http.StatusUnauthorized
	if tr.Status.Authenticated {
		u := tr.Status.User
		extra := make(map[string]authzv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			extra[k] = authzv1.ExtraValue(v)
		}
		sar, err := a.SubjectAccessReviews.Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: verb},
		}}, metav1.CreateOptions{})
		if err != nil {
			return 0, fmt.Errorf("subject access review: %w", err)
		}
		code = http.StatusForbidden
		if sar.Status.Allowed {
			code = http.StatusOK
		}
	}
	ttl := denyTTL
	if code == http.StatusOK {
		ttl = allowTTL
	}
	a.mu.Lock()
	if a.cache == nil || len(a.cache) >= maxEntries {
		a.cache = make(map[[32]byte]decision)
	}
	a.cache[key] = decision{code: code, expires: now.Add(ttl)}
	a.mu.Unlock()
	return code, nil
}

func (a *Authorizer) clock() time.Time {
	if a.now == nil {
		return time.Now()
	}
	return a.now()
}
