// Package ostest is the integration-test harness: it finds the local OpenSearch that `make test`
// starts (URL in SPIKEWATCH_OPENSEARCH_URL), fails loudly when CI expects it and it is missing, and
// gives each test its own index prefix, deleted when the test ends.
package ostest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/search"
)

// EnvURL names the variable that points tests at OpenSearch.
const EnvURL = "SPIKEWATCH_OPENSEARCH_URL"

// Env is one test's view of the local OpenSearch.
type Env struct {
	URL    string
	Client *search.Client
	// Prefix is unique to the test: name every index, detector and monitor with it.
	Prefix string
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// New returns the test's OpenSearch. Without SPIKEWATCH_OPENSEARCH_URL the test is skipped, unless
// CI=true, where a missing or unreachable OpenSearch fails the test.
func New(t testing.TB) *Env {
	t.Helper()
	url := os.Getenv(EnvURL)
	ci := os.Getenv("CI") == "true"
	if url == "" {
		if ci {
			t.Fatalf("%s is not set but CI=true: integration tests need the local OpenSearch (make opensearch-up)", EnvURL)
		}
		t.Skipf("%s not set: integration test skipped (make test starts OpenSearch and sets it)", EnvURL)
	}
	c, err := search.New(search.Config{URL: url, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("ostest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatalf("ostest: OpenSearch at %s is not reachable (%s set; start it with make opensearch-up): %v", url, EnvURL, err)
	}
	if h.Status == "red" {
		t.Fatalf("ostest: OpenSearch at %s is red", url)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	e := &Env{URL: url, Client: c, Prefix: "t-" + name + "-" + hex.EncodeToString(b[:])}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DeleteIndex(ctx, e.Prefix+"*"); err != nil {
			t.Logf("ostest: cleanup of %s*: %v", e.Prefix, err)
		}
	})
	return e
}

// RequirePlugin skips the test when a plugin component is missing, saying why; with
// SPIKEWATCH_REQUIRE_PLUGINS=1 it fails instead (for clusters that are meant to have every plugin).
func (e *Env) RequirePlugin(t testing.TB, component string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := e.Client.HasPlugin(ctx, component)
	if err != nil {
		t.Fatalf("ostest: list plugins: %v", err)
	}
	if ok {
		return
	}
	msg := component + " is not installed in the local OpenSearch: its plugin zip is not served by the Maven registry " +
		"(see docs/opensearch-local.md; supply zips with OS_PLUGIN_ZIPS=/dir make opensearch-up)"
	if os.Getenv("SPIKEWATCH_REQUIRE_PLUGINS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Context returns a context bounded by d and cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
