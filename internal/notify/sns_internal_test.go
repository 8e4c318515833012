package notify

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// With Text, email subscribers get it and every other protocol the JSON (MessageStructure json).
func TestSNSInputPerProtocol(t *testing.T) {
	s := &SNS{topicARN: "arn:aws:sns:us-east-1:123456789012:t"}
	for _, tc := range []struct {
		name      string
		m         Message
		structure string
		message   string
		attrs     []string
	}{
		{
			name:    "json only",
			m:       Message{JSON: []byte(`{"a":1}`), AccountID: "111111111111", API: "x:Y", Severity: "low"},
			message: `{"a":1}`,
			attrs:   []string{AttrAccountID, AttrAPI, AttrSeverity},
		},
		{
			name:      "with text and entity",
			m:         Message{JSON: []byte(`{"a":1}`), Text: "readable", AccountID: "111111111111", Entity: "fn"},
			structure: "json",
			message:   `{"default":"{\"a\":1}","email":"readable"}`,
			attrs:     []string{AttrAccountID, AttrEntity},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := s.input(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(in.MessageStructure); got != tc.structure {
				t.Errorf("structure %q, want %q", got, tc.structure)
			}
			var got, want any
			if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(tc.message), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("message %s, want %s", aws.ToString(in.Message), tc.message)
			}
			if len(in.MessageAttributes) != len(tc.attrs) {
				t.Errorf("attributes %v, want %v", in.MessageAttributes, tc.attrs)
			}
			for _, a := range tc.attrs {
				if _, ok := in.MessageAttributes[a]; !ok {
					t.Errorf("attribute %s missing", a)
				}
			}
		})
	}
}
