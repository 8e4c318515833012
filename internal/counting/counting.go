// Package counting aggregates CloudTrail events into per-minute counts of the catalog's monitored
// APIs: one Count per (minute, account, region, API, entity) with exact calls, units and errors, and
// approximate top values of the callers, source IPs, user agents, error codes and the catalog's
// context fields.
//
// Memory: a key holds at most Options.Candidates values (each cut to 256 bytes) per context field,
// however many events it counts. The number of keys is the caller's to bound, by draining: a
// streaming agent calls DrainBefore for closed minutes, a batch reader calls Drain after each file
// and totals the counts in a Table. Counts of one key drained at different times (a late event for a
// minute already flushed) are partial and add up.
//
// Field paths: the catalog's units, entity and context fields are dotted paths under
// requestParameters ("requestParameters.instancesSet.items[].maxCount"; "x[]" walks every element
// of array x). Paths rooted elsewhere are never found.
//
// A Counter or Table is not safe for concurrent use.
package counting

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
)

// Key identifies a count.
type Key struct {
	Minute    time.Time // UTC, truncated to the minute
	AccountID string
	Region    string
	API       string // catalog id, e.g. "ec2:RunInstances"
	Entity    string // normalized entity ("" when the API has none)
}

// TopValue is one value of a context field and how many events of a count had it. Counts are lower
// bounds: a value that entered the bounded candidates late may have been seen more often.
type TopValue struct {
	Value string
	Count int64
}

// Count is what one key counted.
type Count struct {
	Key
	Calls  int64 // events
	Units  int64 // sum of the API's units (calls when the catalog names no units field)
	Errors int64 // events with a non-empty errorCode

	// Top values, most frequent first, ties by value; at most Options.TopN each.
	Principals []TopValue
	SourceIPs  []TopValue
	UserAgents []TopValue
	ErrorCodes []TopValue
	// Extra holds the catalog's context fields by name (e.g. "instance_types"); absent when empty.
	Extra map[string][]TopValue
}

// Reason says why a monitored event was not counted. Values are stable, for metrics.
type Reason string

const (
	// ReasonBadUnits: the units field is present but not a non-negative whole number (JSON number or
	// numeric string), or the event's units exceed MaxUnitsPerEvent, or a value on its path has the
	// wrong type.
	ReasonBadUnits Reason = "bad_units"
	// ReasonBadEntity: the entity field is not a string, or has several values.
	ReasonBadEntity Reason = "bad_entity"
	// ReasonBadRequestParameters: requestParameters is not valid JSON, or neither an object nor null.
	ReasonBadRequestParameters Reason = "bad_request_parameters"
	// ReasonBadTime: the event has no eventTime.
	ReasonBadTime Reason = "bad_time"
)

// MaxUnitsPerEvent is the most units one event may carry; more is taken as corrupt input.
const MaxUnitsPerEvent = 1_000_000

// RejectError reports a monitored event that could not be counted.
type RejectError struct {
	Reason Reason
	API    string
	Detail string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("counting %s: %s: %s", e.API, e.Reason, e.Detail)
}

// Options tune the context kept per key.
type Options struct {
	TopN       int // values per context field in a Count; default 5
	Candidates int // values tracked per context field per key; default 32, at least TopN
}

func (o Options) withDefaults() Options {
	if o.TopN <= 0 {
		o.TopN = 5
	}
	if o.Candidates <= 0 {
		o.Candidates = 32
	}
	o.Candidates = max(o.Candidates, o.TopN)
	return o
}

// Context fields every API has, in agg.ctx order; the catalog's follow.
const (
	ctxPrincipal = iota
	ctxSourceIP
	ctxUserAgent
	ctxErrorCode
	ctxBuiltin
)

// minuteKey is a Key without its minute, which the Counter keeps as a map level of its own.
type minuteKey struct {
	account, region, api, entity string
}

// agg is what the Counter holds for a key.
type agg struct {
	calls, units, errors int64
	ctx                  []topk // ctxBuiltin built-in fields, then the API's context fields
}

// Counter aggregates events per minute and key.
type Counter struct {
	cat     *catalog.Catalog
	opts    Options
	plans   map[*catalog.API]*plan
	byID    map[string]*plan
	minutes map[int64]map[minuteKey]*agg // by Unix minute
	n       int
	scratch fields
}

// New returns a Counter for the APIs of cat (the embedded default catalog when nil).
func New(cat *catalog.Catalog, opts Options) *Counter {
	if cat == nil {
		cat = catalog.Default()
	}
	c := &Counter{
		cat:     cat,
		opts:    opts.withDefaults(),
		plans:   make(map[*catalog.API]*plan, len(cat.APIs)),
		byID:    make(map[string]*plan, len(cat.APIs)),
		minutes: map[int64]map[minuteKey]*agg{},
	}
	for i := range cat.APIs {
		p := compile(&cat.APIs[i])
		c.plans[&cat.APIs[i]] = p
		c.byID[p.id] = p
	}
	return c
}

// Len returns the number of keys held.
func (c *Counter) Len() int { return c.n }

// Add counts one event. It returns matched=false (and no error) for an event whose eventSource and
// eventName the catalog does not monitor, and a *RejectError for a monitored event that cannot be
// counted, which then changes no count.
//
// Units of an event: 1 when the API's catalog entry names no units field; else the sum of the
// numbers found at the field's path; when none is found (missing or null), 1 if the units are
// "instances" (a RunInstances request launches at least one) and 0 otherwise. Failed calls count
// their units too; Errors tells them apart.
func (c *Counter) Add(ev *cloudtrail.Event) (matched bool, err error) {
	if ev == nil {
		return false, nil
	}
	api, ok := c.cat.Lookup(ev.EventSource, ev.EventName)
	if !ok {
		return false, nil
	}
	p := c.plans[api]
	if ev.EventTime.IsZero() {
		return true, p.reject(ReasonBadTime, "eventTime is missing")
	}
	f := &c.scratch
	if err := p.read(ev.RequestParameters, f); err != nil {
		f.release()
		return true, err
	}

	units := int64(1)
	if p.units >= 0 {
		units = p.missingUnits
		if f.unitsFound {
			units = f.units
		}
	}
	entity := ""
	if p.entity >= 0 && f.entityFound {
		entity = p.normalize(f.entity)
	}
	minute := ev.EventTime.UTC().Truncate(time.Minute).Unix() / 60
	a := c.get(minute, minuteKey{ev.RecipientAccountID, ev.AWSRegion, api.ID, entity}, len(p.ctxNames))

	a.calls++
	a.units += units
	cands := c.opts.Candidates
	observe(&a.ctx[ctxPrincipal], ev.UserIdentity.Principal(), cands)
	observe(&a.ctx[ctxSourceIP], ev.SourceIPAddress, cands)
	observe(&a.ctx[ctxUserAgent], ev.UserAgent, cands)
	if ev.ErrorCode != "" {
		a.errors++
		observe(&a.ctx[ctxErrorCode], ev.ErrorCode, cands)
	}
	for _, v := range f.ctx {
		observe(&a.ctx[ctxBuiltin+v.field], v.value, cands)
	}
	f.release()
	return true, nil
}

// get returns the aggregate of a key, creating it.
func (c *Counter) get(minute int64, k minuteKey, extra int) *agg {
	m := c.minutes[minute]
	if m == nil {
		m = map[minuteKey]*agg{}
		c.minutes[minute] = m
	}
	a := m[k]
	if a == nil {
		// The key's strings are copied so that they pin no event buffer; api is the catalog's.
		k.account, k.region, k.entity = strings.Clone(k.account), strings.Clone(k.region), strings.Clone(k.entity)
		a = &agg{ctx: make([]topk, ctxBuiltin+extra)}
		m[k] = a
		c.n++
	}
	return a
}

// Drain returns every count held, ordered by key (see Less), and empties the Counter.
func (c *Counter) Drain() []Count {
	return c.drain(func(int64) bool { return true })
}

// DrainBefore returns the counts whose minute is before t, ordered by key, and removes them.
func (c *Counter) DrainBefore(t time.Time) []Count {
	return c.drain(func(m int64) bool { return time.Unix(m*60, 0).Before(t) })
}

func (c *Counter) drain(take func(minute int64) bool) []Count {
	var out []Count
	for m, keys := range c.minutes {
		if !take(m) {
			continue
		}
		for k, a := range keys {
			out = append(out, c.count(m, k, a))
		}
		c.n -= len(keys)
		delete(c.minutes, m)
	}
	sortCounts(out)
	return out
}

func (c *Counter) count(minute int64, k minuteKey, a *agg) Count {
	n := c.opts.TopN
	out := Count{
		Key:        Key{Minute: time.Unix(minute*60, 0).UTC(), AccountID: k.account, Region: k.region, API: k.api, Entity: k.entity},
		Calls:      a.calls,
		Units:      a.units,
		Errors:     a.errors,
		Principals: a.ctx[ctxPrincipal].top(n),
		SourceIPs:  a.ctx[ctxSourceIP].top(n),
		UserAgents: a.ctx[ctxUserAgent].top(n),
		ErrorCodes: a.ctx[ctxErrorCode].top(n),
	}
	names := c.byID[k.api].ctxNames
	for i := range a.ctx[ctxBuiltin:] {
		if top := a.ctx[ctxBuiltin+i].top(n); top != nil {
			if out.Extra == nil {
				out.Extra = map[string][]TopValue{}
			}
			out.Extra[names[i]] = top
		}
	}
	return out
}

// Less orders keys by minute, account, region, API and entity.
func Less(a, b Key) bool { return compareKeys(a, b) < 0 }

func compareKeys(a, b Key) int {
	if c := a.Minute.Compare(b.Minute); c != 0 {
		return c
	}
	return cmp.Or(
		strings.Compare(a.AccountID, b.AccountID),
		strings.Compare(a.Region, b.Region),
		strings.Compare(a.API, b.API),
		strings.Compare(a.Entity, b.Entity),
	)
}

func sortCounts(cs []Count) {
	slices.SortFunc(cs, func(a, b Count) int { return compareKeys(a.Key, b.Key) })
}

// plan is an API's catalog entry compiled for counting.
type plan struct {
	id           string
	root         *node    // trie of the field paths; nil when the API reads no field
	paths        []string // field paths by field number
	units        int      // field number of the units, -1 when units are calls
	entity       int      // field number of the entity, -1 when none
	ctx          []int    // context index by field number, -1 for units and entity
	ctxNames     []string // catalog context names, sorted
	missingUnits int64
	normalizer   string
	entities     map[string]string // recent raw entity -> normalized, at most entityCacheSize
}

// entityCacheSize bounds the entities remembered per API; raw values longer than 2*maxValueLen
// are not remembered.
const entityCacheSize = 1024

// normalize returns the entity of a raw value, normalized and cut to maxValueLen bytes. Events
// repeat few entities, so results are remembered: the usual event costs no allocation.
func (p *plan) normalize(raw []byte) string {
	if e, ok := p.entities[string(raw)]; ok {
		return e
	}
	e := truncate(catalog.NormalizeEntity(p.normalizer, string(raw)))
	if len(raw) <= 2*maxValueLen {
		if len(p.entities) >= entityCacheSize {
			clear(p.entities)
		}
		p.entities[string(raw)] = e
	}
	return e
}

func compile(api *catalog.API) *plan {
	p := &plan{id: api.ID, units: -1, entity: -1}
	root := &node{}
	field := func(path string, ctx int) int {
		f := len(p.paths)
		p.paths = append(p.paths, path)
		p.ctx = append(p.ctx, ctx)
		root.add(strings.Split(path, "."), f)
		return f
	}
	if api.Units.Field != "" {
		p.units = field(api.Units.Field, -1)
		if api.Units.Name == "instances" {
			p.missingUnits = 1
		}
	}
	if api.Entity != nil {
		p.entity = field(api.Entity.Field, -1)
		p.normalizer = api.Entity.Normalize
		p.entities = map[string]string{}
	}
	for name := range api.Context {
		p.ctxNames = append(p.ctxNames, name)
	}
	slices.Sort(p.ctxNames)
	for i, name := range p.ctxNames {
		field(api.Context[name], i)
	}
	if len(p.paths) > 0 {
		p.root = root
	}
	return p
}

func (p *plan) reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, API: p.id, Detail: fmt.Sprintf(format, args...)}
}

// fields is what one event's RequestParameters hold for a plan. It is reused from event to event.
type fields struct {
	p           *plan
	units       int64
	unitsFound  bool
	entity      []byte
	entityFound bool
	ctx         []ctxValue
	err         *RejectError // the first problem met
}

type ctxValue struct {
	field int // context index
	value []byte
}

// read walks params once for every field of p.
func (p *plan) read(params json.RawMessage, f *fields) error {
	*f = fields{p: p, ctx: f.ctx[:0]}
	if p.root == nil {
		return nil
	}
	if len(params) > 0 {
		if !json.Valid(params) {
			return p.reject(ReasonBadRequestParameters, "not valid JSON")
		}
		w := walker{b: params}
		if c := w.peek(); c != '{' && c != 'n' {
			return p.reject(ReasonBadRequestParameters, "not an object")
		}
	}
	walkEvent(p.root, params, f)
	if f.err != nil {
		return f.err
	}
	return nil
}

// release drops the references into the last event's RequestParameters.
func (f *fields) release() {
	clear(f.ctx)
	f.ctx = f.ctx[:0]
	f.entity = nil
}

func (f *fields) fail(r Reason, format string, args ...any) {
	if f.err == nil {
		f.err = f.p.reject(r, format, args...)
	}
}

func (f *fields) mismatch(n int) {
	switch n {
	case f.p.units:
		f.fail(ReasonBadUnits, "%s: a value on the path is not an object or array", f.p.paths[n])
	case f.p.entity:
		f.fail(ReasonBadEntity, "%s: a value on the path is not an object or array", f.p.paths[n])
	}
}

func (f *fields) leaf(n int, raw []byte) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	switch n {
	case f.p.units:
		v, why := parseUnits(raw)
		if why != "" {
			f.fail(ReasonBadUnits, "%s: %s", f.p.paths[n], why)
			return
		}
		f.units += v
		f.unitsFound = true
		if f.units > MaxUnitsPerEvent {
			f.fail(ReasonBadUnits, "%s: more than %d units in one event", f.p.paths[n], MaxUnitsPerEvent)
		}
	case f.p.entity:
		s, ok := unquote(raw)
		switch {
		case !ok:
			f.fail(ReasonBadEntity, "%s: %.40s is not a string", f.p.paths[n], raw)
		case f.entityFound:
			f.fail(ReasonBadEntity, "%s: more than one value", f.p.paths[n])
		default:
			f.entity, f.entityFound = s, true
		}
	default:
		switch raw[0] {
		case '{', '[':
			return // only scalars make context
		case '"':
			s, ok := unquote(raw)
			if !ok {
				return
			}
			raw = s
		}
		f.ctx = append(f.ctx, ctxValue{field: f.p.ctx[n], value: raw})
	}
}

// parseUnits reads one units value: a JSON number or a string holding a decimal number, whole and
// between 0 and MaxUnitsPerEvent. On failure it says why.
func parseUnits(raw []byte) (int64, string) {
	num := raw
	if raw[0] == '"' {
		s, ok := unquote(raw)
		if !ok || !isDecimal(strings.TrimSpace(string(s))) {
			return 0, fmt.Sprintf("%.40s is not a number", raw)
		}
		num = []byte(strings.TrimSpace(string(s)))
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, fmt.Sprintf("%.40s is not a number", raw)
	}
	v, err := strconv.ParseFloat(string(num), 64)
	switch {
	case err != nil || math.IsInf(v, 0):
		return 0, fmt.Sprintf("%.40s is not a usable number", raw)
	case v < 0:
		return 0, fmt.Sprintf("%.40s is negative", raw)
	case v != math.Trunc(v):
		return 0, fmt.Sprintf("%.40s is not a whole number", raw)
	case v > MaxUnitsPerEvent:
		return 0, fmt.Sprintf("%.40s is more than %d", raw, MaxUnitsPerEvent)
	}
	return int64(v), ""
}

// isDecimal reports whether s is made of the characters of a decimal number (ParseFloat checks the
// rest), which keeps out "Inf", "NaN", hexadecimal and underscores.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !strings.ContainsRune("0123456789.eE+-", rune(c)) {
			return false
		}
	}
	return true
}
