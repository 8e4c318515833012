package cloudtrail

import (
	"bytes"
	"testing"
)

func wantRunInstances(source, name string) bool {
	return source == "ec2.amazonaws.com" && name == "RunInstances"
}

func TestSkippable(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		skip bool
	}{
		{"unwanted event", `{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject","recipientAccountId":"123456789012"}`, true},
		{"wanted event", `{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}`, false},
		{"order does not matter", `{"eventName":"GetObject", "eventSource" : "s3.amazonaws.com"}`, true},
		{"nested eventSource does not fool it", `{"requestParameters":{"eventSource":"s3.amazonaws.com","eventName":"GetObject"},"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}`, false},
		{"nested only", `{"requestParameters":{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}}`, false},
		{"escapes are decoded fully", `{"eventSource":"s3.amazonaws\u002ecom","eventName":"GetObject"}`, false},
		{"eventbridge envelope", `{"detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}}`, false},
		{"sqs message", `{"eventSource":"aws:sqs","eventName":"x","body":"{}"}`, false},
		{"wrong type", `{"eventSource":5,"eventName":"GetObject"}`, false},
		{"truncated", `{"eventSource":"s3.amazonaws.com","eventName":"Get`, false},
		{"not an object", `["eventSource"]`, false},
		{"repeated key is last-wins", `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}`, false},
		{"keys match without case, as encoding/json does", `{"eventSource":"s3.amazonaws.com","eventName":"GetObject","EVENTSOURCE":"ec2.amazonaws.com","EventName":"RunInstances"}`, false},
		{"arrays and strings with brackets", `{"a":["}",{"b":"]"}],"eventSource":"s3.amazonaws.com","x":true,"eventName":"PutObject"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := skippable([]byte(tc.raw), wantRunInstances); got != tc.skip {
				t.Errorf("skippable = %v, want %v", got, tc.skip)
			}
		})
	}
}

// Decoding with Want emits exactly the wanted events that decoding without it emits, and counts
// the rest as skipped.
func TestWantMatchesFullDecode(t *testing.T) {
	input := `{"Records":[
{"eventVersion":"1.08","eventTime":"2026-11-02T10:00:01Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"123456789012"},
{"eventVersion":"1.08","eventTime":"2026-11-02T10:00:02Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"123456789012"},
{"eventVersion":"1.08","eventTime":"2026-11-02T10:00:03Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1"},
{"eventTime":"bad","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","recipientAccountId":"123456789012"}
]}`
	var full, filtered []string
	var rejFull, rejFiltered int
	_ = Decode(bytes.NewReader([]byte(input)), Options{}, func(e *Event) error {
		if wantRunInstances(e.EventSource, e.EventName) {
			full = append(full, e.EventTime.String())
		}
		return nil
	}, func(Rejection) { rejFull++ })
	var skipped int64
	_ = Decode(bytes.NewReader([]byte(input)), Options{Want: wantRunInstances, Skipped: &skipped}, func(e *Event) error {
		filtered = append(filtered, e.EventTime.String())
		return nil
	}, func(Rejection) { rejFiltered++ })
	if len(full) != 1 || len(filtered) != 1 || full[0] != filtered[0] {
		t.Fatalf("full %v filtered %v", full, filtered)
	}
	if skipped != 2 || rejFull != 2 || rejFiltered != 1 {
		t.Fatalf("skipped %d, rejections full %d filtered %d", skipped, rejFull, rejFiltered)
	}
}

// FuzzSkippable: skipping never drops an event that Want accepts, and never panics.
func FuzzSkippable(f *testing.F) {
	f.Add([]byte(`{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventTime":"2026-11-02T10:00:00Z","recipientAccountId":"123456789012"}`))
	f.Add([]byte(`{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}`))
	f.Add([]byte(`{"a":{"eventSource":"x"},"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}`))
	f.Add([]byte(`{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventTime":"2026-11-02T10:00:00Z","recipientAccountId":"123456789012"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !skippable(raw, wantRunInstances) {
			return
		}
		_ = Decode(bytes.NewReader(raw), Options{}, func(e *Event) error {
			if wantRunInstances(e.EventSource, e.EventName) {
				t.Fatalf("skipped a wanted event: %s", raw)
			}
			return nil
		}, nil)
	})
}
