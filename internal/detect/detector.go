package detect

import (
	"sync"
	"time"
)

// Detector keeps one Model per key (for example "account|region|api|entity") and evicts the
// least recently updated model once it holds MaxEntities. It is safe for concurrent use.
type Detector struct {
	p          *params
	mu         sync.Mutex
	models     map[string]*entry
	head, tail *entry // most and least recently updated
}

type entry struct {
	key        string
	model      Model
	prev, next *entry
}

// New returns an empty Detector.
func New(cfg Config) *Detector {
	return &Detector{p: newParams(cfg), models: make(map[string]*entry)}
}

// Update passes (t, v) to the model of key, creating it (and evicting the least recently updated
// model if the Detector is full) when needed. See Model.Update.
func (d *Detector) Update(key string, t time.Time, v float64) Result {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.models[key]
	switch {
	case e != nil:
		d.unlink(e)
	case len(d.models) >= d.p.maxEntities:
		// Reuse the evicted entry and its model's memory.
		e = d.tail
		d.unlink(e)
		delete(d.models, e.key)
		e.key = key
		e.model.init(d.p)
		d.models[key] = e
	default:
		e = &entry{key: key}
		e.model.init(d.p)
		d.models[key] = e
	}
	d.pushFront(e)
	return e.model.Update(t, v)
}

// Len returns the number of models held.
func (d *Detector) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.models)
}

func (d *Detector) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		d.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		d.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (d *Detector) pushFront(e *entry) {
	e.next = d.head
	if d.head != nil {
		d.head.prev = e
	}
	d.head = e
	if d.tail == nil {
		d.tail = e
	}
}
