package cloudtrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// wireEvent is the JSON form of an Event: Event's own fields, plus the JSON fields that Event's
// derived fields come from. Its EventTime and UserIdentity shadow those of the embedded Event.
type wireEvent struct {
	Event
	EventTime    string       `json:"eventTime"`
	UserIdentity wireIdentity `json:"userIdentity"`
}

type wireIdentity struct {
	UserIdentity
	SessionContext struct {
		SessionIssuer struct {
			ARN string `json:"arn"`
		} `json:"sessionIssuer"`
	} `json:"sessionContext"`
}

// wireRecord is whatever is found where an event is expected: a CloudTrail event, an EventBridge
// event (detail-type, account, detail) or an SQS message of a Lambda event (eventSource "aws:sqs",
// body).
type wireRecord struct {
	wireEvent
	DetailType *string         `json:"detail-type"`
	Account    string          `json:"account"`
	Detail     json.RawMessage `json:"detail"`
	Body       *string         `json:"body"`
}

// record decodes one record and emits or rejects it. It returns errStop when emit failed.
func (d *decoder) record(raw []byte, idx int) error {
	if d.opts.Want != nil && skippable(raw, d.opts.Want) {
		if d.opts.Skipped != nil {
			*d.opts.Skipped++
		}
		return nil
	}
	var w wireRecord
	if reason, detail := decodeObject(raw, &w); reason != "" {
		d.rejectf(reason, idx, "%s", detail)
		return nil
	}
	switch {
	case w.DetailType != nil:
		return d.eventBridge(&w, idx)
	case w.EventSource == "aws:sqs":
		return d.sqsMessage(&w, idx)
	}
	return d.event(&w.wireEvent, "", idx)
}

func (d *decoder) sqsMessage(w *wireRecord, idx int) error {
	if w.Body == nil {
		d.rejectf(ReasonMissingField, idx, "SQS message without body")
		return nil
	}
	var inner wireRecord
	if reason, detail := decodeObject([]byte(*w.Body), &inner); reason != "" {
		d.rejectf(reason, idx, "SQS body: %s", detail)
		return nil
	}
	if inner.DetailType != nil {
		return d.eventBridge(&inner, idx)
	}
	return d.event(&inner.wireEvent, "", idx) // an event sent to SQS as is
}

func (d *decoder) eventBridge(w *wireRecord, idx int) error {
	if *w.DetailType != apiCallDetailType {
		d.rejectf(ReasonNotCloudTrail, idx, "EventBridge detail-type %s", quote(*w.DetailType))
		return nil
	}
	if len(w.Detail) == 0 || string(w.Detail) == "null" {
		d.rejectf(ReasonMissingField, idx, "EventBridge event without detail")
		return nil
	}
	var e wireEvent
	reason, detail := decodeObject(w.Detail, &e)
	if reason == ReasonNotObject {
		reason = ReasonWrongType
	}
	if reason != "" {
		d.rejectf(reason, idx, "detail: %s", detail)
		return nil
	}
	return d.event(&e, w.Account, idx)
}

// event checks a CloudTrail event and emits it. account is the EventBridge envelope's account,
// used when the event has no recipientAccountId.
func (d *decoder) event(w *wireEvent, account string, idx int) error {
	ev := w.Event
	if w.EventTime == "" && ev.EventSource == "" && ev.EventName == "" {
		d.rejectf(ReasonNotCloudTrail, idx, "no eventTime, eventSource or eventName")
		return nil
	}
	if strings.HasPrefix(ev.EventSource, "aws:") { // a Lambda event source record (aws:s3, aws:sns...)
		d.rejectf(ReasonNotCloudTrail, idx, "eventSource %s is not a CloudTrail event source", quote(ev.EventSource))
		return nil
	}
	if ev.RecipientAccountID != "" {
		account = ev.RecipientAccountID
	}
	var missing []string
	for _, f := range [...]struct{ name, value string }{
		{"eventTime", w.EventTime}, {"eventSource", ev.EventSource}, {"eventName", ev.EventName},
		{"recipientAccountId", account},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		d.rejectf(ReasonMissingField, idx, "no %s", strings.Join(missing, ", "))
		return nil
	}
	t, err := time.Parse(time.RFC3339, w.EventTime)
	if err != nil || t.IsZero() {
		d.rejectf(ReasonBadTime, idx, "eventTime %s is not an RFC 3339 time", quote(w.EventTime))
		return nil
	}
	if !isAccountID(account) {
		d.rejectf(ReasonBadAccount, idx, "account id %s is not 12 digits", quote(account))
		return nil
	}
	ev.EventTime = t.UTC()
	ev.RecipientAccountID = account
	ev.UserIdentity = w.UserIdentity.UserIdentity
	ev.UserIdentity.IssuerARN = w.UserIdentity.SessionContext.SessionIssuer.ARN
	if string(ev.RequestParameters) == "null" {
		ev.RequestParameters = nil
	}
	if err := d.emit(&ev); err != nil {
		d.fatal = fmt.Errorf("cloudtrail: emit: %w", err)
		return errStop
	}
	return nil
}

// logEvent decodes one element of a CloudWatch Logs logEvents array: {"id","timestamp","message"}.
func (d *decoder) logEvent(raw []byte, idx int, control bool) error {
	var le struct {
		Message *string `json:"message"`
	}
	if reason, detail := decodeObject(raw, &le); reason != "" {
		d.rejectf(reason, idx, "log event: %s", detail)
		return nil
	}
	if le.Message == nil {
		d.rejectf(ReasonMissingField, idx, "log event without message")
		return nil
	}
	if control || strings.HasPrefix(*le.Message, "CWL CONTROL MESSAGE") {
		return nil
	}
	return d.record([]byte(*le.Message), idx)
}

// decodeObject decodes the JSON object raw into v. On failure it returns the reason and a detail.
func decodeObject(raw []byte, v any) (Reason, string) {
	if kind := kindOf(raw); kind != "object" {
		if err := validate(raw); err != nil {
			return ReasonMalformedJSON, err.Error()
		}
		return ReasonNotObject, "a JSON " + kind + ", not an object"
	}
	err := json.Unmarshal(raw, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &te):
		return ReasonWrongType, fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type))
	}
	return ReasonMalformedJSON, err.Error()
}

// validate returns the syntax error of raw, if any.
func validate(raw []byte) error {
	var v json.RawMessage
	return json.Unmarshal(raw, &v)
}

// kindOf names the kind of JSON value raw starts with.
func kindOf(raw []byte) string {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return "object"
		case '[':
			return "array"
		case '"':
			return "string"
		case 't', 'f':
			return "boolean"
		case 'n':
			return "null"
		}
		return "number"
	}
	return "nothing"
}

// jsonKind names the JSON kind that a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quote quotes a value taken from the input for a Detail, shortened to a few dozen bytes.
func quote(v string) string {
	return strconv.Quote(clip(v, 48))
}

var (
	keySource     = []byte(`"eventSource"`)
	keyName       = []byte(`"eventName"`)
	keyDetailType = []byte(`"detail-type"`)
)

// skippable tells, from the raw bytes alone, that a record is a plain CloudTrail event that want
// refuses. It looks only at the record's top level: it walks the object's keys, skipping nested
// values without decoding them, so a nested "eventSource" cannot fool it. Anything unusual (an
// envelope, escapes in the values, a malformed record) returns false and is decoded as usual.
func skippable(raw []byte, want func(string, string) bool) bool {
	if !bytes.Contains(raw, keySource) || bytes.Contains(raw, keyDetailType) {
		return false
	}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i++
	var source, name string
	var haveSource, haveName bool
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		kEnd := stringEnd(raw, i)
		if kEnd < 0 {
			return false
		}
		key := raw[i:kEnd]
		i = skipSpace(raw, kEnd)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipSpace(raw, i+1)
		vEnd := valueEnd(raw, i)
		if vEnd < 0 {
			return false
		}
		// encoding/json matches keys without regard to case: so does this.
		isSource, isName := bytes.EqualFold(key, keySource), bytes.EqualFold(key, keyName)
		if isSource || isName {
			v := raw[i:vEnd]
			if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
				return false
			}
			// A repeated key is decoded last-wins: leave such records to the decoder.
			if (isSource && haveSource) || (isName && haveName) {
				return false
			}
			if isSource {
				source, haveSource = string(v[1:len(v)-1]), true
			} else {
				name, haveName = string(v[1:len(v)-1]), true
			}
		}
		i = skipSpace(raw, vEnd)
		if i >= len(raw) {
			return false
		}
		if raw[i] == '}' {
			// The whole top level was read: both fields once each, or nothing to go on.
			return haveSource && haveName && source != "aws:sqs" && !want(source, name)
		}
		if raw[i] != ',' {
			return false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i] ('"'), or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the JSON value starting at b[i], or -1. Nested objects and
// arrays are skipped by depth, strings by their quotes; scalars end at a delimiter.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
