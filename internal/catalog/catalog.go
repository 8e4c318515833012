// Package catalog loads the list of monitored APIs: which CloudTrail events are counted, what their
// units measure, how an entity is taken from them, and how detectors and alerts are set for each.
// The catalog is data (catalog.yaml, embedded as the default); agents, hub and the StackSet's
// EventBridge rule all derive from it.
package catalog

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed catalog.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default catalog's text.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Catalog is a validated list of monitored APIs.
type Catalog struct {
	Version int   `yaml:"version" json:"version"`
	APIs    []API `yaml:"apis" json:"apis"`

	// Digest identifies the catalog's content (sha256 of the YAML), so agents and hub can tell
	// whether they run the same one.
	Digest string `yaml:"-" json:"digest"`

	byEvent map[eventKey]int
}

type eventKey struct{ source, name string }

// API is one monitored CloudTrail API.
type API struct {
	ID          string            `yaml:"id" json:"id"`
	EventSource string            `yaml:"event_source" json:"event_source"`
	EventName   string            `yaml:"event_name" json:"event_name"`
	Management  bool              `yaml:"management" json:"management"`
	Units       Units             `yaml:"units" json:"units"`
	Entity      *Entity           `yaml:"entity,omitempty" json:"entity,omitempty"`
	Context     map[string]string `yaml:"context,omitempty" json:"context,omitempty"`
	Detector    Detector          `yaml:"detector" json:"detector"`
	Alert       Alert             `yaml:"alert" json:"alert"`
	Cost        Cost              `yaml:"cost" json:"cost"`
}

// Units says what a count's units measure. Without Field, units equal calls.
type Units struct {
	Name  string `yaml:"name" json:"name"`
	Field string `yaml:"field,omitempty" json:"field,omitempty"`
}

// Entity splits the counts of an API inside an account (for example by Lambda function).
type Entity struct {
	Name      string `yaml:"name" json:"name"`
	Field     string `yaml:"field" json:"field"`
	Normalize string `yaml:"normalize,omitempty" json:"normalize,omitempty"`
}

// Detector holds the anomaly detector settings of an API.
type Detector struct {
	IntervalMinutes    int    `yaml:"interval_minutes" json:"interval_minutes"`
	WindowDelayMinutes int    `yaml:"window_delay_minutes" json:"window_delay_minutes"`
	ShingleSize        int    `yaml:"shingle_size" json:"shingle_size"`
	Feature            string `yaml:"feature" json:"feature"` // "calls" or "units"
}

// Alert holds the alert thresholds of an API.
type Alert struct {
	MinGrade      float64 `yaml:"min_grade" json:"min_grade"`
	MinConfidence float64 `yaml:"min_confidence" json:"min_confidence"`
	HighGrade     float64 `yaml:"high_grade" json:"high_grade"`
}

// Cost names the cost model used to price a spike of this API.
type Cost struct {
	Model string `yaml:"model" json:"model"`
}

// Normalizers known to the agent.
const (
	NormalizeNone           = ""
	NormalizeLambdaFunction = "lambda_function"
)

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)
	fieldPattern = regexp.MustCompile(`^[A-Za-z0-9_]+(\[\])?(\.[A-Za-z0-9_]+(\[\])?)*$`)
	ctxKey       = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid catalog")

// Default returns the embedded catalog.
func Default() *Catalog {
	c, err := Parse(defaultYAML)
	if err != nil {
		// The embedded file is checked by the package's tests; reaching this is a build defect.
		panic(fmt.Sprintf("embedded catalog: %v", err))
	}
	return c
}

// Load reads a catalog file, or the embedded default when path is empty.
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a catalog, filling defaults.
func Parse(b []byte) (*Catalog, error) {
	var c Catalog
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sum := sha256.Sum256(b)
	c.Digest = hex.EncodeToString(sum[:8])
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Catalog) validate() error {
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: apis[%d]: %s", ErrInvalid, i, fmt.Sprintf(format, args...)))
	}
	if c.Version != 1 {
		errs = append(errs, fmt.Errorf("%w: version %d is not supported (want 1)", ErrInvalid, c.Version))
	}
	if len(c.APIs) == 0 {
		errs = append(errs, fmt.Errorf("%w: no apis", ErrInvalid))
	}
	c.byEvent = make(map[eventKey]int, len(c.APIs))
	ids := map[string]bool{}
	for i := range c.APIs {
		a := &c.APIs[i]
		if !idPattern.MatchString(a.ID) {
			bad(i, "id %q: want service:Action", a.ID)
		}
		if ids[a.ID] {
			bad(i, "duplicate id %q", a.ID)
		}
		ids[a.ID] = true
		if !strings.HasSuffix(a.EventSource, ".amazonaws.com") {
			bad(i, "event_source %q: want <service>.amazonaws.com", a.EventSource)
		}
		if a.EventName == "" {
			bad(i, "event_name is empty")
		}
		k := eventKey{a.EventSource, a.EventName}
		if j, dup := c.byEvent[k]; dup {
			bad(i, "event %s %s already monitored by %s", a.EventSource, a.EventName, c.APIs[j].ID)
		}
		c.byEvent[k] = i
		if a.Units.Name == "" {
			a.Units.Name = "calls"
		}
		if a.Units.Field != "" && !fieldPattern.MatchString(a.Units.Field) {
			bad(i, "units.field %q is not a dotted path", a.Units.Field)
		}
		if a.Entity != nil {
			if a.Entity.Name == "" || !fieldPattern.MatchString(a.Entity.Field) {
				bad(i, "entity needs a name and a dotted-path field")
			}
			switch a.Entity.Normalize {
			case NormalizeNone, NormalizeLambdaFunction:
			default:
				bad(i, "entity.normalize %q is unknown (want lambda_function or nothing)", a.Entity.Normalize)
			}
		}
		for k, f := range a.Context {
			if !ctxKey.MatchString(k) || !fieldPattern.MatchString(f) {
				bad(i, "context %q: %q is not a valid name and dotted path", k, f)
			}
		}
		d := &a.Detector
		if d.IntervalMinutes == 0 {
			d.IntervalMinutes = 1
		}
		if d.ShingleSize == 0 {
			d.ShingleSize = 8
		}
		if d.Feature == "" {
			d.Feature = "calls"
		}
		if d.IntervalMinutes < 1 || d.IntervalMinutes > 60 || d.WindowDelayMinutes < 0 || d.ShingleSize < 1 || d.ShingleSize > 60 {
			bad(i, "detector: interval 1-60 minutes, window delay >= 0, shingle 1-60")
		}
		if d.Feature != "calls" && d.Feature != "units" {
			bad(i, "detector.feature %q: want calls or units", d.Feature)
		}
		al := &a.Alert
		if al.MinGrade == 0 {
			al.MinGrade = 0.7
		}
		if al.HighGrade == 0 {
			al.HighGrade = 0.9
		}
		if al.MinGrade < 0 || al.MinGrade > 1 || al.MinConfidence < 0 || al.MinConfidence > 1 || al.HighGrade < al.MinGrade || al.HighGrade > 1 {
			bad(i, "alert: grades and confidence in [0,1], high_grade >= min_grade")
		}
	}
	return errors.Join(errs...)
}

// Lookup returns the API monitored for a CloudTrail eventSource and eventName.
func (c *Catalog) Lookup(eventSource, eventName string) (*API, bool) {
	i, ok := c.byEvent[eventKey{eventSource, eventName}]
	if !ok {
		return nil, false
	}
	return &c.APIs[i], true
}

// ByID returns the API with the given id.
func (c *Catalog) ByID(id string) (*API, bool) {
	for i := range c.APIs {
		if c.APIs[i].ID == id {
			return &c.APIs[i], true
		}
	}
	return nil, false
}

// EventSources returns the sorted, distinct eventSources of the catalog.
func (c *Catalog) EventSources() []string {
	set := map[string]bool{}
	for _, a := range c.APIs {
		set[a.EventSource] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// EventNames returns the sorted, distinct eventNames of the catalog.
func (c *Catalog) EventNames() []string {
	set := map[string]bool{}
	for _, a := range c.APIs {
		set[a.EventName] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// NormalizeEntity applies an entity normalizer to a raw request value.
// lambda_function accepts a function name, a partial ARN (123456789012:function:name) or a full ARN
// (arn:aws:lambda:us-east-1:123456789012:function:name[:qualifier]) and returns the name.
func NormalizeEntity(normalize, raw string) string {
	raw = strings.TrimSpace(raw)
	switch normalize {
	case NormalizeLambdaFunction:
		parts := strings.Split(raw, ":")
		for i, p := range parts {
			if p == "function" && i+1 < len(parts) {
				return parts[i+1]
			}
		}
		// "name:qualifier" (alias or version) names the same function.
		if len(parts) == 2 && parts[0] != "" {
			return parts[0]
		}
		return raw
	default:
		return raw
	}
}
