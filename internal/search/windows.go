package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// KeyFilter selects the counts of one account, API and entity ("" entity: the API has none, or
// all entities when AnyEntity).
type KeyFilter struct {
	AccountID string
	API       string
	Entity    string
	AnyEntity bool
}

func (f KeyFilter) clauses() []any {
	c := []any{
		map[string]any{"term": map[string]any{"account_id": f.AccountID}},
		map[string]any{"term": map[string]any{"api": f.API}},
	}
	if !f.AnyEntity {
		c = append(c, map[string]any{"term": map[string]any{"entity": f.Entity}})
	}
	return c
}

// Window is a half-open time range [Start, End).
type Window struct{ Start, End time.Time }

// Sums are totals over a window.
type Sums struct {
	Calls, Units, Errors int64
}

// SumWindows returns the totals of a key over each window, with one request.
func (c *Client) SumWindows(ctx context.Context, prefix string, f KeyFilter, ws []Window) ([]Sums, error) {
	filters := map[string]any{}
	for i, w := range ws {
		filters[fmt.Sprintf("w%d", i)] = map[string]any{"range": map[string]any{"@timestamp": map[string]any{
			"gte": w.Start.UTC().Format(time.RFC3339), "lt": w.End.UTC().Format(time.RFC3339)}}}
	}
	body := map[string]any{
		"size":  0,
		"query": map[string]any{"bool": map[string]any{"filter": f.clauses()}},
		"aggs": map[string]any{"w": map[string]any{
			"filters": map[string]any{"filters": filters},
			"aggs": map[string]any{
				"calls":  map[string]any{"sum": map[string]any{"field": "calls"}},
				"units":  map[string]any{"sum": map[string]any{"field": "units"}},
				"errors": map[string]any{"sum": map[string]any{"field": "errors"}},
			},
		}},
	}
	var resp struct {
		Aggs struct {
			W struct {
				Buckets map[string]struct {
					Calls  struct{ Value float64 } `json:"calls"`
					Units  struct{ Value float64 } `json:"units"`
					Errors struct{ Value float64 } `json:"errors"`
				} `json:"buckets"`
			} `json:"w"`
		} `json:"aggregations"`
	}
	if err := c.Do(ctx, http.MethodPost, "/"+prefix+"-counts-*/_search?ignore_unavailable=true&allow_no_indices=true", body, &resp); err != nil {
		return nil, fmt.Errorf("sum windows: %w", err)
	}
	out := make([]Sums, len(ws))
	for i := range ws {
		b := resp.Aggs.W.Buckets[fmt.Sprintf("w%d", i)]
		out[i] = Sums{Calls: int64(b.Calls.Value), Units: int64(b.Units.Value), Errors: int64(b.Errors.Value)}
	}
	return out, nil
}

// CountDocs returns up to size count documents of a key in a window (for their context).
func (c *Client) CountDocs(ctx context.Context, prefix string, f KeyFilter, w Window, size int) ([]CountDoc, error) {
	clauses := append(f.clauses(), map[string]any{"range": map[string]any{"@timestamp": map[string]any{
		"gte": w.Start.UTC().Format(time.RFC3339), "lt": w.End.UTC().Format(time.RFC3339)}}})
	body := map[string]any{"size": size, "query": map[string]any{"bool": map[string]any{"filter": clauses}}}
	var resp struct {
		Hits struct {
			Hits []struct {
				ID     string   `json:"_id"`
				Source CountDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := c.Do(ctx, http.MethodPost, "/"+prefix+"-counts-*/_search?ignore_unavailable=true&allow_no_indices=true", body, &resp); err != nil {
		return nil, fmt.Errorf("count docs: %w", err)
	}
	out := make([]CountDoc, len(resp.Hits.Hits))
	for i, h := range resp.Hits.Hits {
		out[i] = h.Source
		out[i].ID = h.ID
	}
	return out, nil
}

// SeriesPoint is the per-minute feature of one key.
type SeriesPoint struct {
	Minute    time.Time
	AccountID string
	API       string
	Entity    string
	Calls     int64
	Units     int64
}

// Series returns per-minute sums per account, API and entity in [from, to), in no particular
// order (callers group). It pages through a composite aggregation.
func (c *Client) Series(ctx context.Context, prefix string, from, to time.Time, fn func(SeriesPoint) error) error {
	sources := []any{
		map[string]any{"api": map[string]any{"terms": map[string]any{"field": "api"}}},
		map[string]any{"account": map[string]any{"terms": map[string]any{"field": "account_id"}}},
		map[string]any{"entity": map[string]any{"terms": map[string]any{"field": "entity"}}},
		map[string]any{"minute": map[string]any{"date_histogram": map[string]any{"field": "@timestamp", "fixed_interval": "1m"}}},
	}
	query := map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": from.UTC().Format(time.RFC3339), "lt": to.UTC().Format(time.RFC3339)}}}
	err := c.sumComposite(ctx, prefix, query, sources, 10000, func(b sumBucket) error {
		return fn(SeriesPoint{Minute: time.UnixMilli(b.Key.Minute).UTC(), AccountID: b.Key.Account, API: b.Key.API, Entity: b.Key.Entity,
			Calls: int64(b.Calls.Value), Units: int64(b.Units.Value)})
	})
	if err != nil {
		return fmt.Errorf("series: %w", err)
	}
	return nil
}

// EnsureIndex creates an index with a mapping unless it exists.
func (c *Client) EnsureIndex(ctx context.Context, name string, mappings map[string]any) error {
	err := c.Do(ctx, http.MethodPut, "/"+name, map[string]any{
		"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0},
		"mappings": mappings,
	}, nil)
	var e *Error
	if err != nil && errors.As(err, &e) && e.Type == "resource_already_exists_exception" {
		return nil
	}
	return err
}

// PutDoc writes a document with an id. It is searchable after the index's next refresh (call
// Refresh before a search that must see it); GetDoc sees it at once.
func (c *Client) PutDoc(ctx context.Context, index, id string, doc any) error {
	return c.Do(ctx, http.MethodPut, "/"+index+"/_doc/"+id, doc, nil)
}

// GetDoc reads a document's source into out; ErrNotFound when absent.
func (c *Client) GetDoc(ctx context.Context, index, id string, out any) error {
	var resp struct {
		Found  bool            `json:"found"`
		Source json.RawMessage `json:"_source"`
	}
	if err := c.Do(ctx, http.MethodGet, "/"+index+"/_doc/"+id, nil, &resp); err != nil {
		return err
	}
	if !resp.Found {
		return &Error{Status: 404, Method: "GET", Path: index + "/" + id}
	}
	return json.Unmarshal(resp.Source, out)
}

// SearchDocs runs a query and decodes each hit's source with fn.
func (c *Client) SearchDocs(ctx context.Context, index string, query map[string]any, fn func(id string, src json.RawMessage) error) error {
	var resp struct {
		Hits struct {
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := c.Do(ctx, http.MethodPost, "/"+index+"/_search?ignore_unavailable=true&allow_no_indices=true", query, &resp); err != nil {
		return err
	}
	for _, h := range resp.Hits.Hits {
		if err := fn(h.ID, h.Source); err != nil {
			return err
		}
	}
	return nil
}

// TimeRange returns the first and last minute of the counts of prefix (zero times when empty).
func (c *Client) TimeRange(ctx context.Context, prefix string) (time.Time, time.Time, error) {
	var resp struct {
		Aggs struct {
			Lo struct{ Value *float64 } `json:"lo"`
			Hi struct{ Value *float64 } `json:"hi"`
		} `json:"aggregations"`
	}
	body := map[string]any{"size": 0, "aggs": map[string]any{
		"lo": map[string]any{"min": map[string]any{"field": "@timestamp"}},
		"hi": map[string]any{"max": map[string]any{"field": "@timestamp"}},
	}}
	if err := c.Do(ctx, http.MethodPost, "/"+prefix+"-counts-*/_search?ignore_unavailable=true&allow_no_indices=true", body, &resp); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("time range: %w", err)
	}
	if resp.Aggs.Lo.Value == nil || resp.Aggs.Hi.Value == nil {
		return time.Time{}, time.Time{}, nil
	}
	return time.UnixMilli(int64(*resp.Aggs.Lo.Value)).UTC(), time.UnixMilli(int64(*resp.Aggs.Hi.Value)).UTC(), nil
}
