// Package lambda runs the agent as an AWS Lambda function behind SQS, as the member stack deploys it
// (stacksets/member.go: runtime provided.al2023, arm64, handler bootstrap, an SQS event source with
// ReportBatchItemFailures). EventBridge puts every catalog CloudTrail event on the queue; Lambda
// hands the function batches of messages; the function counts them and streams the counts to the hub
// with the agent's own machinery (package agent), then answers with an SQS partial batch response.
//
// Exactly once: each message is its own input unit, "sqs:"+messageId. The hub derives document ids
// from the unit, so a message that SQS delivers again (after a failure, a timeout, or simply because
// SQS is at-least-once) overwrites the documents it wrote before instead of adding to them.
//
// Which messages fail: a message fails (it is listed in batchItemFailures and SQS delivers it again)
// when its body could not be read at all, or when the invocation could not get every batch settled
// by the hub before the deadline. The hub settles a batch by accepting it or by rejecting it; a
// rejection is permanent (retrying the same counts cannot help), so it is logged and the message
// succeeds. A CloudTrail event that cannot be used (malformed JSON, not CloudTrail, ...) is a counted
// rejection, not a failure: delivering it again would reject it again.
//
// The agent reports no per-unit outcome (and package agent is not changed for this), so the handler
// settles the invocation as a whole: when agent.Run returns nil with Once set, the source was drained
// and every batch was settled, and every readable message succeeds; when it returns an error (the
// deadline came first, the hub is unreachable), every message of the invocation fails, including
// those whose batches were acknowledged. That is simple and safe: the redelivered messages carry the
// same unit ids and overwrite what already got through. An invocation whose messages hold no counts
// at all (only rejected or unmonitored events) does not contact the hub and succeeds.
//
// The agent runs without a spool: a spool in the sandbox's /tmp would send a failed invocation's
// batches again in a later invocation, while SQS already delivers their messages again.
package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/replay"
)

// Defaults of a Handler.
const (
	// DefaultMargin is how long before the Lambda deadline the agent stops waiting for the hub, to
	// leave time for answering the runtime API. At most a tenth of the time left is taken.
	DefaultMargin = 3 * time.Second
	// DefaultTimeout bounds an invocation whose context has no deadline.
	DefaultTimeout = 55 * time.Second
	// DefaultMaxInFlight is the agent's batches in flight: every message is its own batch, so a
	// Lambda keeps more of them in flight than a file-replaying agent does.
	DefaultMaxInFlight = 32
)

// UnitPrefix starts the unit id of every SQS message.
const UnitPrefix = "sqs:"

// ErrInvalidEvent is wrapped by Handle's errors: the event is not an SQS batch it can answer for
// message by message.
var ErrInvalidEvent = errors.New("not an SQS event")

// Response is the SQS partial batch response: the messages SQS must deliver again. An empty list
// means every message succeeded.
type Response struct {
	BatchItemFailures []ItemFailure `json:"batchItemFailures"`
}

// ItemFailure names one failed message by its messageId.
type ItemFailure struct {
	ItemIdentifier string `json:"itemIdentifier"`
}

// Handler counts the CloudTrail events of SQS batches and streams the counts to the hub.
type Handler struct {
	cfg     agent.Config
	cat     *catalog.Catalog
	log     *slog.Logger // the handler's
	baseLog *slog.Logger // the agent's (it adds its own component)

	// Margin is how long before the invocation's deadline the agent stops (DefaultMargin when 0;
	// at most a tenth of the time left).
	Margin time.Duration
	// Timeout bounds an invocation whose context has no deadline (DefaultTimeout when 0).
	Timeout time.Duration
}

// NewHandler prepares a handler. cfg names the hub, its token, TLS and the agent id; Once is set
// and SpoolDir cleared (see the package comment). cat is the embedded catalog when nil.
func NewHandler(cfg agent.Config, cat *catalog.Catalog, log *slog.Logger) (*Handler, error) {
	if cfg.Hub == "" {
		return nil, errors.New("lambda: no hub address")
	}
	if cfg.AgentID == "" {
		cfg.AgentID = "lambda"
	}
	cfg.Once = true
	cfg.SpoolDir = ""
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cat == nil {
		cat = catalog.Default()
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{cfg: cfg, cat: cat, log: log.With("component", "lambda"), baseLog: log}, nil
}

// sqsEvent is the part of the SQS Lambda event the handler reads.
type sqsEvent struct {
	Records []struct {
		MessageID   string `json:"messageId"`
		Body        string `json:"body"`
		EventSource string `json:"eventSource"`
	} `json:"Records"`
}

// message is one SQS message and what reading it gave.
type message struct {
	id     string
	counts []counting.Count
	// err: the body could not be read; the message is not sent and fails.
	err error
}

func (m *message) unit() string { return UnitPrefix + m.id }

// invocationStats is what one invocation read.
type invocationStats struct {
	events, matched, counts int64
	rejected                map[string]int64
}

func (s *invocationStats) reject(reason string) {
	if s.rejected == nil {
		s.rejected = map[string]int64{}
	}
	s.rejected[reason]++
}

// parseEvent reads the SQS event's messages, in order and without repeats.
func parseEvent(event []byte) ([]*message, []string, error) {
	var ev sqsEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, nil, fmt.Errorf("lambda: %w: %w", ErrInvalidEvent, err)
	}
	if ev.Records == nil {
		return nil, nil, fmt.Errorf("lambda: %w: no Records", ErrInvalidEvent)
	}
	msgs := make([]*message, 0, len(ev.Records))
	bodies := make([]string, 0, len(ev.Records))
	seen := map[string]bool{}
	for i, r := range ev.Records {
		if r.EventSource != "aws:sqs" {
			return nil, nil, fmt.Errorf("lambda: %w: record %d has eventSource %q, want aws:sqs", ErrInvalidEvent, i, r.EventSource)
		}
		if r.MessageID == "" {
			return nil, nil, fmt.Errorf("lambda: %w: record %d has no messageId", ErrInvalidEvent, i)
		}
		if seen[r.MessageID] {
			continue // the same message twice in a batch: its unit would be sent twice for nothing
		}
		seen[r.MessageID] = true
		msgs = append(msgs, &message{id: r.MessageID})
		bodies = append(bodies, r.Body)
	}
	return msgs, bodies, nil
}

// Handle answers one invocation: it counts every message's events, sends the counts to the hub as
// one unit per message and returns the messages that SQS must deliver again. It returns an error
// (wrapping ErrInvalidEvent) only when the event is not an SQS batch; the whole batch then fails.
func (h *Handler) Handle(ctx context.Context, event []byte) (Response, error) {
	start := time.Now()
	msgs, bodies, err := parseEvent(event)
	if err != nil {
		return Response{}, err
	}
	ctx, cancel := h.bound(ctx)
	defer cancel()

	var st invocationStats
	c := counting.New(h.cat, counting.Options{})
	var units []*message
	for i, m := range msgs {
		h.read(c, m, bodies[i], &st)
		if m.err == nil && len(m.counts) > 0 {
			units = append(units, m)
		}
	}

	var runErr error
	stats := &agent.Stats{}
	if len(units) > 0 {
		runErr = h.send(ctx, units, stats)
	}
	resp := outcome(msgs, runErr)

	attrs := []any{
		"messages", len(msgs), "events", st.events, "matched", st.matched, "counts", st.counts,
		"units", len(units), "batches_accepted", stats.Accepted.Load(), "batches_rejected", stats.Rejected.Load(),
		"failures", len(resp.BatchItemFailures), "duration", time.Since(start).Round(time.Millisecond),
	}
	if len(st.rejected) > 0 {
		attrs = append(attrs, "events_rejected", st.rejected)
	}
	switch {
	case runErr != nil:
		h.log.Error("counts not acknowledged before the deadline; every message of the batch is returned to the queue",
			append(attrs, "err", runErr)...)
	case stats.Rejected.Load() > 0:
		// A rejection is permanent: the same counts would be rejected again. Their messages succeed.
		h.log.Error("the hub rejected batches; their messages are not retried",
			append(attrs, "last_error", stats.LastError())...)
	default:
		h.log.Info("batch handled", attrs...)
	}
	return resp, nil
}

// bound gives the invocation's work its deadline: the Lambda deadline minus the margin.
func (h *Handler) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		timeout := h.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		return context.WithTimeout(ctx, timeout)
	}
	margin := h.Margin
	if margin <= 0 {
		margin = DefaultMargin
	}
	margin = min(margin, time.Until(dl)/10)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// read decodes and counts one message's body. c is drained, so it holds nothing afterwards.
func (h *Handler) read(c *counting.Counter, m *message, body string, st *invocationStats) {
	var events, matched int64
	var rejected map[string]int64
	rej := func(reason string) {
		if rejected == nil {
			rejected = map[string]int64{}
		}
		rejected[reason]++
		st.reject(reason)
	}
	var skipped int64 // plain CloudTrail records of unmonitored APIs, skipped undecoded
	err := cloudtrail.Decode(strings.NewReader(body), replay.DecodeOptions(h.cat, &skipped), func(ev *cloudtrail.Event) error {
		events++
		ok, reason := replay.Add(c, h.cat, ev)
		if reason != "" {
			rej(reason)
		}
		if ok {
			matched++
		}
		return nil
	}, func(r cloudtrail.Rejection) {
		rej(string(r.Reason))
		h.log.Debug("event rejected", "message_id", m.id, "reason", r.Reason, "detail", r.Detail)
	})
	counts := c.Drain() // always, so that a failed read leaves nothing behind for the next message
	events += skipped
	st.events += events
	if err != nil {
		m.err = fmt.Errorf("message %s: read body: %w", m.id, err)
		h.log.Error("message body unreadable; it is returned to the queue", "message_id", m.id, "err", err)
		return
	}
	st.matched += matched
	st.counts += int64(len(counts))
	m.counts = counts
	if len(rejected) > 0 {
		h.log.Warn("message has events that cannot be used; they are dropped, not retried",
			"message_id", m.id, "events", events, "matched", matched, "rejected", rejected)
	}
}

// send runs an agent over the messages' units until every batch is settled or ctx ends.
func (h *Handler) send(ctx context.Context, units []*message, stats *agent.Stats) error {
	a, err := agent.New(h.cfg, agent.Settings{Logger: h.baseLog, Catalog: h.cat, Stats: stats})
	if err != nil {
		return fmt.Errorf("lambda: %w", err)
	}
	src := &source{units: units}
	if err := a.Run(ctx, src); err != nil {
		return fmt.Errorf("lambda: %w", err)
	}
	// Run also returns nil when ctx ended before the source emitted everything and nothing was
	// outstanding then: units never emitted were never sent.
	if src.emitted != len(units) {
		return fmt.Errorf("lambda: %d of %d units emitted before the deadline: %w", src.emitted, len(units), context.Cause(ctx))
	}
	return nil
}

// outcome is the partial batch response: unreadable messages fail, and every message fails when the
// agent did not get every batch settled (runErr != nil).
func outcome(msgs []*message, runErr error) Response {
	resp := Response{BatchItemFailures: []ItemFailure{}}
	for _, m := range msgs {
		if runErr != nil || m.err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, ItemFailure{ItemIdentifier: m.id})
		}
	}
	return resp
}

// source emits one unit per message, in order. agent.Run calls Run in its caller's goroutine and
// returns after it, so emitted is read safely once agent.Run returned.
type source struct {
	units   []*message
	emitted int
}

// Run implements agent.Source.
func (s *source) Run(ctx context.Context, skip func(string) bool, emit func(context.Context, string, []counting.Count) error) error {
	for _, m := range s.units {
		if !skip(m.unit()) {
			if err := emit(ctx, m.unit(), m.counts); err != nil {
				return fmt.Errorf("unit %s: %w", m.unit(), err)
			}
		}
		s.emitted++
	}
	return nil
}
