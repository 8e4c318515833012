package adsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/search"
)

// Plugin components the reconciler needs (as _cat/plugins names them).
var Plugins = []string{"opensearch-anomaly-detection", "opensearch-alerting", "opensearch-notifications"}

// ErrPluginsMissing is returned by Reconcile when a plugin of Plugins is not installed.
var ErrPluginsMissing = errors.New("adsync: anomaly detection, alerting or notifications plugin missing")

// Cluster setting that bounds the number of high-cardinality detectors, and its legacy fallback.
const (
	SettingMaxHC       = "plugins.anomaly_detection.max_multi_entity_anomaly_detectors"
	legacySettingMaxHC = "opendistro.anomaly_detection.max_multi_entity_anomaly_detectors"
	defaultMaxHC       = 10
)

// Plugin API paths.
const (
	detectorsPath = "/_plugins/_anomaly_detection/detectors"
	monitorsPath  = "/_plugins/_alerting/monitors"
	configsPath   = "/_plugins/_notifications/configs"
	searchSize    = 1000
)

// Reconciler keeps a cluster's detectors, monitors and channel in line with the catalog. It is the
// only part of the package that talks to OpenSearch, always through search.Client.
type Reconciler struct {
	c   *search.Client
	cat *catalog.Catalog
	s   Settings
	log *slog.Logger
}

// NewReconciler returns a reconciler; log may be nil.
func NewReconciler(c *search.Client, cat *catalog.Catalog, s Settings, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{c: c, cat: cat, s: s.WithDefaults(), log: log.With("component", "adsync")}
}

// Report says what a Reconcile did.
type Report struct {
	// Actions are the steps taken, in order, including conflicts (which change nothing).
	Actions []Action
	// Changes counts the actions that changed the cluster; 0 when it was already in line.
	Changes int
	// Pending lists detectors not created yet, and why (for example: no counts indexed yet, the
	// plugin refuses to create a detector over empty indices). Reconcile again later.
	Pending []string
	// HCNeeded is the number of high-cardinality detectors the cluster must allow (Spikewatch's
	// plus the others); HCLimit is the cluster's limit after the reconcile.
	HCNeeded, HCLimit int
	// DetectorIDs maps catalog API ids to detector ids.
	DetectorIDs map[string]string
}

// Available reports whether the anomaly detection, alerting and notifications plugins are all
// installed.
func (r *Reconciler) Available(ctx context.Context) (bool, error) {
	missing, err := r.missingPlugins(ctx)
	return len(missing) == 0 && err == nil, err
}

func (r *Reconciler) missingPlugins(ctx context.Context) ([]string, error) {
	have, err := r.c.Plugins(ctx)
	if err != nil {
		return nil, fmt.Errorf("adsync: list plugins: %w", err)
	}
	var missing []string
	for _, p := range Plugins {
		found := false
		for _, h := range have {
			found = found || h == p
		}
		if !found {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// Reconcile brings the cluster in line with the catalog: the high-cardinality detector limit, the
// channel, the detectors (created, updated, started), then the monitors. It is idempotent: run on
// a cluster already in line it changes nothing (Report.Changes == 0). It goes on past a failed
// action, skipping the later steps of that object, and returns the failures joined.
func (r *Reconciler) Reconcile(ctx context.Context) (Report, error) {
	rep := Report{DetectorIDs: map[string]string{}}
	if err := r.s.Validate(); err != nil {
		return rep, err
	}
	desired := DesiredDetectors(r.cat, r.s)
	for _, d := range desired {
		if len(d.Name) > 64 {
			return rep, fmt.Errorf("adsync: detector name %q is longer than the plugin's 64 characters: shorten the name prefix", d.Name)
		}
	}
	missing, err := r.missingPlugins(ctx)
	if err != nil {
		return rep, err
	}
	if len(missing) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrPluginsMissing, strings.Join(missing, ", "))
	}
	ex := &executor{r: r, rep: &rep, ids: map[string]string{}, failed: map[string]bool{}}

	// What exists.
	current, err := r.detectors(ctx)
	if err != nil {
		return rep, err
	}
	totalHC, err := r.countHC(ctx)
	if err != nil {
		return rep, err
	}
	hasCounts, err := r.hasCounts(ctx)
	if err != nil {
		return rep, err
	}
	exists := map[string]bool{}
	ownedHC := 0
	for _, c := range current {
		exists[c.Name] = true
		if ownedDetector(r.s, c) {
			ex.ids[c.Name] = c.ID
			if len(c.CategoryFields) > 0 {
				ownedHC++
			}
		}
	}
	planned := desired[:0:0]
	for _, d := range desired {
		if !exists[d.Name] && !hasCounts {
			rep.Pending = append(rep.Pending, d.Name+": no documents in "+r.s.IndexPrefix+"-counts-* yet (the plugin refuses to create a detector over empty indices)")
			continue
		}
		planned = append(planned, d)
	}

	// 1. The high-cardinality detector limit.
	rep.HCNeeded = totalHC - ownedHC + len(planned)
	if rep.HCLimit, err = r.ensureHCLimit(ctx, rep.HCNeeded, ex); err != nil {
		return rep, err
	}

	// 2. The channel.
	ch := DesiredChannel(r.s)
	cur, err := r.channel(ctx, ch.ID)
	if err != nil {
		return rep, err
	}
	ex.run(ctx, PlanChannel(ch, cur))

	// 3, 4. Detectors, created or updated, then started.
	ex.run(ctx, PlanDetectors(r.s, planned, current))
	for _, d := range desired {
		if id := ex.ids[d.Name]; id != "" {
			rep.DetectorIDs[d.API] = id
		}
	}

	// 5. Monitors, over the detectors that exist.
	monitors, err := r.monitors(ctx)
	if err != nil {
		return rep, errors.Join(append(ex.errs, err)...)
	}
	ex.run(ctx, PlanMonitors(r.s, DesiredMonitors(r.cat, r.s, rep.DetectorIDs), monitors))

	r.log.Info("reconciled", "changes", rep.Changes, "pending", len(rep.Pending), "hc_needed", rep.HCNeeded, "hc_limit", rep.HCLimit, "errors", len(ex.errs))
	return rep, errors.Join(ex.errs...)
}

// executor applies actions, recording them in the report.
type executor struct {
	r      *Reconciler
	rep    *Report
	ids    map[string]string // detector name -> id, for starts after creates
	failed map[string]bool   // kind/name of objects whose earlier step failed
	errs   []error
}

func (e *executor) run(ctx context.Context, actions []Action) {
	for _, a := range actions {
		key := string(a.Kind) + "/" + a.Name
		if e.failed[key] {
			continue
		}
		changed, err := e.apply(ctx, &a)
		if err != nil {
			e.failed[key] = true
			e.errs = append(e.errs, fmt.Errorf("adsync: %s: %w", a, err))
			e.r.log.Warn("action failed", "action", a.String(), "err", err)
			continue
		}
		e.rep.Actions = append(e.rep.Actions, a)
		if changed {
			e.rep.Changes++
			e.r.log.Info("applied", "action", a.String())
		}
	}
}

// apply performs one action. It fills a.ID on creates.
func (e *executor) apply(ctx context.Context, a *Action) (changed bool, err error) {
	c := e.r.c
	switch a.Kind {
	case KindChannel:
		switch a.Op {
		case OpCreate:
			return true, c.Do(ctx, http.MethodPost, configsPath, a.Body, nil)
		case OpUpdate:
			return true, c.Do(ctx, http.MethodPut, configsPath+"/"+url.PathEscape(a.ID), a.Body, nil)
		}
	case KindDetector:
		switch a.Op {
		case OpConflict:
			e.rep.Pending = append(e.rep.Pending, a.Name+": "+a.Reason)
			return false, nil
		case OpCreate:
			var resp struct {
				ID string `json:"_id"`
			}
			if err := c.Do(ctx, http.MethodPost, detectorsPath, a.Body, &resp); err != nil {
				return false, err
			}
			if resp.ID == "" {
				return false, errors.New("create answered without an _id")
			}
			a.ID, e.ids[a.Name] = resp.ID, resp.ID
			return true, nil
		case OpUpdate:
			return true, c.Do(ctx, http.MethodPut, detectorsPath+"/"+url.PathEscape(a.ID), a.Body, nil)
		case OpStart:
			if a.ID == "" {
				a.ID = e.ids[a.Name]
			}
			if a.ID == "" {
				return false, errors.New("no detector id to start")
			}
			return e.start(ctx, a.ID)
		case OpStop:
			return true, c.Do(ctx, http.MethodPost, detectorsPath+"/"+url.PathEscape(a.ID)+"/_stop", nil, nil)
		case OpDelete:
			if err := c.Do(ctx, http.MethodDelete, detectorsPath+"/"+url.PathEscape(a.ID), nil, nil); err != nil {
				return false, err
			}
			delete(e.ids, a.Name)
			return true, nil
		}
	case KindMonitor:
		switch a.Op {
		case OpCreate:
			var resp struct {
				ID string `json:"_id"`
			}
			if err := c.Do(ctx, http.MethodPost, monitorsPath, a.Body, &resp); err != nil {
				return false, err
			}
			a.ID = resp.ID
			return true, nil
		case OpUpdate:
			return true, c.Do(ctx, http.MethodPut, monitorsPath+"/"+url.PathEscape(a.ID), a.Body, nil)
		case OpDelete:
			return true, c.Do(ctx, http.MethodDelete, monitorsPath+"/"+url.PathEscape(a.ID), nil, nil)
		}
	case KindSetting:
		if a.Op == OpUpdate {
			return true, c.Do(ctx, http.MethodPut, "/_cluster/settings", a.Body, nil)
		}
	}
	return false, fmt.Errorf("unsupported action %s %s", a.Op, a.Kind)
}

// start starts real-time detection. The plugin answers a start of a running job with an error
// whose status is 200 ("Anomaly detector job is already running"); that is no change.
func (e *executor) start(ctx context.Context, id string) (bool, error) {
	var resp map[string]any
	err := e.r.c.Do(ctx, http.MethodPost, detectorsPath+"/"+url.PathEscape(id)+"/_start", nil, &resp)
	alreadyRunning := func(s string) bool { return strings.Contains(s, "already running") }
	var se *search.Error
	switch {
	case err == nil && resp["error"] != nil:
		if alreadyRunning(fmt.Sprint(resp["error"])) {
			return false, nil
		}
		return false, fmt.Errorf("start: %v", resp["error"])
	case errors.As(err, &se) && alreadyRunning(se.Reason+se.Body):
		return false, nil
	}
	return err == nil, err
}

// detectors returns every detector whose name has the prefix, with the job state of the owned ones.
func (r *Reconciler) detectors(ctx context.Context) ([]CurrentDetector, error) {
	var resp struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					Name          string   `json:"name"`
					Description   string   `json:"description"`
					CategoryField []string `json:"category_field"`
					ResultIndex   string   `json:"result_index"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	q := map[string]any{
		"size":    searchSize,
		"query":   map[string]any{"prefix": map[string]any{"name.keyword": r.s.NamePrefix + "-"}},
		"_source": []string{"name", "description", "category_field", "result_index"},
	}
	err := r.c.Do(ctx, http.MethodPost, detectorsPath+"/_search", q, &resp)
	if errors.Is(err, search.ErrNotFound) { // no detector was ever created: no config index
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adsync: search detectors: %w", err)
	}
	var out []CurrentDetector
	for _, h := range resp.Hits.Hits {
		d := CurrentDetector{ID: h.ID, Name: h.Source.Name, Description: h.Source.Description,
			CategoryFields: h.Source.CategoryField, ResultIndex: h.Source.ResultIndex}
		if ownedDetector(r.s, d) {
			if d.Running, err = r.running(ctx, d.ID); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// running reports whether a detector's real-time job is enabled.
func (r *Reconciler) running(ctx context.Context, id string) (bool, error) {
	var resp struct {
		Job *struct {
			Enabled bool `json:"enabled"`
		} `json:"anomaly_detector_job"`
	}
	if err := r.c.Do(ctx, http.MethodGet, detectorsPath+"/"+url.PathEscape(id)+"?job=true", nil, &resp); err != nil {
		return false, fmt.Errorf("adsync: get detector %s: %w", id, err)
	}
	return resp.Job != nil && resp.Job.Enabled, nil
}

// countHC counts the cluster's high-cardinality detectors, as the plugin does before a create.
func (r *Reconciler) countHC(ctx context.Context) (int, error) {
	var resp struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	q := map[string]any{
		"size": 0, "track_total_hits": true,
		"query": map[string]any{"bool": map[string]any{"filter": []any{map[string]any{"exists": map[string]any{"field": "category_field"}}}}},
	}
	err := r.c.Do(ctx, http.MethodPost, detectorsPath+"/_search", q, &resp)
	if errors.Is(err, search.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("adsync: count high-cardinality detectors: %w", err)
	}
	return resp.Hits.Total.Value, nil
}

// hasCounts reports whether any count is indexed (the plugin refuses to create a detector over
// indices without documents).
func (r *Reconciler) hasCounts(ctx context.Context) (bool, error) {
	var resp struct {
		Count int64 `json:"count"`
	}
	path := "/" + r.s.IndexPrefix + "-counts-*/_count?ignore_unavailable=true&allow_no_indices=true"
	if err := r.c.Do(ctx, http.MethodPost, path, nil, &resp); err != nil {
		return false, fmt.Errorf("adsync: count counts: %w", err)
	}
	return resp.Count > 0, nil
}

// ensureHCLimit raises the cluster's high-cardinality detector limit to need when it is lower,
// and returns the limit in force.
func (r *Reconciler) ensureHCLimit(ctx context.Context, need int, ex *executor) (int, error) {
	var resp struct {
		Persistent map[string]any `json:"persistent"`
		Transient  map[string]any `json:"transient"`
		Defaults   map[string]any `json:"defaults"`
	}
	if err := r.c.Do(ctx, http.MethodGet, "/_cluster/settings?include_defaults=true&flat_settings=true", nil, &resp); err != nil {
		return 0, fmt.Errorf("adsync: read cluster settings: %w", err)
	}
	limit, transient := defaultMaxHC, false
	for _, src := range []struct {
		m         map[string]any
		key       string
		transient bool
	}{
		{resp.Transient, SettingMaxHC, true}, {resp.Persistent, SettingMaxHC, false},
		{resp.Transient, legacySettingMaxHC, true}, {resp.Persistent, legacySettingMaxHC, false},
		{resp.Defaults, SettingMaxHC, false},
	} {
		if v, ok := src.m[src.key]; ok {
			n, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil {
				return 0, fmt.Errorf("adsync: cluster setting %s = %v: %w", src.key, v, err)
			}
			limit, transient = n, src.transient
			break
		}
	}
	if limit >= need {
		return limit, nil
	}
	body := map[string]any{"persistent": map[string]any{SettingMaxHC: need}}
	if transient { // a transient value would shadow the persistent one
		body["transient"] = map[string]any{SettingMaxHC: need}
	}
	n := len(ex.errs)
	ex.run(ctx, []Action{{Op: OpUpdate, Kind: KindSetting, Name: SettingMaxHC, Body: body,
		Reason: fmt.Sprintf("%d high-cardinality detectors needed, limit %d", need, limit)}})
	if len(ex.errs) > n {
		return limit, ex.errs[len(ex.errs)-1]
	}
	return need, nil
}

// channel returns the channel with the given config id, or nil when there is none.
func (r *Reconciler) channel(ctx context.Context, id string) (*CurrentChannel, error) {
	var resp struct {
		ConfigList []struct {
			ConfigID string        `json:"config_id"`
			Config   ChannelConfig `json:"config"`
		} `json:"config_list"`
	}
	err := r.c.Do(ctx, http.MethodGet, configsPath+"/"+url.PathEscape(id), nil, &resp)
	if errors.Is(err, search.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adsync: get channel %s: %w", id, err)
	}
	for _, c := range resp.ConfigList {
		if c.ConfigID == id {
			return &CurrentChannel{ID: c.ConfigID, Config: c.Config}, nil
		}
	}
	return nil, nil
}

// monitors returns every monitor whose name has the prefix.
func (r *Reconciler) monitors(ctx context.Context) ([]CurrentMonitor, error) {
	type monitorSource struct {
		Name       string `json:"name"`
		UIMetadata struct {
			Spikewatch struct {
				Spec string `json:"spec"`
			} `json:"spikewatch"`
		} `json:"ui_metadata"`
	}
	var resp struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					monitorSource
					// The plugin returns the stored document ({"monitor": {...}}) when it cannot
					// parse it; take the fields from there too.
					Monitor *monitorSource `json:"monitor"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	q := map[string]any{
		"size": searchSize,
		"query": map[string]any{"bool": map[string]any{"filter": []any{
			map[string]any{"term": map[string]any{"monitor.type": "monitor"}},
			map[string]any{"prefix": map[string]any{"monitor.name.keyword": r.s.NamePrefix + "-"}},
		}}},
	}
	err := r.c.Do(ctx, http.MethodPost, monitorsPath+"/_search", q, &resp)
	if errors.Is(err, search.ErrNotFound) { // no monitor was ever created
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adsync: search monitors: %w", err)
	}
	var out []CurrentMonitor
	for _, h := range resp.Hits.Hits {
		src := h.Source.monitorSource
		if h.Source.Monitor != nil {
			src = *h.Source.Monitor
		}
		out = append(out, CurrentMonitor{ID: h.ID, Name: src.Name, Hash: src.UIMetadata.Spikewatch.Spec})
	}
	return out, nil
}
