package cloudtrail

import (
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
