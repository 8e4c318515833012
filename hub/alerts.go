package hub

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/spikewatch/spikewatch/internal/adsync"
	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/search"
)

// AlertSettings wires the alert side of the hub (optional).
type AlertSettings struct {
	Manager *alerts.Manager
	Store   *alerts.IndexStore
	// WebhookSecret authenticates the OpenSearch monitors' webhook; "" makes the hub generate one and
	// keep it in the <prefix>-hub-state index so every replica shares it.
	WebhookSecret string

	mu     sync.Mutex
	secret string
}

// WebhookHeader carries the webhook secret.
const WebhookHeader = "X-Spikewatch-Secret"

// WebhookPayload is what the alert monitors post (the monitor message template renders it).
type WebhookPayload struct {
	Monitor     string `json:"monitor"`
	API         string `json:"api"`
	PeriodStart string `json:"period_start"`
	PeriodEnd   string `json:"period_end"`
	Buckets     []struct {
		AccountID  string  `json:"account_id"`
		Entity     string  `json:"entity"`
		Grade      float64 `json:"grade"`
		Confidence float64 `json:"confidence"`
		Start      string  `json:"start"`
	} `json:"buckets"`
}

// WebhookSecret returns the secret the alert webhook expects (after Start).
func (h *Hub) WebhookSecret() string { return h.alertSecret }

// Secret returns the webhook secret once the hub has loaded or generated it ("" before).
func (s *AlertSettings) Secret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret
}

func (s *AlertSettings) setSecret(v string) {
	s.mu.Lock()
	s.secret = v
	s.mu.Unlock()
}

func (h *Hub) ensureWebhookSecret(ctx context.Context) error {
	if h.set.Alerts.WebhookSecret != "" {
		h.alertSecret = h.set.Alerts.WebhookSecret
		h.set.Alerts.setSecret(h.alertSecret)
		return nil
	}
	index := h.cfg.IndexPrefix + "-hub-state"
	var doc struct {
		Secret string `json:"secret"`
	}
	err := h.set.Search.GetDoc(ctx, index, "webhook-secret", &doc)
	if err == nil && doc.Secret != "" {
		h.alertSecret = doc.Secret
		h.set.Alerts.setSecret(h.alertSecret)
		return nil
	}
	if err != nil && !errors.Is(err, search.ErrNotFound) {
		return fmt.Errorf("read webhook secret: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	doc.Secret = hex.EncodeToString(b[:])
	if err := h.set.Search.PutDoc(ctx, index, "webhook-secret", doc); err != nil {
		return fmt.Errorf("store webhook secret: %w", err)
	}
	h.alertSecret = doc.Secret
	h.set.Alerts.setSecret(h.alertSecret)
	h.log.Info("generated the alert webhook secret", "index", index)
	return nil
}

func (h *Hub) handleWebhook(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get(WebhookHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(h.alertSecret)) != 1 {
		h.m.webhooks.WithLabelValues("forbidden").Inc()
		http.Error(w, "missing or wrong webhook secret", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		h.m.webhooks.WithLabelValues("bad_request").Inc()
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if sigs, ok := adsyncSignals(body); ok {
		for _, sig := range sigs {
			if err := h.set.Alerts.Manager.Observe(r.Context(), sig); err != nil {
				h.log.Warn("webhook alert", "err", err)
			}
		}
		h.m.webhooks.WithLabelValues("accepted").Inc()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.API == "" {
		h.m.webhooks.WithLabelValues("bad_request").Inc()
		http.Error(w, "body is not a spikewatch monitor message", http.StatusBadRequest)
		return
	}
	end, _ := time.Parse(time.RFC3339, p.PeriodEnd)
	if end.IsZero() {
		end = time.Now().UTC()
	}
	for _, b := range p.Buckets {
		start, _ := time.Parse(time.RFC3339, b.Start)
		if start.IsZero() {
			start = end.Add(-time.Minute)
		}
		sig := alerts.Signal{Time: start.Truncate(time.Minute), AccountID: b.AccountID, API: p.API, Entity: b.Entity,
			Grade: b.Grade, Confidence: b.Confidence, Source: "webhook", End: end.Truncate(time.Minute)}
		if err := h.set.Alerts.Manager.Observe(r.Context(), sig); err != nil {
			h.log.Warn("webhook alert", "err", err)
		}
	}
	h.m.webhooks.WithLabelValues("accepted").Inc()
	w.WriteHeader(http.StatusAccepted)
}

func (h *Hub) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := h.set.Alerts.Store.Query(r.Context(), alerts.Filter{State: q.Get("state"), AccountID: q.Get("account_id"), API: q.Get("api"), Limit: limit})
	if err != nil {
		http.Error(w, "query alerts: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if list == nil {
		list = []*alerts.Alert{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"alerts": list})
}

// adsyncSignals reads the message of a monitor that internal/adsync installed.
func adsyncSignals(body []byte) ([]alerts.Signal, bool) {
	var probe struct {
		Version int `json:"spikewatch"`
	}
	if json.Unmarshal(body, &probe) != nil || probe.Version == 0 {
		return nil, false
	}
	msg, err := adsync.ParseMessage(body)
	if err != nil {
		return nil, false
	}
	bas, err := msg.Alerts()
	if err != nil {
		return nil, false
	}
	end, _ := time.Parse(time.RFC3339, msg.PeriodEnd)
	var out []alerts.Signal
	for _, b := range bas {
		if !b.Found {
			continue
		}
		start, stop := b.Start, b.End
		if start.IsZero() {
			start = end.Add(-time.Minute)
		}
		if stop.IsZero() {
			stop = end
		}
		out = append(out, alerts.Signal{Time: start.Truncate(time.Minute), End: stop.Truncate(time.Minute), AccountID: b.AccountID, API: msg.API,
			Entity: b.Entity, Grade: b.Grade, Confidence: b.Confidence, Source: "opensearch-ad"})
	}
	return out, true
}
