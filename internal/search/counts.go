package search

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CountDoc is one per-minute count as indexed. ID makes writes idempotent: it is derived from the
// input unit the count came from and the count's key, so the same count written twice (a retried
// bulk, a batch sent again, a file replayed after a restart) lands on the same document with the
// same content, and no total changes.
type CountDoc struct {
	ID         string                `json:"-"`
	Timestamp  time.Time             `json:"@timestamp"`
	AccountID  string                `json:"account_id"`
	Region     string                `json:"region"`
	API        string                `json:"api"`
	Entity     string                `json:"entity"`
	Calls      int64                 `json:"calls"`
	Units      int64                 `json:"units"`
	Errors     int64                 `json:"errors"`
	Unit       string                `json:"unit_id"`
	Agent      string                `json:"agent_id,omitempty"`
	Principals []TopValue            `json:"principals,omitempty"`
	SourceIPs  []TopValue            `json:"source_ips,omitempty"`
	UserAgents []TopValue            `json:"user_agents,omitempty"`
	ErrorCodes []TopValue            `json:"error_codes,omitempty"`
	Extra      map[string][]TopValue `json:"extra,omitempty"`
	IndexedAt  time.Time             `json:"indexed_at"`
}

// TopValue is a context value with its call count.
type TopValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// CountDocID derives a count document's id from its unit and key.
func CountDocID(unit string, minute time.Time, account, region, api, entity string) string {
	h := sha256.New()
	for _, s := range []string{unit, minute.UTC().Format(time.RFC3339), account, region, api, entity} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// CountsIndex is the daily index a count minute belongs to. The index follows the count's minute,
// not the time of writing, so a rewrite always reaches the same document.
func CountsIndex(prefix string, minute time.Time) string {
	return prefix + "-counts-" + minute.UTC().Format("2006.01.02")
}

// EnsureCountsTemplate installs (or updates) the index template for prefix-counts-*.
func (c *Client) EnsureCountsTemplate(ctx context.Context, prefix string) error {
	top := map[string]any{"properties": map[string]any{
		"value": map[string]any{"type": "keyword", "ignore_above": 512},
		"count": map[string]any{"type": "long"},
	}}
	body := map[string]any{
		"index_patterns": []string{prefix + "-counts-*"},
		"priority":       100,
		"template": map[string]any{
			"settings": map[string]any{
				"number_of_shards":   1,
				"number_of_replicas": 0,
				"refresh_interval":   "5s",
			},
			"mappings": map[string]any{
				"dynamic": "false",
				"properties": map[string]any{
					"@timestamp":  map[string]any{"type": "date"},
					"account_id":  map[string]any{"type": "keyword"},
					"region":      map[string]any{"type": "keyword"},
					"api":         map[string]any{"type": "keyword"},
					"entity":      map[string]any{"type": "keyword"},
					"calls":       map[string]any{"type": "long"},
					"units":       map[string]any{"type": "long"},
					"errors":      map[string]any{"type": "long"},
					"unit_id":     map[string]any{"type": "keyword"},
					"agent_id":    map[string]any{"type": "keyword"},
					"indexed_at":  map[string]any{"type": "date"},
					"principals":  top,
					"source_ips":  top,
					"user_agents": top,
					"error_codes": top,
					"extra":       map[string]any{"type": "object", "enabled": false},
				},
			},
		},
	}
	if err := c.Do(ctx, http.MethodPut, "/_index_template/"+prefix+"-counts", body, nil); err != nil {
		return fmt.Errorf("install counts template: %w", err)
	}
	return nil
}

// BulkError reports the items of a bulk write that failed.
type BulkError struct {
	Failed    int
	Total     int
	Retryable bool // every failure was transient (429, 5xx)
	First     string
}

func (e *BulkError) Error() string {
	return fmt.Sprintf("bulk: %d of %d items failed (retryable=%v), first: %s", e.Failed, e.Total, e.Retryable, e.First)
}

// Is makes a retryable bulk failure match ErrUnavailable.
func (e *BulkError) Is(target error) bool { return target == ErrUnavailable && e.Retryable }

// IndexCounts writes count documents with one bulk request and checks every item. It returns nil
// only when OpenSearch accepted all of them.
func (c *Client) IndexCounts(ctx context.Context, prefix string, docs []CountDoc) error {
	return c.IndexCountGroups(ctx, prefix, [][]CountDoc{docs})[0]
}

// IndexCountGroups writes several groups of count documents (the batches of several agents) with
// one bulk request, checks every item, and returns one result per group: nil only when every item
// of that group was accepted. A failure of the request itself fails every group.
func (c *Client) IndexCountGroups(ctx context.Context, prefix string, groups [][]CountDoc) []error {
	errs := make([]error, len(groups))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	now := time.Now().UTC()
	total := 0
	for _, docs := range groups {
		for i := range docs {
			d := &docs[i]
			if d.ID == "" {
				return fail(errors.New("bulk: count document without id"))
			}
			d.IndexedAt = now
			meta := map[string]any{"index": map[string]any{"_index": CountsIndex(prefix, d.Timestamp), "_id": d.ID}}
			if err := enc.Encode(meta); err != nil {
				return fail(err)
			}
			if err := enc.Encode(d); err != nil {
				return fail(err)
			}
		}
		total += len(docs)
	}
	if total == 0 {
		return errs
	}
	var resp struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := c.Do(ctx, http.MethodPost, "/_bulk", &buf, &resp); err != nil {
		return fail(fmt.Errorf("bulk: %w", err))
	}
	if len(resp.Items) != total {
		return fail(fmt.Errorf("bulk: %d items answered for %d sent: %w", len(resp.Items), total, ErrUnavailable))
	}
	pos := 0
	for g, docs := range groups {
		be := &BulkError{Total: len(docs), Retryable: true}
		for _, item := range resp.Items[pos : pos+len(docs)] {
			for _, r := range item {
				if r.Status >= 200 && r.Status < 300 {
					continue
				}
				be.Failed++
				if r.Status != http.StatusTooManyRequests && r.Status < 500 {
					be.Retryable = false
				}
				if be.First == "" {
					be.First = fmt.Sprintf("%d", r.Status)
					if r.Error != nil {
						be.First += " " + r.Error.Type + ": " + r.Error.Reason
					}
				}
			}
		}
		if be.Failed > 0 {
			errs[g] = be
		}
		pos += len(docs)
	}
	return errs
}

// CountTotal is a sum of calls, units and errors for one key of a totals query.
type CountTotal struct {
	Minute    time.Time
	AccountID string
	Region    string
	API       string
	Entity    string
	Calls     int64
	Units     int64
	Errors    int64
}

// SumCounts returns the sums of calls, units and errors per minute, account, region, API and
// entity over all counts indices of prefix (a composite aggregation, paged).
func (c *Client) SumCounts(ctx context.Context, prefix string) ([]CountTotal, error) {
	var out []CountTotal
	sources := []any{
		map[string]any{"minute": map[string]any{"terms": map[string]any{"field": "@timestamp"}}},
		map[string]any{"account": map[string]any{"terms": map[string]any{"field": "account_id"}}},
		map[string]any{"region": map[string]any{"terms": map[string]any{"field": "region"}}},
		map[string]any{"api": map[string]any{"terms": map[string]any{"field": "api"}}},
		map[string]any{"entity": map[string]any{"terms": map[string]any{"field": "entity"}}},
	}
	err := c.sumComposite(ctx, prefix, nil, sources, 5000, func(b sumBucket) error {
		out = append(out, CountTotal{
			Minute: time.UnixMilli(b.Key.Minute).UTC(), AccountID: b.Key.Account, Region: b.Key.Region, API: b.Key.API, Entity: b.Key.Entity,
			Calls: int64(b.Calls.Value), Units: int64(b.Units.Value), Errors: int64(b.Errors.Value),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sum counts: %w", err)
	}
	return out, nil
}

// sumBucket is one bucket of sumComposite: the key fields the sources name, and the sums.
type sumBucket struct {
	Key struct {
		Minute  int64  `json:"minute"`
		Account string `json:"account"`
		Region  string `json:"region"`
		API     string `json:"api"`
		Entity  string `json:"entity"`
	} `json:"key"`
	Calls  struct{ Value float64 } `json:"calls"`
	Units  struct{ Value float64 } `json:"units"`
	Errors struct{ Value float64 } `json:"errors"`
}

// sumComposite pages through a composite aggregation over the counts indices of prefix, with the
// sums of calls, units and errors in every bucket.
func (c *Client) sumComposite(ctx context.Context, prefix string, query map[string]any, sources []any, size int, fn func(sumBucket) error) error {
	var after map[string]any
	for {
		comp := map[string]any{"size": size, "sources": sources}
		if after != nil {
			comp["after"] = after
		}
		body := map[string]any{"size": 0, "aggs": map[string]any{"k": map[string]any{
			"composite": comp,
			"aggs": map[string]any{
				"calls":  map[string]any{"sum": map[string]any{"field": "calls"}},
				"units":  map[string]any{"sum": map[string]any{"field": "units"}},
				"errors": map[string]any{"sum": map[string]any{"field": "errors"}},
			},
		}}}
		if query != nil {
			body["query"] = query
		}
		var resp struct {
			Aggs struct {
				K struct {
					AfterKey map[string]any `json:"after_key"`
					Buckets  []sumBucket    `json:"buckets"`
				} `json:"k"`
			} `json:"aggregations"`
		}
		if err := c.Do(ctx, http.MethodPost, "/"+prefix+"-counts-*/_search?ignore_unavailable=true&allow_no_indices=true", body, &resp); err != nil {
			return err
		}
		for _, b := range resp.Aggs.K.Buckets {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(resp.Aggs.K.Buckets) == 0 || resp.Aggs.K.AfterKey == nil {
			return nil
		}
		after = resp.Aggs.K.AfterKey
	}
}

// DeleteCountsBefore deletes the daily counts indices of prefix whose day ended before cutoff
// (retention). It returns the indices deleted.
func (c *Client) DeleteCountsBefore(ctx context.Context, prefix string, cutoff time.Time) ([]string, error) {
	var rows []struct {
		Index string `json:"index"`
	}
	if err := c.Do(ctx, http.MethodGet, "/_cat/indices/"+prefix+"-counts-*?format=json&h=index", nil, &rows); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	var deleted []string
	for _, r := range rows {
		day, err := time.Parse("2006.01.02", strings.TrimPrefix(r.Index, prefix+"-counts-"))
		if err != nil {
			continue
		}
		if day.Add(24 * time.Hour).Before(cutoff) {
			if err := c.DeleteIndex(ctx, r.Index); err != nil {
				return deleted, err
			}
			deleted = append(deleted, r.Index)
		}
	}
	return deleted, nil
}
