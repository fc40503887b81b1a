package metricsauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var cfg *rest.Config

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
		os.Exit(1)
	}
	env := &envtest.Environment{}
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting envtest: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// countingReviews counts the TokenReviews sent to the API server.
type countingReviews struct {
	authnclient.TokenReviewInterface
	n atomic.Int32
}

func (c *countingReviews) Create(ctx context.Context, tr *authnv1.TokenReview, o metav1.CreateOptions) (*authnv1.TokenReview, error) {
	c.n.Add(1)
	return c.TokenReviewInterface.Create(ctx, tr, o)
}

func TestMetricsNeedAnAuthorisedToken(t *testing.T) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reviews := &countingReviews{TokenReviewInterface: cs.AuthenticationV1().TokenReviews()}
	now := time.Now()
	a := &Authorizer{TokenReviews: reviews, SubjectAccessReviews: cs.AuthorizationV1().SubjectAccessReviews(), now: func() time.Time { return now }}
	srv := httptest.NewServer(a.Wrap(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ragops_metric 1\n")
	})))
	defer srv.Close()

	get := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}

	if got := get(""); got != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", got)
	}
	if got := get("not-a-token"); got != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", got)
	}
	if got := get(tok.Status.Token); got != http.StatusForbidden {
		t.Errorf("valid token without RBAC: %d, want 403", got)
	}

	// Grant the metrics-reader rule (as config/rbac/metrics_reader_role.yaml does).
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The denial is cached for denyTTL; past it the grant takes effect (RBAC itself may lag a moment).
	deadline := time.Now().Add(30 * time.Second)
	for {
		now = now.Add(denyTTL + time.Second)
		if get(tok.Status.Token) == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token was not allowed after the ClusterRoleBinding was created")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An allowed decision is cached: more scrapes within allowTTL send no TokenReview.
	before := reviews.n.Load()
	for range 5 {
		if got := get(tok.Status.Token); got != http.StatusOK {
			t.Fatalf("cached allow: %d", got)
		}
	}
	if n := reviews.n.Load() - before; n != 0 {
		t.Errorf("%d TokenReviews within the cache TTL, want 0", n)
	}
	now = now.Add(allowTTL + time.Second)
	if got := get(tok.Status.Token); got != http.StatusOK {
		t.Errorf("after the TTL: %d", got)
	}
	if n := reviews.n.Load() - before; n != 1 {
		t.Errorf("%d TokenReviews after the TTL expired, want 1", n)
	}
}
