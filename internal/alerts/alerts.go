// Package alerts turns anomaly signals into alerts: one open alert per account, API and entity;
// an escalation (medium to high) notifies again, repeats do not, and a quiet spell resolves it. Each
// alert is enriched (who, from where, what it costs, against which baseline) when it opens or
// escalates, kept in an OpenSearch index, and published.
package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/notify"
)

// Signal is one scored interval of one key.
type Signal struct {
	Time       time.Time `json:"time"` // start of the interval
	AccountID  string    `json:"account_id"`
	API        string    `json:"api"`
	Entity     string    `json:"entity"`
	Grade      float64   `json:"grade"`
	Confidence float64   `json:"confidence"`
	Actual     float64   `json:"actual"`
	Expected   float64   `json:"expected"`
	Source     string    `json:"source"` // builtin, opensearch-ad, webhook
	// End, when set, is the end of the anomalous span this signal reports (a monitor's period);
	// otherwise the signal covers one interval.
	End time.Time `json:"end,omitempty"`
}

func (s Signal) end(interval time.Duration) time.Time {
	if s.End.After(s.Time) {
		return s.End
	}
	return s.Time.Add(interval)
}

// States and severities.
const (
	StateOpen     = "open"
	StateResolved = "resolved"
	SevMedium     = "medium"
	SevHigh       = "high"
)

// Alert is one spike of one key.
type Alert struct {
	ID         string      `json:"id"`
	State      string      `json:"state"`
	Severity   string      `json:"severity"`
	AccountID  string      `json:"account_id"`
	API        string      `json:"api"`
	Entity     string      `json:"entity"`
	Start      time.Time   `json:"start"`
	End        time.Time   `json:"end"` // end of the last anomalous interval
	Grade      float64     `json:"grade"`
	Confidence float64     `json:"confidence"`
	PeakActual float64     `json:"peak_actual"`
	Expected   float64     `json:"expected"`
	Source     string      `json:"source"`
	Notified   int         `json:"notified"`
	Events     []Event     `json:"events"`
	Enrichment *Enrichment `json:"enrichment,omitempty"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// Event is a state change of an alert.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // opened, escalated, resolved
	Severity string    `json:"severity"`
}

// Key identifies the subject of an alert.
func (a *Alert) Key() string { return a.AccountID + "|" + a.API + "|" + a.Entity }

// Store persists alerts.
type Store interface {
	Save(ctx context.Context, a *Alert) error
	Open(ctx context.Context) ([]*Alert, error)
}

// Enricher fills an alert's enrichment.
type Enricher interface {
	Enrich(ctx context.Context, a *Alert) (*Enrichment, error)
}

// Config sets the alert rules.
type Config struct {
	Interval time.Duration
	// ResolveAfter: an alert resolves after this long without an anomalous interval.
	ResolveAfter time.Duration
	// NotifyResolved publishes resolutions too.
	NotifyResolved bool
}

// Manager applies the alert rules.
type Manager struct {
	cfg      Config
	cat      *catalog.Catalog
	store    Store
	pub      notify.Publisher
	enricher Enricher
	log      *slog.Logger

	mu   sync.Mutex
	open map[string]*Alert
	all  []*Alert // every alert this manager handled, newest last (bounded)
}

// New builds a manager; it loads open alerts from the store so restarts keep deduplicating.
func New(ctx context.Context, cfg Config, cat *catalog.Catalog, store Store, pub notify.Publisher, enricher Enricher, log *slog.Logger) (*Manager, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.ResolveAfter <= 0 {
		cfg.ResolveAfter = 15 * cfg.Interval
	}
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{cfg: cfg, cat: cat, store: store, pub: pub, enricher: enricher, log: log.With("component", "alerts"), open: map[string]*Alert{}}
	if store != nil {
		open, err := store.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("alerts: load open alerts: %w", err)
		}
		for _, a := range open {
			m.open[a.Key()] = a
		}
	}
	return m, nil
}

// Observe applies one anomalous or normal signal. Signals below the API's thresholds only extend
// nothing; those above open, extend or escalate the key's alert.
func (m *Manager) Observe(ctx context.Context, s Signal) error {
	api, ok := m.cat.ByID(s.API)
	if !ok {
		return fmt.Errorf("alerts: signal for unknown api %q", s.API)
	}
	if s.Grade < api.Alert.MinGrade || s.Confidence < api.Alert.MinConfidence {
		return nil
	}
	sev := SevMedium
	if s.Grade >= api.Alert.HighGrade {
		sev = SevHigh
	}
	m.mu.Lock()
	a := m.open[key(s)]
	var kind string
	if a == nil {
		a = &Alert{
			ID: alertID(s), State: StateOpen, Severity: sev, AccountID: s.AccountID, API: s.API, Entity: s.Entity,
			Start: s.Time, End: s.end(m.cfg.Interval), Grade: s.Grade, Confidence: s.Confidence,
			PeakActual: s.Actual, Expected: s.Expected, Source: s.Source,
		}
		m.open[key(s)] = a
		m.remember(a)
		kind = "opened"
	} else {
		if end := s.end(m.cfg.Interval); end.After(a.End) {
			a.End = end
		}
		if s.Time.Before(a.Start) {
			a.Start = s.Time
		}
		a.Grade = max(a.Grade, s.Grade)
		a.Confidence = max(a.Confidence, s.Confidence)
		if s.Actual > a.PeakActual {
			a.PeakActual, a.Expected = s.Actual, s.Expected
		}
		if sev == SevHigh && a.Severity != SevHigh {
			a.Severity = SevHigh
			kind = "escalated"
		}
	}
	m.mu.Unlock()
	if kind == "" {
		return m.save(ctx, a)
	}
	return m.transition(ctx, a, kind, s.Time)
}

// Tick resolves the alerts that saw no anomalous interval for ResolveAfter before now (data time).
func (m *Manager) Tick(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	var done []*Alert
	for k, a := range m.open {
		if now.Sub(a.End) >= m.cfg.ResolveAfter {
			a.State = StateResolved
			delete(m.open, k)
			done = append(done, a)
		}
	}
	m.mu.Unlock()
	sort.Slice(done, func(i, j int) bool { return done[i].ID < done[j].ID })
	var errs []error
	for _, a := range done {
		if err := m.transition(ctx, a, "resolved", now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) transition(ctx context.Context, a *Alert, kind string, at time.Time) error {
	m.mu.Lock()
	a.Events = append(a.Events, Event{Time: at, Kind: kind, Severity: a.Severity})
	m.mu.Unlock()
	// Enrich at every transition: at opening the window is the first minutes (what is known
	// then), at resolution it is the whole spike, kept in the alert history.
	if m.enricher != nil {
		e, err := m.enricher.Enrich(ctx, a)
		if err != nil {
			m.log.Warn("enrichment incomplete", "alert", a.ID, "err", err)
		}
		if e != nil {
			m.mu.Lock()
			a.Enrichment = e
			m.mu.Unlock()
		}
	}
	var perr error
	if m.pub != nil && (kind != "resolved" || m.cfg.NotifyResolved) {
		msg, err := Render(a, kind)
		if err == nil {
			perr = m.pub.Publish(ctx, msg)
		} else {
			perr = err
		}
		if perr == nil {
			m.mu.Lock()
			a.Notified++
			m.mu.Unlock()
		} else {
			m.log.Error("publish alert", "alert", a.ID, "err", perr)
		}
	}
	m.log.Info("alert "+kind, "alert", a.ID, "account_id", a.AccountID, "api", a.API, "entity", a.Entity, "severity", a.Severity, "grade", a.Grade)
	return errors.Join(perr, m.save(ctx, a))
}

func (m *Manager) save(ctx context.Context, a *Alert) error {
	m.mu.Lock()
	a.UpdatedAt = time.Now().UTC()
	cp := *a
	cp.Events = append([]Event(nil), a.Events...)
	m.mu.Unlock()
	if m.store == nil {
		return nil
	}
	if err := m.store.Save(ctx, &cp); err != nil {
		return fmt.Errorf("alerts: save %s: %w", a.ID, err)
	}
	return nil
}

func (m *Manager) remember(a *Alert) {
	m.all = append(m.all, a)
	if len(m.all) > 10000 {
		m.all = m.all[len(m.all)-10000:]
	}
}

// Alerts returns copies of the alerts this manager handled, oldest first.
func (m *Manager) Alerts() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Alert, len(m.all))
	for i, a := range m.all {
		out[i] = *a
	}
	return out
}

func key(s Signal) string { return s.AccountID + "|" + s.API + "|" + s.Entity }

func alertID(s Signal) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%s", s.AccountID, s.API, s.Entity, s.Time.UTC().Format(time.RFC3339))))
	return hex.EncodeToString(h[:10])
}

// JSON is the structured form of an alert.
func (a *Alert) JSON() ([]byte, error) { return json.Marshal(a) }
