// Package notify delivers alerts: to the central SNS topic (every message carries the message
// attributes account_id, api, severity and entity, so each account's subscribers filter on them),
// to a generic signed webhook, or to several sinks at once.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Message is one alert.
type Message struct {
	Subject string // one line; shortened and made printable ASCII for SNS
	Text    string // readable form (email)
	JSON    []byte // structured form: the body that machines receive

	AccountID string // AWS account the alert is about
	API       string // catalog API, e.g. "ec2:RunInstances"
	Severity  string // e.g. "high"
	Entity    string // optional: function name, etc.
}

// Publisher delivers a Message.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// body returns the structured form of m: m.JSON, which must be valid JSON, or, when empty, a JSON
// object of m's other fields.
func body(m Message) ([]byte, error) {
	if len(m.JSON) > 0 {
		if !json.Valid(m.JSON) {
			return nil, errors.New("notify: message JSON is not valid JSON")
		}
		return m.JSON, nil
	}
	b, err := json.Marshal(struct {
		Subject   string `json:"subject,omitempty"`
		Text      string `json:"text,omitempty"`
		AccountID string `json:"account_id,omitempty"`
		API       string `json:"api,omitempty"`
		Severity  string `json:"severity,omitempty"`
		Entity    string `json:"entity,omitempty"`
	}{m.Subject, m.Text, m.AccountID, m.API, m.Severity, m.Entity})
	if err != nil {
		return nil, fmt.Errorf("notify: encode message: %w", err)
	}
	return b, nil
}

// Multi publishes to every publisher in turn and joins their errors; one failing sink does not
// keep a message from the others. Nil entries are skipped.
type Multi []Publisher

// Publish implements Publisher.
func (ps Multi) Publish(ctx context.Context, m Message) error {
	var errs []error
	for _, p := range ps {
		if p == nil {
			continue
		}
		if err := p.Publish(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Recorder is an in-memory Publisher for tests of other packages. The zero value is ready. Err,
// when set, is returned by Publish (the message is still recorded).
type Recorder struct {
	Err error

	mu   sync.Mutex
	msgs []Message
}

// Publish implements Publisher.
func (r *Recorder) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.JSON = append([]byte(nil), m.JSON...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return r.Err
}

// Messages returns a copy of the messages published so far, in order.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}
