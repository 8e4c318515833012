package adsync_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/adsync"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/search"
)

// Reconcile against the real plugins: twice (the second run changes nothing), then with the
// shingle of ec2:RunInstances changed from 8 to 4 (that detector follows, nothing else changes).
// It skips where the anomaly detection, alerting and notifications plugins are not installed
// (the local Maven-built node; see docs/opensearch-local.md) and runs where they are.
func TestReconcileAgainstPlugins(t *testing.T) {
	e := ostest.New(t)
	for _, p := range adsync.Plugins {
		e.RequirePlugin(t, p)
	}
	ctx := ostest.Context(t, 5*time.Minute)
	var b [3]byte
	_, _ = rand.Read(b[:])
	short := "swt-" + hex.EncodeToString(b[:]) // detector names stay under the plugin's 64 characters
	s := adsync.Settings{
		IndexPrefix:   e.Prefix,
		NamePrefix:    short,
		ResultIndex:   adsync.ResultIndexPrefix + short,
		WebhookURL:    "http://127.0.0.1:9/spikewatch-test-hook",
		WebhookSecret: "test-secret",
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// An empty catalog: the reconciler stops and deletes every detector and monitor it owns.
		if rep, err := adsync.NewReconciler(e.Client, &catalog.Catalog{}, s, nil).Reconcile(ctx); err != nil {
			t.Logf("cleanup: %v (%d changes)", err, rep.Changes)
		}
		_ = e.Client.Do(ctx, http.MethodDelete, "/_plugins/_notifications/configs/"+adsync.ChannelID(s), nil, nil)
		_ = e.Client.DeleteIndex(ctx, s.ResultIndex+"*")
	})

	// The plugin creates detectors only over indices with documents: index a little of each API.
	if err := e.Client.EnsureCountsTemplate(ctx, e.Prefix); err != nil {
		t.Fatal(err)
	}
	cat := catalog.Default()
	now := time.Now().UTC().Truncate(time.Minute)
	var docs []search.CountDoc
	for i := 0; i < 60; i++ {
		m := now.Add(-time.Duration(i) * time.Minute)
		for _, acct := range []string{"111111111111", "222222222222"} {
			for _, a := range cat.APIs {
				entity := ""
				if a.Entity != nil {
					entity = "fn-a"
				}
				docs = append(docs, search.CountDoc{ID: search.CountDocID("t", m, acct, "us-east-1", a.ID, entity),
					Timestamp: m, AccountID: acct, Region: "us-east-1", API: a.ID, Entity: entity, Calls: int64(3 + i%4), Units: int64(1 + i%3), Unit: "t"})
			}
		}
	}
	if err := e.Client.IndexCounts(ctx, e.Prefix, docs); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Refresh(ctx, e.Prefix+"-counts-*"); err != nil {
		t.Fatal(err)
	}

	r := adsync.NewReconciler(e.Client, cat, s, nil)
	rep, err := r.Reconcile(ctx)
	if err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	t.Logf("first reconcile: %d changes, hc %d/%d, actions %v", rep.Changes, rep.HCNeeded, rep.HCLimit, rep.Actions)
	if len(rep.DetectorIDs) != len(cat.APIs) || len(rep.Pending) != 0 {
		t.Fatalf("detectors %v, pending %v", rep.DetectorIDs, rep.Pending)
	}
	ec2 := rep.DetectorIDs["ec2:RunInstances"]
	checkDetector(ctx, t, e.Client, ec2, 8)

	rep, err = r.Reconcile(ctx)
	if err != nil || rep.Changes != 0 {
		t.Fatalf("second reconcile: %v, %d changes: %v", err, rep.Changes, rep.Actions)
	}

	changed := catalog.Default()
	changed.APIs[0].Detector.ShingleSize = 4
	r = adsync.NewReconciler(e.Client, changed, s, nil)
	rep, err = r.Reconcile(ctx)
	if err != nil {
		t.Fatalf("reconcile after the shingle change: %v", err)
	}
	for _, a := range rep.Actions {
		if a.Name != adsync.DetectorName(s, "ec2:RunInstances") || a.Kind != adsync.KindDetector {
			t.Errorf("unexpected action after the shingle change: %s", a)
		}
	}
	if rep.Changes == 0 || rep.DetectorIDs["ec2:RunInstances"] != ec2 {
		t.Errorf("shingle change: %d changes, detector %s (was %s)", rep.Changes, rep.DetectorIDs["ec2:RunInstances"], ec2)
	}
	checkDetector(ctx, t, e.Client, ec2, 4)
	if rep, err = r.Reconcile(ctx); err != nil || rep.Changes != 0 {
		t.Fatalf("reconcile after the change, again: %v, %d changes: %v", err, rep.Changes, rep.Actions)
	}
}

// checkDetector asserts a detector's shingle size and that its real-time job runs.
func checkDetector(ctx context.Context, t *testing.T, c *search.Client, id string, shingle int) {
	t.Helper()
	var d struct {
		Detector struct {
			Shingle  int      `json:"shingle_size"`
			Category []string `json:"category_field"`
		} `json:"anomaly_detector"`
		Job *struct {
			Enabled bool `json:"enabled"`
		} `json:"anomaly_detector_job"`
	}
	if err := c.Do(ctx, http.MethodGet, "/_plugins/_anomaly_detection/detectors/"+id+"?job=true", nil, &d); err != nil {
		t.Fatal(err)
	}
	if d.Detector.Shingle != shingle || d.Job == nil || !d.Job.Enabled || fmt.Sprint(d.Detector.Category) != "[account_id]" {
		t.Errorf("detector %s: shingle %d (want %d), category %v, job %+v", id, d.Detector.Shingle, shingle, d.Detector.Category, d.Job)
	}
}
