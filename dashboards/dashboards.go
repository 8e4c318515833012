// Package dashboards ships Spikewatch's OpenSearch Dashboards saved objects (index patterns,
// visualizations, the Organization and Account dashboards) and imports them through the Dashboards
// saved objects API. The objects live in saved_objects/*.ndjson in Dashboards' export format: edit
// them in Dashboards, export, and replace the file.
package dashboards

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed saved_objects/*.ndjson
var files embed.FS

// DefaultPrefix is the index prefix the shipped index patterns are written for.
const DefaultPrefix = "spikewatch"

// NDJSON returns the saved objects, one JSON object per line, as Dashboards imports them.
func NDJSON() []byte {
	names, err := fs.Glob(files, "saved_objects/*.ndjson")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	var out []byte
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded at build time
		}
		out = append(out, b...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
}

// Reference is a saved object's link to another one, named where the attributes use it
// (kibanaSavedObjectMeta.searchSourceJSON.index, panel_0, control_0_index_pattern).
type Reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Object is one saved object. Attributes keep Dashboards' shape: visState, panelsJSON,
// searchSourceJSON and the like are JSON documents inside strings.
type Object struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes"`
	References []Reference    `json:"references"`
}

// Objects parses the saved objects.
func Objects() ([]Object, error) {
	var out []Object
	err := eachLine(NDJSON(), func(n int, line []byte) error {
		var o Object
		if err := json.Unmarshal(line, &o); err != nil {
			return fmt.Errorf("saved objects line %d: %w", n, err)
		}
		if o.Type == "" || o.ID == "" {
			if isExportSummary(line) {
				return nil
			}
			return fmt.Errorf("saved objects line %d: no type or id", n)
		}
		out = append(out, o)
		return nil
	})
	return out, err
}

// ForPrefix returns the saved objects with the index pattern titles rewritten for an index prefix
// other than DefaultPrefix (acme: acme-counts-*, acme-alerts). Ids stay the same, so the
// visualizations keep pointing at the patterns; nothing else changes.
func ForPrefix(prefix string) []byte {
	src := NDJSON()
	if prefix == "" || prefix == DefaultPrefix {
		return src
	}
	var out bytes.Buffer
	err := eachLine(src, func(_ int, line []byte) error {
		rewritten, err := retitle(line, prefix)
		if err != nil {
			return err
		}
		out.Write(rewritten)
		out.WriteByte('\n')
		return nil
	})
	if err != nil {
		panic(err) // the embedded file is checked by the tests
	}
	return out.Bytes()
}

// retitle rewrites the title of an index-pattern line; other lines come back unchanged.
func retitle(line []byte, prefix string) ([]byte, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return nil, err
	}
	if head.Type != "index-pattern" {
		return line, nil
	}
	var obj, attrs map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(obj["attributes"], &attrs); err != nil {
		return nil, err
	}
	var title string
	if err := json.Unmarshal(attrs["title"], &title); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(title, DefaultPrefix+"-") {
		return line, nil
	}
	var err error
	if attrs["title"], err = marshal(prefix + strings.TrimPrefix(title, DefaultPrefix)); err != nil {
		return nil, err
	}
	if obj["attributes"], err = marshal(attrs); err != nil {
		return nil, err
	}
	return marshal(obj)
}

// marshal encodes compactly without escaping <, > and &, as Dashboards exports.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func eachLine(b []byte, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// isExportSummary tells the last line of a Dashboards export ({"exportedCount":...}), which
// import skips too.
func isExportSummary(line []byte) bool {
	var s struct {
		ExportedCount *int `json:"exportedCount"`
	}
	return json.Unmarshal(line, &s) == nil && s.ExportedCount != nil
}

// ImportResult is the answer of the saved objects import API.
type ImportResult struct {
	Success      bool            `json:"success"`
	SuccessCount int             `json:"successCount"`
	Errors       []ImportFailure `json:"errors"`
}

// ImportFailure is one object Dashboards did not import.
type ImportFailure struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title"`
	Error struct {
		Type       string      `json:"type"` // conflict, missing_references, unsupported_type, unknown
		Message    string      `json:"message"`
		References []Reference `json:"references"`
	} `json:"error"`
}

func (f ImportFailure) String() string {
	s := fmt.Sprintf("%s %s (%s): %s", f.Type, f.ID, f.Title, f.Error.Type)
	if f.Error.Message != "" {
		s += ": " + f.Error.Message
	}
	for _, r := range f.Error.References {
		s += fmt.Sprintf(" [missing %s %s]", r.Type, r.ID)
	}
	return s
}

// Import posts the saved objects to Dashboards (dashboardsURL is its base URL, such as
// https://domain/_dashboards). With overwrite, objects already there are replaced. user may be
// empty for a Dashboards without authentication; client nil means a client with a one-minute
// timeout.
func Import(ctx context.Context, dashboardsURL string, client *http.Client, user, pass string, overwrite bool) (ImportResult, error) {
	return ImportNDJSON(ctx, dashboardsURL, client, user, pass, overwrite, NDJSON())
}

// ImportNDJSON is Import with the saved objects given (ForPrefix's, say).
func ImportNDJSON(ctx context.Context, dashboardsURL string, client *http.Client, user, pass string, overwrite bool, ndjson []byte) (ImportResult, error) {
	var res ImportResult
	u, err := url.Parse(strings.TrimRight(dashboardsURL, "/") + "/api/saved_objects/_import")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return res, fmt.Errorf("import saved objects: bad Dashboards URL %q", dashboardsURL)
	}
	if overwrite {
		u.RawQuery = "overwrite=true"
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "spikewatch.ndjson")
	if err != nil {
		return res, err
	}
	if _, err := part.Write(ndjson); err != nil {
		return res, err
	}
	if err := mw.Close(); err != nil {
		return res, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return res, fmt.Errorf("import saved objects: %w", err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("osd-xsrf", "true")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return res, fmt.Errorf("import saved objects: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return res, fmt.Errorf("import saved objects: read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, fmt.Errorf("import saved objects: %s: %s", resp.Status, snippet(raw))
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("import saved objects: answer is not the import result: %w: %s", err, snippet(raw))
	}
	if !res.Success {
		msgs := make([]string, len(res.Errors))
		for i, f := range res.Errors {
			msgs[i] = f.String()
		}
		return res, fmt.Errorf("import saved objects: %d imported, %d failed: %s",
			res.SuccessCount, len(res.Errors), strings.Join(msgs, "; "))
	}
	return res, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}
