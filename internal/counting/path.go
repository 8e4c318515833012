package counting

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The catalog's field paths ("requestParameters.instancesSet.items[].maxCount") of one API are
// compiled into a small trie, walked once over an event's raw RequestParameters: values under keys
// the trie does not name are skipped byte by byte, never decoded.

// node is a point in the trie, standing for the JSON values found at one path prefix.
type node struct {
	leaves  []int // fields whose path ends here
	through []int // fields whose path continues below
	edges   []edge
}

// edge leads from a node to the value under one object key; array means that value is an array
// whose elements are each walked ("items[]").
type edge struct {
	name   string
	array  bool
	to     *node
	fields []int // every field reached through this edge
}

// add inserts the path segments of field f below n.
func (n *node) add(segs []string, f int) {
	if len(segs) == 0 {
		n.leaves = append(n.leaves, f)
		return
	}
	n.through = append(n.through, f)
	name, array := strings.CutSuffix(segs[0], "[]")
	for i := range n.edges {
		if e := &n.edges[i]; e.name == name && e.array == array {
			e.fields = append(e.fields, f)
			e.to.add(segs[1:], f)
			return
		}
	}
	to := &node{}
	n.edges = append(n.edges, edge{name: name, array: array, to: to, fields: []int{f}})
	to.add(segs[1:], f)
}

// visitor receives what a walk finds for each field: leaf gets the raw JSON text of a value at the
// end of a field's path; mismatch reports that a value on the way is not an object (or array, for
// "[]") and not null.
type visitor interface {
	leaf(f int, raw []byte)
	mismatch(f int)
}

// walker walks raw JSON that json.Valid accepted. Its loops are still bounds-checked, so no input
// can make it panic.
type walker struct {
	b []byte
	i int
	v visitor
}

// walkEvent walks RequestParameters from the trie's event root: only edges named
// "requestParameters" lead into it; other paths are never found.
func walkEvent(root *node, params []byte, v visitor) {
	for i := range root.edges {
		if e := &root.edges[i]; e.name == "requestParameters" {
			w := walker{b: params, v: v}
			w.edge(e)
		}
	}
}

func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end (a 0 byte in the input, invalid
// JSON, reads the same: loops test the end with w.i).
func (w *walker) peek() byte {
	w.ws()
	if w.i < len(w.b) {
		return w.b[w.i]
	}
	return 0
}

// edge walks the value at the current position as the end of edge e.
func (w *walker) edge(e *edge) {
	if !e.array {
		w.node(e.to)
		return
	}
	switch w.peek() {
	case '[':
		w.i++
		for w.peek() != ']' && w.i < len(w.b) {
			if w.b[w.i] == ',' {
				w.i++
			} else {
				w.node(e.to)
			}
		}
		w.i = min(w.i+1, len(w.b))
	case 'n', 0: // null or absent: not found
		w.skip()
	default:
		for _, f := range e.fields {
			w.v.mismatch(f)
		}
		w.skip()
	}
}

// node walks the value at the current position as the value at n.
func (w *walker) node(n *node) {
	c := w.peek()
	start := w.i
	if c == '{' && len(n.edges) > 0 {
		w.object(n)
	} else {
		w.skip()
		if c != 'n' && c != 0 {
			for _, f := range n.through {
				w.v.mismatch(f)
			}
		}
	}
	for _, f := range n.leaves {
		w.v.leaf(f, w.b[start:w.i])
	}
}

// object walks an object's members, following the edges of n whose names match their keys.
func (w *walker) object(n *node) {
	w.i++ // '{'
	for {
		switch w.peek() {
		case '}':
			w.i++
			return
		case ',':
			w.i++
			continue
		case '"':
		default: // the end, or a byte valid JSON has not here
			if w.i >= len(w.b) {
				return
			}
			w.skip()
			continue
		}
		ks := w.i
		w.skipString()
		key, _ := unquote(w.b[ks:w.i])
		if w.peek() == ':' {
			w.i++
		}
		w.ws()
		vs, found := w.i, false
		for i := range n.edges {
			if e := &n.edges[i]; e.name == string(key) {
				w.i = vs
				w.edge(e)
				found = true
			}
		}
		if !found {
			w.skip()
		}
	}
}

// skip moves past one value. Unless at the end, it moves at least one byte.
func (w *walker) skip() {
	w.ws()
	if w.i >= len(w.b) {
		return
	}
	switch w.b[w.i] {
	case '"':
		w.skipString()
	case '{', '[':
		depth := 0
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case '"':
				w.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				return
			}
		}
	default: // number or literal; on a stray delimiter (invalid JSON) it still moves one byte
		for start := w.i; w.i < len(w.b); w.i++ {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if w.i == start {
					w.i++
				}
				return
			}
		}
	}
}

// skipString moves past a string, the current position being on its opening quote.
func (w *walker) skipString() {
	for w.i++; w.i < len(w.b); w.i++ {
		switch w.b[w.i] {
		case '\\':
			w.i++
		case '"':
			w.i++
			return
		}
	}
	w.i = len(w.b) // a final backslash stepped past the end
}

// unquote returns the content of a JSON string token, without copying unless it has escapes.
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}
