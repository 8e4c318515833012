package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/adsync"
	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/detect"
	"github.com/spikewatch/spikewatch/internal/detection"
	"github.com/spikewatch/spikewatch/internal/notify"
	"github.com/spikewatch/spikewatch/internal/orgs"
	"github.com/spikewatch/spikewatch/internal/pricing"
	"github.com/spikewatch/spikewatch/internal/search"
)

type alertFlags struct {
	mode, prefix                                   string
	windowDelay                                    time.Duration
	snsTopic, awsEndpoint, sinkURL, sinkSecret     string
	monitorSecret, publicURL, dashboards, accounts string
	organizations                                  bool
}

// alertSide builds the alert manager (store, publishers, enrichment) and the detection loop.
func alertSide(ctx context.Context, log *slog.Logger, sc *search.Client, cat *catalog.Catalog, f alertFlags) (*hub.AlertSettings, []func(context.Context) error, error) {
	store := &alerts.IndexStore{Search: sc, Index: f.prefix + "-alerts"}
	if err := store.Ensure(ctx); err != nil {
		return nil, nil, fmt.Errorf("alerts index: %w", err)
	}
	var awsCfg *aws.Config
	loadAWS := func() (aws.Config, error) {
		if awsCfg != nil {
			return *awsCfg, nil
		}
		c, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, fmt.Errorf("aws config: %w", err)
		}
		if f.awsEndpoint != "" {
			c.BaseEndpoint = aws.String(f.awsEndpoint)
		}
		awsCfg = &c
		return c, nil
	}
	var pubs notify.Multi
	if f.snsTopic != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, nil, err
		}
		pubs = append(pubs, notify.NewSNS(c, f.snsTopic))
	}
	if f.sinkURL != "" {
		pubs = append(pubs, &notify.Webhook{URL: f.sinkURL, Secret: f.sinkSecret})
	}
	if len(pubs) == 0 {
		log.Warn("alerts have no destination (give --sns-topic-arn or --alert-webhook): they are only logged and kept in the alerts index")
	}
	var dir orgs.Directory = orgs.None{}
	switch {
	case f.accounts != "":
		st, err := orgs.LoadStatic(f.accounts)
		if err != nil {
			return nil, nil, err
		}
		dir = st
	case f.organizations:
		c, err := loadAWS()
		if err != nil {
			return nil, nil, err
		}
		dir = orgs.NewOrganizations(c, 15*time.Minute)
	}
	en := &alerts.SearchEnricher{Search: sc, IndexPrefix: f.prefix, Catalog: cat, Directory: dir, Prices: pricing.Default(), DashboardsURL: f.dashboards}
	var pub notify.Publisher
	if len(pubs) > 0 {
		pub = pubs
	}
	m, err := alerts.New(ctx, alerts.Config{NotifyResolved: true}, cat, store, pub, en, log)
	if err != nil {
		return nil, nil, err
	}
	as := &hub.AlertSettings{Manager: m, Store: store, WebhookSecret: f.monitorSecret}
	var bg []func(context.Context) error
	switch f.mode {
	case "builtin":
		live := &detection.Live{Search: sc, Prefix: f.prefix, Catalog: cat, Config: detect.Config{}, WindowDelay: f.windowDelay, Sink: m, Log: log.With("component", "detection")}
		bg = append(bg, live.Run)
	case "opensearch":
		if f.publicURL == "" {
			return nil, nil, errors.New("--detect opensearch needs --public-url, where OpenSearch reaches the hub's webhook")
		}
		bg = append(bg, func(ctx context.Context) error { return reconcileLoop(ctx, log, sc, cat, f, as) })
	default:
		return nil, nil, fmt.Errorf("--detect %q: want builtin, opensearch or off", f.mode)
	}
	return as, bg, nil
}

// reconcileLoop keeps the AD detectors, monitors and webhook channel in line with the catalog:
// at start and every 10 minutes (a detector the plugin refused over empty indices is retried).
func reconcileLoop(ctx context.Context, log *slog.Logger, sc *search.Client, cat *catalog.Catalog, f alertFlags, as *hub.AlertSettings) error {
	log = log.With("component", "adsync")
	secret := as.WebhookSecret
	for secret == "" {
		// The hub generates and stores the secret when it starts; wait for it.
		if s := as.Secret(); s != "" {
			secret = s
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	r := adsync.NewReconciler(sc, cat, adsync.Settings{IndexPrefix: f.prefix, WebhookURL: f.publicURL, WebhookSecret: secret}, log)
	reconcile := time.NewTicker(10 * time.Minute)
	defer reconcile.Stop()
	// The hub also polls the anomaly results every minute, so an alert whose webhook was lost is
	// still raised; the alert manager's dedup makes the webhook and the poll agree.
	poll := time.NewTicker(time.Minute)
	defer poll.Stop()
	ids := reconcileOnce(ctx, log, r)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reconcile.C:
			ids = reconcileOnce(ctx, log, r)
		case <-poll.C:
			if len(ids) == 0 {
				continue
			}
			found, err := r.Poll(ctx, ids, time.Now().UTC())
			if err != nil {
				log.Warn("poll anomaly results", "err", err)
				continue
			}
			for _, an := range found {
				sig := alerts.Signal{Time: an.Start.Truncate(time.Minute), End: an.End.Truncate(time.Minute), AccountID: an.AccountID, API: an.API,
					Entity: an.Entity, Grade: an.Grade, Confidence: an.Confidence, Source: "opensearch-ad"}
				if sig.Time.IsZero() {
					sig.Time = time.Now().UTC().Truncate(time.Minute)
				}
				if err := as.Manager.Observe(ctx, sig); err != nil {
					log.Warn("polled alert", "err", err)
				}
			}
		}
	}
}

// reconcileOnce reconciles when the plugins are there and returns the detector ids.
func reconcileOnce(ctx context.Context, log *slog.Logger, r *adsync.Reconciler) map[string]string {
	ok, err := r.Available(ctx)
	switch {
	case err != nil:
		log.Warn("cannot list plugins", "err", err)
		return nil
	case !ok:
		log.Error("the OpenSearch cluster lacks the anomaly detection, alerting or notifications plugin: use --detect builtin")
		return nil
	}
	rep, err := r.Reconcile(ctx)
	if err != nil {
		log.Warn("reconcile", "err", err)
		return nil
	}
	log.Info("reconciled", "changes", rep.Changes, "pending", rep.Pending, "hc_limit", rep.HCLimit)
	return rep.DetectorIDs
}
