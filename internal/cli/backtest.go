package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/detect"
	"github.com/spikewatch/spikewatch/internal/detection"
	"github.com/spikewatch/spikewatch/internal/notify"
	"github.com/spikewatch/spikewatch/internal/orgs"
	"github.com/spikewatch/spikewatch/internal/pricing"
	"github.com/spikewatch/spikewatch/internal/search"
	"github.com/spikewatch/spikewatch/internal/workload"
)

// BacktestOptions configure a backtest run.
type BacktestOptions struct {
	Events      string
	From, To    time.Time
	OpenSearch  string
	IndexPrefix string
	HubAddr     string // a running hub; "" starts one in-process
	Token       string // for a running hub
	Catalog     *catalog.Catalog
	Directory   orgs.Directory
	Dashboards  string
	Publisher   notify.Publisher
	Progress    io.Writer
	Log         *slog.Logger
	// Reuse skips the replay when the index prefix already holds counts (re-running detection).
	Reuse bool
}

// BacktestResult is what a backtest found.
type BacktestResult struct {
	Alerts   []alerts.Alert
	Series   int
	From, To time.Time
	Elapsed  time.Duration
}

// RunBacktest replays Events through an agent over the real gRPC stream into a hub, indexes into
// OpenSearch, runs the detector over the data's time span and applies the alert rules, dedup and
// enrichment of the live path.
func RunBacktest(ctx context.Context, o BacktestOptions) (*BacktestResult, error) {
	start := time.Now()
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "spikewatch backtest: "+format+"\n", args...)
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Catalog == nil {
		o.Catalog = catalog.Default()
	}
	sc, err := search.New(search.Config{URL: o.OpenSearch})
	if err != nil {
		return nil, err
	}
	reuse := false
	if o.Reuse {
		lo, _, err := sc.TimeRange(ctx, o.IndexPrefix)
		reuse = err == nil && !lo.IsZero()
		if reuse {
			say("reusing the counts already in %s-counts-*", o.IndexPrefix)
		}
	}
	if !reuse {
		if err := replayInto(ctx, sc, &o, say); err != nil {
			return nil, err
		}
	}
	if err := sc.Refresh(ctx, o.IndexPrefix+"-counts-*"); err != nil {
		return nil, err
	}
	return detectAndAlert(ctx, sc, o, say, start)
}

func replayInto(ctx context.Context, sc *search.Client, op *BacktestOptions, say func(string, ...any)) error {
	o := *op
	defer func() { *op = o }()
	if o.HubAddr == "" {
		if err := sc.DeleteIndex(ctx, o.IndexPrefix+"-counts-*"); err != nil {
			return fmt.Errorf("clear %s: %w", o.IndexPrefix, err)
		}
		var b [12]byte
		_, _ = rand.Read(b[:])
		o.Token = "backtest-" + hex.EncodeToString(b[:])
		var auth hub.DevTokens
		if err := auth.Add(o.Token + "=*"); err != nil {
			return err
		}
		h, err := hub.New(hub.Config{GRPCAddr: "127.0.0.1:0", IndexPrefix: o.IndexPrefix}, hub.Settings{Logger: o.Log, Search: sc, Catalog: o.Catalog, Auth: &auth})
		if err != nil {
			return err
		}
		if err := h.Start(ctx); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = h.Shutdown(sctx)
		}()
		o.HubAddr = h.GRPCAddr()
		say("hub started in-process on %s, indices %s-*", o.HubAddr, o.IndexPrefix)
	}
	src := &agent.DirSource{Path: o.Events, Catalog: o.Catalog, Log: o.Log}
	stats := &agent.Stats{}
	a, err := agent.New(agent.Config{Hub: o.HubAddr, Token: o.Token, AgentID: "backtest", Once: true}, agent.Settings{Logger: o.Log, Catalog: o.Catalog, Stats: stats})
	if err != nil {
		return err
	}
	say("replaying %s over gRPC", o.Events)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, src) }()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			break wait
		case <-tick.C:
			st := src.Stats()
			say("replay: %d files, %d events read, %d batches acknowledged", st.Files, st.Events, stats.Accepted.Load())
		}
	}
	st := src.Stats()
	say("replay done: %d files, %d events, %d counted, %d batches acknowledged, %d rejected", st.Files, st.Events, st.Matched, stats.Accepted.Load(), stats.Rejected.Load())
	if stats.Rejected.Load() > 0 {
		return fmt.Errorf("the hub rejected %d batches: %s", stats.Rejected.Load(), stats.LastError())
	}
	return nil
}

func detectAndAlert(ctx context.Context, sc *search.Client, o BacktestOptions, say func(string, ...any), start time.Time) (*BacktestResult, error) {
	if o.From.IsZero() || o.To.IsZero() {
		lo, hi, err := sc.TimeRange(ctx, o.IndexPrefix)
		if err != nil {
			return nil, err
		}
		if lo.IsZero() {
			return nil, errors.New("nothing was indexed: the events hold no catalog API calls")
		}
		if o.From.IsZero() {
			o.From = lo
		}
		if o.To.IsZero() {
			o.To = hi.Add(time.Minute)
		}
	}
	store := &alerts.IndexStore{Search: sc, Index: o.IndexPrefix + "-alerts"}
	_ = sc.DeleteIndex(ctx, store.Index)
	if err := store.Ensure(ctx); err != nil {
		return nil, err
	}
	en := &alerts.SearchEnricher{Search: sc, IndexPrefix: o.IndexPrefix, Catalog: o.Catalog, Directory: o.Directory, Prices: pricing.Default(), DashboardsURL: o.Dashboards}
	m, err := alerts.New(ctx, alerts.Config{}, o.Catalog, store, o.Publisher, en, o.Log)
	if err != nil {
		return nil, err
	}
	say("detecting over %s .. %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	n, err := detection.Backtest(ctx, sc, o.IndexPrefix, o.Catalog, detect.Config{}, o.From, o.To, m, func(s string) { say("%s", s) })
	if err != nil {
		return nil, err
	}
	res := &BacktestResult{Alerts: m.Alerts(), Series: n, From: o.From, To: o.To, Elapsed: time.Since(start)}
	sort.SliceStable(res.Alerts, func(i, j int) bool { return res.Alerts[i].Start.Before(res.Alerts[j].Start) })
	say("%d alerts from %d series in %s", len(res.Alerts), n, res.Elapsed.Round(time.Second))
	return res, nil
}

// DirectoryFromTruth reads account names, OUs and tags from a generated workload's truth.json.
func DirectoryFromTruth(dir string) (orgs.Directory, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		return nil, false
	}
	var t workload.Truth
	if json.Unmarshal(b, &t) != nil {
		return nil, false
	}
	st := orgs.Static{}
	for _, a := range t.Accounts {
		st[a.ID] = orgs.Account{ID: a.ID, Name: a.Name, OUPath: a.OU, Tags: a.Tags, Status: "ACTIVE"}
	}
	return st, true
}

// AlertRow is one line of `spikewatch backtest --json`.
type AlertRow struct {
	AccountID  string             `json:"account_id"`
	API        string             `json:"api"`
	Entity     string             `json:"entity"`
	Start      string             `json:"start"`
	End        string             `json:"end"`
	Grade      float64            `json:"grade"`
	Confidence float64            `json:"confidence"`
	Severity   string             `json:"severity"`
	State      string             `json:"state"`
	Enrichment *alerts.Enrichment `json:"enrichment,omitempty"`
}

// Backtest implements `spikewatch backtest`.
func Backtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.String("events", "", "directory (or file) of CloudTrail to replay")
	from := fs.String("from", "", "start of the analysis (RFC 3339; default: the data's first minute)")
	to := fs.String("to", "", "end of the analysis (RFC 3339; default: the data's last minute)")
	asJSON := fs.Bool("json", false, "one JSON object per alert")
	osURL := fs.String("opensearch", envOr("SPIKEWATCH_OPENSEARCH_URL", "http://127.0.0.1:9200"), "OpenSearch URL")
	prefix := fs.String("index-prefix", "spikewatch-backtest", "index prefix for the replayed counts and alerts (cleared first)")
	hubAddr := fs.String("hub", "", "a running hub to replay through (default: one in-process)")
	token := fs.String("token", os.Getenv("SPIKEWATCH_TOKEN"), "token for --hub")
	catPath := fs.String("catalog", "", "catalog file")
	accounts := fs.String("accounts", "", "accounts file (JSON: id -> {name, ou_path, tags}) for enrichment; default: truth.json beside generated events")
	dashboards := fs.String("dashboards", "", "OpenSearch Dashboards URL for alert links")
	reuse := fs.Bool("reuse", false, "skip the replay when --index-prefix already holds counts (re-run detection only)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *events == "" {
		fmt.Fprintln(stderr, "spikewatch backtest: --events PATH is required")
		return 2
	}
	cat, err := catalog.Load(*catPath)
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch backtest:", err)
		return 1
	}
	o := BacktestOptions{Events: *events, OpenSearch: *osURL, IndexPrefix: *prefix, HubAddr: *hubAddr, Token: *token, Catalog: cat, Dashboards: *dashboards, Progress: stderr, Reuse: *reuse}
	for _, p := range []struct {
		s string
		t *time.Time
	}{{*from, &o.From}, {*to, &o.To}} {
		if p.s == "" {
			continue
		}
		if *p.t, err = time.Parse(time.RFC3339, p.s); err != nil {
			fmt.Fprintln(stderr, "spikewatch backtest: bad time:", err)
			return 2
		}
	}
	if *accounts != "" {
		st, err := orgs.LoadStatic(*accounts)
		if err != nil {
			fmt.Fprintln(stderr, "spikewatch backtest:", err)
			return 1
		}
		o.Directory = st
	} else if d, ok := DirectoryFromTruth(*events); ok {
		o.Directory = d
	}
	res, err := RunBacktest(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch backtest:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	for i := range res.Alerts {
		a := &res.Alerts[i]
		if *asJSON {
			_ = enc.Encode(Alert(a))
			continue
		}
		fmt.Fprintln(stdout, alerts.Text(a, "opened"))
	}
	return 0
}

// Alert is the JSON row of an alert.
func Alert(a *alerts.Alert) AlertRow {
	return AlertRow{AccountID: a.AccountID, API: a.API, Entity: a.Entity, Start: a.Start.UTC().Format(time.RFC3339), End: a.End.UTC().Format(time.RFC3339),
		Grade: a.Grade, Confidence: a.Confidence, Severity: a.Severity, State: a.State, Enrichment: a.Enrichment}
}
