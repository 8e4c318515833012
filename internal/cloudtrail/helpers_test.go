package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

type decodeFunc func(io.Reader, Options, func(*Event) error, func(Rejection)) error

type result struct {
	events     []*Event
	rejections []Rejection
	err        error
}

func (r result) reasons() []Reason {
	var out []Reason
	for _, rej := range r.rejections {
		out = append(out, rej.Reason)
	}
	return out
}

// decodeAll runs fn and checks the invariants that hold for every input.
func decodeAll(tb testing.TB, fn decodeFunc, r io.Reader, opts Options) result {
	tb.Helper()
	var res result
	res.err = fn(r, opts, func(e *Event) error {
		res.events = append(res.events, e)
		return nil
	}, func(rej Rejection) {
		res.rejections = append(res.rejections, rej)
	})
	if err := checkResult(res); err != nil {
		tb.Error(err)
	}
	return res
}

// checkResult checks what every decode must give, whatever the input: usable events and
// well-formed rejections.
func checkResult(res result) error {
	for _, e := range res.events {
		if err := checkEvent(e); err != nil {
			return err
		}
	}
	known := map[Reason]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	for _, r := range res.rejections {
		switch {
		case !known[r.Reason]:
			return fmt.Errorf("rejection with unknown reason %q: %+v", r.Reason, r)
		case r.Index < -1:
			return fmt.Errorf("rejection with index %d: %+v", r.Index, r)
		case len(r.Detail) > maxDetail || !utf8.ValidString(r.Detail) || r.Detail == "":
			return fmt.Errorf("rejection detail of %d bytes (empty, too long or not UTF-8): %q", len(r.Detail), r.Detail)
		}
	}
	return nil
}

// checkEvent checks that an emitted event is usable for counting.
func checkEvent(e *Event) error {
	switch {
	case e == nil:
		return fmt.Errorf("nil event emitted")
	case e.EventSource == "" || e.EventName == "":
		return fmt.Errorf("event without eventSource or eventName: %+v", e)
	case !isAccountID(e.RecipientAccountID):
		return fmt.Errorf("event with account %q", e.RecipientAccountID)
	case e.EventTime.IsZero() || e.EventTime.Location().String() != "UTC":
		return fmt.Errorf("event time %v is zero or not UTC", e.EventTime)
	case e.RequestParameters != nil && !json.Valid(e.RequestParameters):
		return fmt.Errorf("requestParameters not valid JSON: %q", e.RequestParameters)
	}
	return nil
}

func gz(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func b64gz(tb testing.TB, b []byte) string {
	return base64.StdEncoding.EncodeToString(gz(tb, b))
}

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// event returns the JSON of a valid CloudTrail event changed by set: a nil value deletes a field.
func event(tb testing.TB, set map[string]any) string {
	tb.Helper()
	e := map[string]any{
		"eventVersion": "1.08",
		"userIdentity": map[string]any{
			"type": "AssumedRole", "principalId": "AROAEXAMPLE:bob",
			"arn":         "arn:aws:sts::123456789012:assumed-role/Dev/bob",
			"accountId":   "123456789012",
			"accessKeyId": "ASIAEXAMPLE",
			"sessionContext": map[string]any{
				"sessionIssuer": map[string]any{"type": "Role", "arn": "arn:aws:iam::123456789012:role/Dev"},
			},
		},
		"eventTime":          "2024-03-04T05:06:07Z",
		"eventSource":        "ec2.amazonaws.com",
		"eventName":          "CreateVolume",
		"awsRegion":          "eu-west-1",
		"sourceIPAddress":    "203.0.113.9",
		"userAgent":          "aws-sdk-go/1.0",
		"requestParameters":  map[string]any{"size": 500, "volumeType": "gp3"},
		"responseElements":   nil,
		"eventID":            "e-1",
		"readOnly":           false,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": "123456789012",
	}
	for k, v := range set {
		if v == nil {
			delete(e, k)
		} else {
			e[k] = v
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// eventBridge wraps a CloudTrail event JSON in an EventBridge event.
func eventBridge(detailType, account, detail string) string {
	return fmt.Sprintf(`{"version":"0","id":"x","detail-type":%q,"source":"aws.ec2","account":%q,"time":"2024-03-04T05:06:07Z","region":"eu-west-1","resources":[],"detail":%s}`,
		detailType, account, detail)
}

// sqsEvent wraps bodies in an SQS Lambda event.
func sqsEvent(bodies ...string) string {
	recs := make([]map[string]any, len(bodies))
	for i, b := range bodies {
		recs[i] = map[string]any{"messageId": fmt.Sprint(i), "body": b, "eventSource": "aws:sqs", "awsRegion": "eu-west-1"}
	}
	b, _ := json.Marshal(map[string]any{"Records": recs})
	return string(b)
}

// cwlDocument builds a decompressed CloudWatch Logs DATA_MESSAGE document holding messages.
func cwlDocument(messages ...string) string {
	evs := make([]map[string]any, len(messages))
	for i, m := range messages {
		evs[i] = map[string]any{"id": fmt.Sprint(i), "timestamp": 1709528767000, "message": m}
	}
	b, _ := json.Marshal(map[string]any{"messageType": "DATA_MESSAGE", "owner": "123456789012",
		"logGroup": "trail", "logStream": "s", "subscriptionFilters": []string{"f"}, "logEvents": evs})
	return string(b)
}

func awslogs(data string) string {
	return fmt.Sprintf(`{"awslogs":{"data":%q}}`, data)
}
