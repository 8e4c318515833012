package counting

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxValueLen bounds every context value and entity kept, in bytes.
const maxValueLen = 256

// topk tracks the most frequent values of one context field of one key in at most a fixed number
// of candidates (Space-Saving, Metwally et al. 2005): while there is room a new value gets its own
// entry; when full, it takes over the entry with the smallest count, inheriting that count as its
// possible error. Any value seen more than calls/candidates times is sure to be held, and count-err
// never exceeds its true count, which is what is reported.
type topk struct {
	e []entry
}

type entry struct {
	value      string
	count, err int64
}

// observe counts one occurrence of v. v is copied when it becomes a candidate, so a kept value never
// pins a larger buffer it was cut from.
func observe[T string | []byte](t *topk, v T, max int) {
	if len(v) == 0 {
		return
	}
	v = truncate(v)
	for i := range t.e {
		if t.e[i].value == string(v) {
			t.e[i].count++
			return
		}
	}
	if len(t.e) < max {
		t.e = append(t.e, entry{value: own(v), count: 1})
		return
	}
	m := 0
	for i := range t.e {
		if t.e[i].count < t.e[m].count {
			m = i
		}
	}
	t.e[m] = entry{value: own(v), count: t.e[m].count + 1, err: t.e[m].count}
}

// top returns the n values with the largest guaranteed counts, most frequent first, ties by value.
func (t *topk) top(n int) []TopValue {
	if len(t.e) == 0 {
		return nil
	}
	out := make([]TopValue, len(t.e))
	for i, e := range t.e {
		out[i] = TopValue{Value: e.value, Count: e.count - e.err}
	}
	sortTop(out)
	return slices.Clip(out[:min(n, len(out))])
}

func sortTop(vs []TopValue) {
	slices.SortFunc(vs, func(a, b TopValue) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// mergeTop sums the counts of two top lists by value and keeps the max most frequent.
func mergeTop(into, add []TopValue, max int) []TopValue {
	if len(add) == 0 {
		return into
	}
	out := slices.Clone(into)
next:
	for _, a := range add {
		for i := range out {
			if out[i].Value == a.Value {
				out[i].Count += a.Count
				continue next
			}
		}
		out = append(out, a)
	}
	sortTop(out)
	return slices.Clip(out[:min(max, len(out))])
}

// truncate cuts v to at most maxValueLen bytes without splitting a UTF-8 sequence.
func truncate[T string | []byte](v T) T {
	if len(v) <= maxValueLen {
		return v
	}
	n := maxValueLen
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n]
}

// own returns v as a string that shares no memory with v.
func own[T string | []byte](v T) string {
	switch v := any(v).(type) {
	case string:
		return strings.Clone(v)
	case []byte:
		return string(v)
	}
	panic("unreachable")
}
