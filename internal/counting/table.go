package counting

import "time"

// Table totals counts by key: calls, units and errors add up; top values add up by value, keeping
// Options.Candidates per field and reporting Options.TopN. `spikewatch count` uses it to total many
// files, each counted and drained on its own. Its memory grows with the keys it holds.
type Table struct {
	opts Options
	m    map[tableKey]*Count
}

type tableKey struct {
	minute int64
	minuteKey
}

// NewTable returns an empty Table.
func NewTable(opts Options) *Table {
	return &Table{opts: opts.withDefaults(), m: map[tableKey]*Count{}}
}

// Add adds c to the count of its key. c's minute is taken in UTC, truncated to the minute.
func (t *Table) Add(c Count) {
	minute := c.Minute.UTC().Truncate(time.Minute)
	k := tableKey{minute.Unix() / 60, minuteKey{c.AccountID, c.Region, c.API, c.Entity}}
	e := t.m[k]
	if e == nil {
		e = &Count{Key: c.Key}
		e.Minute = minute
		t.m[k] = e
	}
	e.Calls += c.Calls
	e.Units += c.Units
	e.Errors += c.Errors
	n := t.opts.Candidates
	e.Principals = mergeTop(e.Principals, c.Principals, n)
	e.SourceIPs = mergeTop(e.SourceIPs, c.SourceIPs, n)
	e.UserAgents = mergeTop(e.UserAgents, c.UserAgents, n)
	e.ErrorCodes = mergeTop(e.ErrorCodes, c.ErrorCodes, n)
	for name, vs := range c.Extra {
		if len(vs) == 0 {
			continue
		}
		if e.Extra == nil {
			e.Extra = map[string][]TopValue{}
		}
		e.Extra[name] = mergeTop(e.Extra[name], vs, n)
	}
}

// Len returns the number of keys held.
func (t *Table) Len() int { return len(t.m) }

// Counts returns the totals, ordered by key (see Less). They are copies: the Table can go on adding.
func (t *Table) Counts() []Count {
	out := make([]Count, 0, len(t.m))
	n := t.opts.TopN
	for _, e := range t.m {
		c := *e
		c.Principals = cut(e.Principals, n)
		c.SourceIPs = cut(e.SourceIPs, n)
		c.UserAgents = cut(e.UserAgents, n)
		c.ErrorCodes = cut(e.ErrorCodes, n)
		c.Extra = nil
		for name, vs := range e.Extra {
			if c.Extra == nil {
				c.Extra = make(map[string][]TopValue, len(e.Extra))
			}
			c.Extra[name] = cut(vs, n)
		}
		out = append(out, c)
	}
	sortCounts(out)
	return out
}

// cut returns a copy of the first n values.
func cut(vs []TopValue, n int) []TopValue {
	if len(vs) == 0 {
		return nil
	}
	return append([]TopValue(nil), vs[:min(n, len(vs))]...)
}
