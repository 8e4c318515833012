// Package search is the one place that talks to OpenSearch. It wraps opensearch-go v4 with typed
// calls for what Spikewatch needs: index templates, idempotent bulk writes checked item by item,
// searches, and the plugin APIs (anomaly detection, alerting, notifications) through raw requests.
package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	opensearch "github.com/opensearch-project/opensearch-go/v4"
)

// Config says how to reach OpenSearch.
type Config struct {
	URL      string
	Username string
	Password string
	// Timeout bounds each request attempt; 0 means 30s.
	Timeout time.Duration
	// Insecure skips TLS verification (local clusters with self-signed certificates only).
	Insecure bool
}

// Client is a connection to one OpenSearch cluster.
type Client struct {
	os *opensearch.Client
}

// Error is an OpenSearch error response.
type Error struct {
	Status int
	Method string
	Path   string
	Type   string
	Reason string
	Body   string
}

func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("opensearch %s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Type, e.Reason)
	}
	return fmt.Sprintf("opensearch %s %s: %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Sentinel conditions callers branch on with errors.Is.
var (
	// ErrUnavailable: the cluster could not be reached or answered 5xx/429; retry later.
	ErrUnavailable = errors.New("opensearch unavailable")
	// ErrNotFound: 404.
	ErrNotFound = errors.New("opensearch: not found")
)

// Is maps status codes to the sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnavailable:
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return false
}

// New builds a client. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("search: no OpenSearch URL")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	c, err := opensearch.NewClient(opensearch.Config{
		Addresses:          strings.Split(cfg.URL, ","),
		Username:           cfg.Username,
		Password:           cfg.Password,
		InsecureSkipVerify: cfg.Insecure,
		RequestTimeout:     cfg.Timeout,
		MaxRetries:         2,
	})
	if err != nil {
		return nil, fmt.Errorf("search: new client: %w", err)
	}
	return &Client{os: c}, nil
}

// Do sends one JSON request. body may be nil, []byte, json.RawMessage, an io.Reader, or any value
// that encodes to JSON; out, if not nil, receives the decoded response. A status >= 300 is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case json.RawMessage:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
		if strings.HasPrefix(path, "/_bulk") || strings.Contains(path, "/_bulk") {
			contentType = "application/x-ndjson"
		}
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("search: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return fmt.Errorf("search: %s %s: %w", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.os.Perform(req)
	if err != nil {
		return fmt.Errorf("search: %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("search: read %s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Method: method, Path: path, Body: truncate(string(data), 2000)}
		var eb struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && len(eb.Error) > 0 {
			var obj struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			}
			if json.Unmarshal(eb.Error, &obj) == nil && obj.Type != "" {
				e.Type, e.Reason = obj.Type, obj.Reason
			} else {
				e.Reason = string(eb.Error)
			}
		}
		return e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("search: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Health is the cluster health.
type Health struct {
	Status        string `json:"status"`
	NumberOfNodes int    `json:"number_of_nodes"`
}

// Health returns the cluster health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.Do(ctx, http.MethodGet, "/_cluster/health", nil, &h)
	return h, err
}

// Plugins returns the installed plugin components of the cluster's nodes.
func (c *Client) Plugins(ctx context.Context) ([]string, error) {
	var rows []struct {
		Component string `json:"component"`
	}
	if err := c.Do(ctx, http.MethodGet, "/_cat/plugins?format=json", nil, &rows); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.Component] {
			seen[r.Component] = true
			out = append(out, r.Component)
		}
	}
	return out, nil
}

// HasPlugin reports whether a plugin component is installed.
func (c *Client) HasPlugin(ctx context.Context, component string) (bool, error) {
	ps, err := c.Plugins(ctx)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p == component {
			return true, nil
		}
	}
	return false, nil
}

// DeleteIndex deletes indices matching a pattern; a missing index is not an error.
func (c *Client) DeleteIndex(ctx context.Context, pattern string) error {
	err := c.Do(ctx, http.MethodDelete, "/"+pattern+"?ignore_unavailable=true&allow_no_indices=true&expand_wildcards=all", nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Refresh makes recent writes to the indices matching pattern searchable.
func (c *Client) Refresh(ctx context.Context, pattern string) error {
	return c.Do(ctx, http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil, nil)
}
