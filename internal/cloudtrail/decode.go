package cloudtrail

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Reason says why an event or an input was rejected. The values are stable metric labels.
type Reason string

// Reasons of rejections.
const (
	ReasonMalformedJSON Reason = "malformed_json" // not valid JSON
	ReasonNotObject     Reason = "not_an_object"  // a record that is not a JSON object
	ReasonNotCloudTrail Reason = "not_cloudtrail" // valid JSON but not a CloudTrail event or envelope
	ReasonMissingField  Reason = "missing_field"  // eventTime, eventSource, eventName or account missing (or an envelope's detail, body, message, data)
	ReasonWrongType     Reason = "wrong_type"     // a used field has the wrong JSON type
	ReasonBadTime       Reason = "bad_time"       // eventTime is not RFC 3339
	ReasonBadAccount    Reason = "bad_account"    // the account id is not 12 digits
	ReasonTooLarge      Reason = "too_large"      // an event or the input is over its size limit
	ReasonBadGzip       Reason = "bad_gzip"       // corrupt or truncated gzip data
	ReasonBadBase64     Reason = "bad_base64"     // corrupt base64 text (CloudWatch Logs payloads)
)

// Reasons lists every Reason, for callers that pre-create metric series.
var Reasons = []Reason{
	ReasonMalformedJSON, ReasonNotObject, ReasonNotCloudTrail, ReasonMissingField, ReasonWrongType,
	ReasonBadTime, ReasonBadAccount, ReasonTooLarge, ReasonBadGzip, ReasonBadBase64,
}

// Rejection reports one event, or one whole input, that could not be used.
type Rejection struct {
	Reason Reason
	// Index is the position of the event in its input: the n-th record met, counting the elements of
	// arrays, Records and logEvents and the top-level objects of NDJSON alike. It is -1 when the
	// rejection is about the whole input (bad gzip or base64, input too large, not a CloudWatch Logs
	// payload).
	Index int
	// Detail is a short human text (at most maxDetail bytes), never the payload itself.
	Detail string
}

func (r Rejection) Error() string {
	if r.Index < 0 {
		return fmt.Sprintf("cloudtrail: input rejected (%s): %s", r.Reason, r.Detail)
	}
	return fmt.Sprintf("cloudtrail: event %d rejected (%s): %s", r.Index, r.Reason, r.Detail)
}

// Options bound the work done on one input.
type Options struct {
	// MaxEventBytes is the largest JSON text of one event (or envelope) accepted; 1 MiB when 0.
	MaxEventBytes int
	// MaxInputBytes is the most data read from one input after decompression; 1 GiB when 0.
	MaxInputBytes int64
	// Want, when set, lets a reader that only needs some APIs skip the others cheaply: a plain
	// CloudTrail record whose top-level eventSource and eventName Want refuses is neither decoded
	// nor emitted, only counted in Skipped. Records whose two fields cannot be told from the raw
	// bytes, envelopes (EventBridge, SQS) and everything Want accepts are decoded as usual.
	Want func(eventSource, eventName string) bool
	// Skipped, when set, is increased once for every record Want skipped.
	Skipped *int64
}

const (
	defaultMaxEventBytes = 1 << 20
	defaultMaxInputBytes = 1 << 30
	maxDetail            = 200
)

// Decode reads one input in any supported shape, gzip or plain (told by its magic bytes), and calls
// emit for every usable event and reject for every unusable one. It returns an error only when
// reading r fails or emit returns an error (wrapped). It never panics on any input.
//
// Shapes, found by looking at the data:
//   - CloudTrail S3 log files {"Records":[...]} and SQS Lambda events {"Records":[{"eventSource":
//     "aws:sqs","body":"<json>"}]}, whose bodies are EventBridge events or CloudTrail events;
//   - a JSON array of events or of EventBridge events;
//   - objects one after another: NDJSON, concatenated or pretty-printed, or a single object;
//   - EventBridge events with detail-type "AWS API Call via CloudTrail" (others are rejected as
//     not_cloudtrail);
//   - CloudWatch Logs subscription payloads, in every form DecodeCloudWatchLogs accepts, except raw
//     base64 text, which Decode accepts only when it starts like gzip ("H4sI").
//
// The S3 Records array, arrays and logEvents are streamed: memory stays about MaxEventBytes whatever
// the size of the input.
func Decode(r io.Reader, opts Options, emit func(*Event) error, reject func(Rejection)) error {
	return run(r, opts, modeAny, emit, reject)
}

// DecodeCloudWatchLogs decodes a CloudWatch Logs subscription payload: the Lambda event
// {"awslogs":{"data":"<base64 gzip>"}}, the base64 text alone (bare or as a JSON string), the gzip
// data, or the decompressed {"messageType":"DATA_MESSAGE","logEvents":[{"message":"<event>"}...]}
// document. Each log event's message is decoded as a CloudTrail event (or EventBridge event).
//
// Control messages (messageType CONTROL_MESSAGE, sent when a subscription is created or checked)
// are skipped without a rejection: they are not bad input, and counting them would make the
// rejection metrics noisy. Any other shape is rejected as not_cloudtrail.
func DecodeCloudWatchLogs(r io.Reader, opts Options, emit func(*Event) error, reject func(Rejection)) error {
	return run(r, opts, modeCWL, emit, reject)
}

// mode is what a stream may hold.
type mode int

const (
	modeAny mode = iota // anything Decode accepts
	modeCWL             // a CloudWatch Logs payload in any form
	modeDoc             // decoded CloudWatch Logs data: a DATA_MESSAGE or CONTROL_MESSAGE document
)

// errStop ends decoding; decoder.fatal holds the error to return. errBroken ends the current
// value after a rejection was reported; the stream goes on at the next line.
var (
	errStop   = errors.New("stop")
	errBroken = errors.New("broken")
)

const apiCallDetailType = "AWS API Call via CloudTrail"

type decoder struct {
	opts   Options
	src    *source
	emit   func(*Event) error
	reject func(Rejection)
	n      int   // records met so far
	fatal  error // the error Decode returns
}

func run(r io.Reader, opts Options, m mode, emit func(*Event) error, reject func(Rejection)) error {
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = defaultMaxEventBytes
	}
	if opts.MaxInputBytes <= 0 {
		opts.MaxInputBytes = defaultMaxInputBytes
	}
	if emit == nil {
		emit = func(*Event) error { return nil }
	}
	if reject == nil {
		reject = func(Rejection) {}
	}
	d := &decoder{opts: opts, src: &source{r: r}, emit: emit, reject: reject}
	d.input(d.src, m)
	return d.fatal
}

func (d *decoder) next() int {
	d.n++
	return d.n - 1
}

func (d *decoder) rejectf(reason Reason, idx int, format string, args ...any) {
	d.reject(Rejection{Reason: reason, Index: idx, Detail: clip(fmt.Sprintf(format, args...), maxDetail)})
}

// fail handles an error that ends the current input. It returns errStop when decoding must stop,
// an outerError's error when the enclosing stream failed, and nil once it rejected the input.
func (d *decoder) fail(err error) error {
	var oe *outerError
	var ie *inputError
	switch {
	case d.fatal != nil || err == errStop:
		return errStop
	case d.src.err != nil:
		d.fatal = fmt.Errorf("cloudtrail: read input: %w", d.src.err)
		return errStop
	case errors.As(err, &oe):
		return oe
	case errors.As(err, &ie):
		d.rejectf(ie.reason, -1, "%v", ie.err)
	case err == errTruncated || err == errSyntax:
		d.rejectf(ReasonMalformedJSON, -1, "%v", err)
	default: // a reader failed without passing through source: treat it as a failure to read
		d.fatal = fmt.Errorf("cloudtrail: read input: %w", err)
		return errStop
	}
	return nil
}

// broken rejects the record at idx as malformed when err means the JSON outline is lost and
// returns errBroken; it returns any other error unchanged.
func (d *decoder) broken(err error, idx int) error {
	if err != errSyntax && err != errTruncated {
		return err
	}
	d.rejectf(ReasonMalformedJSON, idx, "%v", err)
	return errBroken
}

// input decodes one stream, gzip or plain, holding data of mode m.
func (d *decoder) input(r io.Reader, m mode) error {
	br := bufio.NewReaderSize(r, readChunk)
	var plain io.Reader = br
	head, err := br.Peek(2)
	if err != nil && err != io.EOF {
		return d.fail(err)
	}
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return d.fail(tag(err, ReasonBadGzip))
		}
		plain = tagReader{r: zr, reason: ReasonBadGzip}
	}
	s := newScanner(&limitReader{r: plain, left: d.opts.MaxInputBytes, limit: d.opts.MaxInputBytes}, d.opts.MaxEventBytes)
	s.skipBOM()
	for {
		c, err := s.peek()
		if err == io.EOF {
			return nil
		}
		if err == nil {
			err = d.top(s, m, c)
		}
		if err == errBroken {
			err = s.skipToLine()
		}
		if err != nil {
			return d.fail(err)
		}
	}
}

// top decodes the top-level value that starts with c.
func (d *decoder) top(s *scanner, m mode, c byte) error {
	switch {
	case c == '{':
		return d.object(s, m)
	case c == '[' && m == modeAny:
		return d.array(s, d.record)
	case c == '"' && m != modeDoc:
		s.pos++
		return d.base64(s, &stringReader{s: s})
	case m == modeCWL && c != '[' || m == modeAny && s.hasPrefix("H4sI"):
		return d.base64(s, rawReader{s})
	}
	idx := -1 // outside modeAny, a value that is not an object is a bad whole input
	if m == modeAny {
		idx = d.next()
	}
	raw, err := s.readValue()
	if err == errTooLarge {
		d.rejectf(ReasonTooLarge, idx, "value over %d bytes", s.max)
		return nil
	}
	if err != nil {
		return d.broken(err, idx)
	}
	if err := validate(raw); err != nil {
		d.rejectf(ReasonMalformedJSON, idx, "%v", err)
		return errBroken
	}
	if m != modeAny {
		d.rejectf(ReasonNotCloudTrail, -1, "a JSON %s is not a CloudWatch Logs payload", kindOf(raw))
		return nil
	}
	return d.record(raw, idx)
}

// object decodes a top-level object. It streams the arrays of S3 files and SQS events (Records)
// and of CloudWatch Logs documents (logEvents), and the base64 data of CloudWatch Logs Lambda
// events (awslogs.data). Any other object is kept whole (up to MaxEventBytes) and decoded as one
// record.
func (d *decoder) object(s *scanner, m mode) error {
	start := s.pos
	s.mark = start
	s.pos++ // '{'
	streamed, control := false, false
	brk := func(err error) error {
		if s.mark == start { // step back, so that the next line can be read
			s.pos = start + 1
		}
		s.mark = -1
		if streamed {
			return d.broken(err, -1)
		}
		return d.broken(err, d.next())
	}
	for first := true; ; first = false {
		c, err := s.want()
		if err != nil {
			return brk(err)
		}
		if c == '}' {
			s.pos++
			break
		}
		if !first {
			if c != ',' {
				return brk(errSyntax)
			}
			s.pos++
		}
		k, err := s.key()
		if err == nil {
			c, err = s.want()
		}
		if err != nil {
			return brk(err)
		}
		switch {
		case k == "Records" && c == '[' && m == modeAny:
			s.mark, streamed = -1, true
			err = d.array(s, d.record)
		case k == "logEvents" && c == '[':
			s.mark, streamed = -1, true
			err = d.array(s, func(raw []byte, idx int) error { return d.logEvent(raw, idx, control) })
		case k == "awslogs" && c == '{' && m != modeDoc:
			s.mark, streamed = -1, true
			err = d.awslogs(s)
		case k == "messageType" && c == '"':
			var raw []byte
			if raw, err = s.readValue(); err == nil {
				control = string(raw) == `"CONTROL_MESSAGE"`
			}
		default:
			err = s.skipValue()
		}
		if err == errTooLarge {
			err = nil // over the limit: the mark is gone, see below
		}
		if err == errBroken || err == errStop {
			return err
		}
		if err != nil {
			return brk(err)
		}
	}
	switch {
	case streamed:
		return nil
	case s.mark < 0:
		d.rejectf(ReasonTooLarge, d.next(), "object over %d bytes", s.max)
		return nil
	case m != modeAny:
		s.mark = -1
		d.rejectf(ReasonNotCloudTrail, -1, "an object without awslogs or logEvents is not a CloudWatch Logs payload")
		return nil
	}
	raw := s.buf[start-s.base : s.pos-s.base]
	s.mark = -1
	return d.record(raw, d.next())
}

// array streams the elements of the array at s to elem, with their record index.
func (d *decoder) array(s *scanner, elem func(raw []byte, idx int) error) error {
	s.pos++ // '['
	c, err := s.want()
	if err != nil {
		return d.broken(err, d.n)
	}
	if c == ']' {
		s.pos++
		return nil
	}
	for {
		idx := d.next()
		s.lenient = true
		raw, err := s.readValue()
		s.lenient = false
		switch {
		case err == errTooLarge:
			d.rejectf(ReasonTooLarge, idx, "event over %d bytes", s.max)
		case err != nil:
			return d.broken(err, idx)
		default:
			if err := elem(raw, idx); err != nil {
				return err
			}
		}
		c, err := s.want()
		if err != nil {
			return d.broken(err, d.next())
		}
		s.pos++
		switch c {
		case ']':
			return nil
		case ',':
		default:
			return d.broken(errSyntax, d.next())
		}
	}
}

// awslogs decodes the value of "awslogs" in a CloudWatch Logs Lambda event: {"data":"<base64>"}.
func (d *decoder) awslogs(s *scanner) error {
	s.pos++ // '{'
	data := false
	for first := true; ; first = false {
		c, err := s.want()
		if err != nil {
			return err
		}
		if c == '}' {
			s.pos++
			break
		}
		if !first {
			if c != ',' {
				return errSyntax
			}
			s.pos++
		}
		k, err := s.key()
		if err == nil {
			c, err = s.want()
		}
		if err != nil {
			return err
		}
		if k == "data" && c == '"' {
			data = true
			s.pos++
			err = d.base64(s, &stringReader{s: s})
		} else {
			err = s.skipValue()
		}
		if err != nil {
			return err
		}
	}
	if !data {
		d.rejectf(ReasonMissingField, -1, "awslogs has no data string")
	}
	return nil
}

// base64 decodes the base64 text that r reads from s as a nested input (gzip data, normally) holding
// a CloudWatch Logs document. It then reads r to its end, so that s can go on after it.
func (d *decoder) base64(s *scanner, r io.Reader) error {
	s.mark = -1
	err := d.input(tagReader{r: base64.NewDecoder(base64.StdEncoding, r), reason: ReasonBadBase64}, modeDoc)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	var oe *outerError
	if errors.As(err, &oe) {
		return oe.err
	}
	return err
}

// clip shortens s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
