package alerts

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spikewatch/spikewatch/internal/search"
)

// IndexStore keeps alerts in the OpenSearch index <prefix>-alerts (the alert history).
type IndexStore struct {
	Search *search.Client
	Index  string
}

// Ensure creates the alerts index.
func (s *IndexStore) Ensure(ctx context.Context) error {
	return s.Search.EnsureIndex(ctx, s.Index, map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"id": map[string]any{"type": "keyword"}, "state": map[string]any{"type": "keyword"}, "severity": map[string]any{"type": "keyword"},
			"account_id": map[string]any{"type": "keyword"}, "api": map[string]any{"type": "keyword"}, "entity": map[string]any{"type": "keyword"},
			"start": map[string]any{"type": "date"}, "end": map[string]any{"type": "date"}, "updated_at": map[string]any{"type": "date"},
			"grade": map[string]any{"type": "float"}, "confidence": map[string]any{"type": "float"},
		},
	})
}

// Save implements Store.
func (s *IndexStore) Save(ctx context.Context, a *Alert) error {
	return s.Search.PutDoc(ctx, s.Index, a.ID, a)
}

// Open implements Store.
func (s *IndexStore) Open(ctx context.Context) ([]*Alert, error) {
	return s.Query(ctx, Filter{State: StateOpen, Limit: 10000})
}

// Filter selects alerts.
type Filter struct {
	State, AccountID, API string
	Limit                 int
}

// Query returns alerts, newest first.
func (s *IndexStore) Query(ctx context.Context, f Filter) ([]*Alert, error) {
	var must []any
	for field, v := range map[string]string{"state": f.State, "account_id": f.AccountID, "api": f.API} {
		if v != "" {
			must = append(must, map[string]any{"term": map[string]any{field: v}})
		}
	}
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 100
	}
	q := map[string]any{"size": f.Limit, "sort": []any{map[string]any{"start": "desc"}},
		"query": map[string]any{"bool": map[string]any{"filter": must}}}
	if err := s.Search.Refresh(ctx, s.Index); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	var out []*Alert
	err := s.Search.SearchDocs(ctx, s.Index, q, func(_ string, src json.RawMessage) error {
		var a Alert
		if err := json.Unmarshal(src, &a); err != nil {
			return fmt.Errorf("alert document: %w", err)
		}
		out = append(out, &a)
		return nil
	})
	return out, err
}
