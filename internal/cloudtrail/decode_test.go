package cloudtrail

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// normalize makes events from different shapes comparable (requestParameters compacted).
func normalize(tb testing.TB, evs []*Event) []Event {
	tb.Helper()
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = *e
		if e.RequestParameters != nil {
			var b bytes.Buffer
			if err := json.Compact(&b, e.RequestParameters); err != nil {
				tb.Fatal(err)
			}
			out[i].RequestParameters = b.Bytes()
		}
	}
	return out
}

// TestShapes decodes every fixture, plain and gzip, and checks that each shape gives the same events.
func TestShapes(t *testing.T) {
	want := normalize(t, decodeAll(t, Decode, bytes.NewReader(fixture(t, "s3_records.json")), Options{}).events)
	if len(want) != 3 {
		t.Fatalf("s3_records.json: %d events, want 3", len(want))
	}
	tests := []struct {
		file   string
		fn     decodeFunc
		events int // the first events of s3_records.json
	}{
		{"s3_records.json", Decode, 3},
		{"array.json", Decode, 3},
		{"events.ndjson", Decode, 3},
		{"pretty_concatenated.json", Decode, 3},
		{"single.json", Decode, 1},
		{"eventbridge.json", Decode, 1},
		{"eventbridge_array.json", Decode, 3},
		{"sqs_eventbridge.json", Decode, 3},
		{"cwl_document.json", Decode, 3},
		{"cwl_document.json", DecodeCloudWatchLogs, 3},
		{"cwl_lambda.json", Decode, 3},
		{"cwl_lambda.json", DecodeCloudWatchLogs, 3},
		{"cwl_control.json", Decode, 0},
		{"cwl_control.json", DecodeCloudWatchLogs, 0},
	}
	for _, tt := range tests {
		name := tt.file
		if reflect.ValueOf(tt.fn).Pointer() == reflect.ValueOf(DecodeCloudWatchLogs).Pointer() {
			name = "cwl/" + name
		}
		raw := fixture(t, tt.file)
		for _, variant := range []struct {
			name string
			data []byte
		}{{"plain", raw}, {"gzip", gz(t, raw)}} {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				res := decodeAll(t, tt.fn, bytes.NewReader(variant.data), Options{})
				if res.err != nil || len(res.rejections) != 0 {
					t.Fatalf("err %v, rejections %+v", res.err, res.rejections)
				}
				if got := normalize(t, res.events); !reflect.DeepEqual(got, want[:tt.events]) {
					t.Errorf("events differ from s3_records.json:\n got %+v\nwant %+v", got, want[:tt.events])
				}
			})
		}
	}
}

func TestEventFields(t *testing.T) {
	res := decodeAll(t, Decode, bytes.NewReader(fixture(t, "s3_records.json")), Options{})
	if len(res.events) != 3 {
		t.Fatalf("%d events", len(res.events))
	}
	e := res.events[0]
	want := Event{
		EventVersion: "1.08", EventID: "00000000-0000-0000-0000-000000000001",
		EventTime:   time.Date(2024, 5, 1, 10, 1, 5, 0, time.UTC),
		EventSource: "ec2.amazonaws.com", EventName: "RunInstances", AWSRegion: "us-east-1",
		RecipientAccountID: "111122223333", SourceIPAddress: "198.51.100.7", UserAgent: "aws-cli/2.15.0",
		EventType: "AwsApiCall", ReadOnly: false, ManagementEvent: true,
		UserIdentity: UserIdentity{
			Type: "AssumedRole", PrincipalID: "AROAEXAMPLE:alice", ARN: "arn:aws:sts::111122223333:assumed-role/Admin/alice",
			AccountID: "111122223333", AccessKeyID: "ASIAEXAMPLE", IssuerARN: "arn:aws:iam::111122223333:role/Admin",
		},
		RequestParameters: json.RawMessage(`{"instanceType":"p3.16xlarge","instancesSet":{"items":[{"imageId":"ami-0abcdef","minCount":1,"maxCount":10}]}}`),
	}
	if !reflect.DeepEqual(*e, want) {
		t.Errorf("event 0:\n got %+v\nwant %+v", *e, want)
	}
	if e := res.events[2]; e.RequestParameters != nil || e.UserIdentity.InvokedBy != "apigateway.amazonaws.com" ||
		e.UserIdentity.Principal() != "apigateway.amazonaws.com" {
		t.Errorf("event 2: requestParameters %q (want nil), userIdentity %+v", e.RequestParameters, e.UserIdentity)
	}
}

func TestTimeAndAccount(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		time    time.Time
		account string
	}{
		{"offset is made UTC", event(t, map[string]any{"eventTime": "2024-03-04T07:06:07+02:00"}),
			time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), "123456789012"},
		{"fractional seconds", event(t, map[string]any{"eventTime": "2024-03-04T05:06:07.250Z"}),
			time.Date(2024, 3, 4, 5, 6, 7, 250e6, time.UTC), "123456789012"},
		{"EventBridge account when detail has no recipientAccountId",
			eventBridge(apiCallDetailType, "210987654321", event(t, map[string]any{"recipientAccountId": nil})),
			time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), "210987654321"},
		{"recipientAccountId wins over the EventBridge account",
			eventBridge(apiCallDetailType, "210987654321", event(t, nil)),
			time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), "123456789012"},
		{"userIdentity.accountId is not the account", event(t, map[string]any{"recipientAccountId": nil}),
			time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := decodeAll(t, Decode, strings.NewReader(tt.in), Options{})
			if tt.account == "" {
				if len(res.events) != 0 || len(res.rejections) != 1 || res.rejections[0].Reason != ReasonMissingField {
					t.Fatalf("events %d, rejections %+v; want one missing_field", len(res.events), res.rejections)
				}
				return
			}
			if len(res.events) != 1 {
				t.Fatalf("events %d, rejections %+v", len(res.events), res.rejections)
			}
			if e := res.events[0]; !e.EventTime.Equal(tt.time) || e.EventTime.Location() != time.UTC || e.RecipientAccountID != tt.account {
				t.Errorf("time %v account %q, want %v %q", e.EventTime, e.RecipientAccountID, tt.time, tt.account)
			}
		})
	}
}

// rejectionCase is one input and what decoding it must give.
type rejectionCase struct {
	name    string
	fn      decodeFunc // Decode when nil
	in      string
	opts    Options
	events  int
	reasons []Reason
	index   []int // the Index of each rejection; not checked when nil
}

func runRejectionCases(t *testing.T, tests []rejectionCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.fn
			if fn == nil {
				fn = Decode
			}
			res := decodeAll(t, fn, strings.NewReader(tt.in), tt.opts)
			if res.err != nil {
				t.Fatalf("err %v", res.err)
			}
			if len(res.events) != tt.events || !reflect.DeepEqual(res.reasons(), tt.reasons) {
				t.Fatalf("events %d, rejections %+v; want events %d, reasons %v", len(res.events), res.rejections, tt.events, tt.reasons)
			}
			for i, idx := range tt.index {
				if res.rejections[i].Index != idx {
					t.Errorf("rejection %d: index %d, want %d (%+v)", i, res.rejections[i].Index, idx, res.rejections[i])
				}
			}
		})
	}
}

func TestReasons(t *testing.T) {
	ok := event(t, nil)
	big := event(t, map[string]any{"requestParameters": map[string]any{"pad": strings.Repeat("x", 5000)}})
	all := func(r ...Reason) []Reason { return r }
	runRejectionCases(t, []rejectionCase{
		// malformed_json
		{name: "malformed object", in: `{"eventName": }`, reasons: all(ReasonMalformedJSON), index: []int{0}},
		{name: "malformed element keeps its neighbours", in: "[" + ok + `,{"a":tru},` + ok + "]", events: 2,
			reasons: all(ReasonMalformedJSON), index: []int{1}},
		{name: "garbage text is one rejection", in: "hello world, this is not JSON\nat all\n", reasons: all(ReasonMalformedJSON)},
		{name: "garbage line between NDJSON lines", in: ok + "\nnot json at all\n" + ok + "\n", events: 2,
			reasons: all(ReasonMalformedJSON), index: []int{1}},
		{name: "NDJSON line cut short", in: ok + "\n" + ok[:len(ok)/2] + "\n" + ok + "\n" + ok + "\n", events: 3,
			reasons: all(ReasonMalformedJSON), index: []int{1}},
		{name: "NDJSON line cut in a string", in: ok + "\n" + `{"eventName":"Run` + "\n" + ok + "\n", events: 2,
			reasons: all(ReasonMalformedJSON), index: []int{1}},
		{name: "truncated mid-array", in: `{"Records":[` + ok + "," + ok + "," + ok[:40], events: 2,
			reasons: all(ReasonMalformedJSON), index: []int{2}},
		{name: "truncated after an element", in: "[" + ok + "," + ok, events: 2, reasons: all(ReasonMalformedJSON)},
		{name: "array without commas", in: "[" + ok + " " + ok + "]", events: 1, reasons: all(ReasonMalformedJSON)},
		{name: "stray closing bracket", in: "]" + "\n" + ok, events: 1, reasons: all(ReasonMalformedJSON)},
		{name: "raw newline in a string of an element", in: "[" + ok + `,{"eventName":"a` + "\n" + `b"},` + ok + "]", events: 2,
			reasons: all(ReasonMalformedJSON), index: []int{1}},
		{name: "SQS body not JSON", in: sqsEvent("hello"), reasons: all(ReasonMalformedJSON)},
		// not_an_object
		{name: "number in array", in: "[" + ok + ",5]", events: 1, reasons: all(ReasonNotObject), index: []int{1}},
		{name: "string and null in Records", in: `{"Records":["x",null]}`, reasons: all(ReasonNotObject, ReasonNotObject), index: []int{0, 1}},
		{name: "number line in NDJSON", in: ok + "\n42\n" + ok, events: 2, reasons: all(ReasonNotObject), index: []int{1}},
		{name: "nested array", in: "[[" + ok + "]]", reasons: all(ReasonNotObject)},
		// not_cloudtrail
		{name: "other EventBridge detail-type", in: eventBridge("EC2 Instance State-change Notification", "123456789012", `{"state":"running"}`),
			reasons: all(ReasonNotCloudTrail), index: []int{0}},
		{name: "unrelated object", in: `{"foo":"bar"}`, reasons: all(ReasonNotCloudTrail)},
		{name: "S3 notification record", in: `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2024-03-04T05:06:07Z","awsRegion":"eu-west-1"}]}`,
			reasons: all(ReasonNotCloudTrail)},
		{name: "SNS notification in SQS", in: sqsEvent(`{"Type":"Notification","Message":"hi"}`), reasons: all(ReasonNotCloudTrail)},
		{name: "CWL mode: S3 file", fn: DecodeCloudWatchLogs, in: `{"Records":[` + ok + "]}", reasons: all(ReasonNotCloudTrail), index: []int{-1}},
		{name: "CWL mode: array", fn: DecodeCloudWatchLogs, in: "[" + ok + "]", reasons: all(ReasonNotCloudTrail), index: []int{-1}},
		{name: "CWL data is not a CWL document", in: awslogs(b64gz(t, []byte("["+ok+"]"))), reasons: all(ReasonNotCloudTrail), index: []int{-1}},
		{name: "CWL data nests awslogs", in: awslogs(b64gz(t, []byte(awslogs(b64gz(t, []byte(cwlDocument(ok))))))),
			reasons: all(ReasonNotCloudTrail), index: []int{-1}},
		// missing_field
		{name: "no eventName", in: event(t, map[string]any{"eventName": nil}), reasons: all(ReasonMissingField), index: []int{0}},
		{name: "null eventSource", in: event(t, map[string]any{"eventSource": json.RawMessage("null")}), reasons: all(ReasonMissingField)},
		{name: "no eventTime", in: event(t, map[string]any{"eventTime": nil}), reasons: all(ReasonMissingField)},
		{name: "no account", in: event(t, map[string]any{"recipientAccountId": nil}), reasons: all(ReasonMissingField)},
		{name: "empty account", in: event(t, map[string]any{"recipientAccountId": ""}), reasons: all(ReasonMissingField)},
		{name: "EventBridge without detail", in: `{"detail-type":"AWS API Call via CloudTrail","account":"123456789012"}`, reasons: all(ReasonMissingField)},
		{name: "SQS message without body", in: `{"Records":[{"eventSource":"aws:sqs","messageId":"1"}]}`, reasons: all(ReasonMissingField)},
		{name: "log event without message", in: `{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1"}]}`, reasons: all(ReasonMissingField)},
		{name: "awslogs without data", in: `{"awslogs":{}}`, reasons: all(ReasonMissingField), index: []int{-1}},
		// wrong_type
		{name: "eventName number", in: event(t, map[string]any{"eventName": 5}), reasons: all(ReasonWrongType), index: []int{0}},
		{name: "userIdentity string", in: event(t, map[string]any{"userIdentity": "root"}), reasons: all(ReasonWrongType)},
		{name: "readOnly string", in: event(t, map[string]any{"readOnly": "true"}), reasons: all(ReasonWrongType)},
		{name: "sessionIssuer.arn number", in: event(t, map[string]any{"userIdentity": map[string]any{"sessionContext": map[string]any{"sessionIssuer": map[string]any{"arn": 7}}}}),
			reasons: all(ReasonWrongType)},
		{name: "account id as a number", in: event(t, map[string]any{"recipientAccountId": 123456789012}), reasons: all(ReasonWrongType)},
		{name: "eventTime number", in: event(t, map[string]any{"eventTime": 1709528767}), reasons: all(ReasonWrongType)},
		{name: "EventBridge detail string", in: eventBridge(apiCallDetailType, "123456789012", `"x"`), reasons: all(ReasonWrongType)},
		{name: "EventBridge detail-type number", in: `{"detail-type":5,"detail":{}}`, reasons: all(ReasonWrongType)},
		{name: "SQS body object", in: `{"Records":[{"eventSource":"aws:sqs","body":{}}]}`, reasons: all(ReasonWrongType)},
		{name: "log message number", in: `{"messageType":"DATA_MESSAGE","logEvents":[{"message":5}]}`, reasons: all(ReasonWrongType)},
		// bad_time
		{name: "time in words", in: event(t, map[string]any{"eventTime": "yesterday"}), reasons: all(ReasonBadTime), index: []int{0}},
		{name: "month 13", in: event(t, map[string]any{"eventTime": "2024-13-01T00:00:00Z"}), reasons: all(ReasonBadTime)},
		{name: "no T", in: event(t, map[string]any{"eventTime": "2024-03-04 05:06:07"}), reasons: all(ReasonBadTime)},
		{name: "no zone", in: event(t, map[string]any{"eventTime": "2024-03-04T05:06:07"}), reasons: all(ReasonBadTime)},
		{name: "zero time", in: event(t, map[string]any{"eventTime": "0001-01-01T00:00:00Z"}), reasons: all(ReasonBadTime)},
		// bad_account
		{name: "11 digits", in: event(t, map[string]any{"recipientAccountId": "12345678901"}), reasons: all(ReasonBadAccount), index: []int{0}},
		{name: "13 digits", in: event(t, map[string]any{"recipientAccountId": "1234567890123"}), reasons: all(ReasonBadAccount)},
		{name: "a letter", in: event(t, map[string]any{"recipientAccountId": "12345678901a"}), reasons: all(ReasonBadAccount)},
		{name: "fullwidth digits", in: event(t, map[string]any{"recipientAccountId": "１２３４５６７８９０１２"}), reasons: all(ReasonBadAccount)},
		{name: "padded", in: event(t, map[string]any{"recipientAccountId": " 23456789012"}), reasons: all(ReasonBadAccount)},
		{name: "EventBridge account forged", in: eventBridge(apiCallDetailType, "../../etc/passwd", event(t, map[string]any{"recipientAccountId": nil})),
			reasons: all(ReasonBadAccount)},
		// too_large
		{name: "event over MaxEventBytes in an array", in: "[" + ok + "," + big + "," + ok + "]", opts: Options{MaxEventBytes: 4096},
			events: 2, reasons: all(ReasonTooLarge), index: []int{1}},
		{name: "event over MaxEventBytes in Records", in: `{"Records":[` + big + "," + ok + "]}", opts: Options{MaxEventBytes: 4096},
			events: 1, reasons: all(ReasonTooLarge), index: []int{0}},
		{name: "single object over MaxEventBytes", in: big + "\n" + ok, opts: Options{MaxEventBytes: 4096},
			events: 1, reasons: all(ReasonTooLarge), index: []int{0}},
		{name: "input over MaxInputBytes", in: "[" + ok + "," + ok + "," + ok + "]", opts: Options{MaxInputBytes: int64(2*len(ok) + 10)},
			events: 2, reasons: all(ReasonTooLarge), index: []int{-1}},
		// bad_gzip
		{name: "gzip header then garbage", in: "\x1f\x8bgarbage that is not deflate", reasons: all(ReasonBadGzip), index: []int{-1}},
		{name: "gzip magic alone", in: "\x1f\x8b", reasons: all(ReasonBadGzip)},
		// bad_base64
		{name: "awslogs data not base64", in: awslogs("!!! not base64 !!!"), reasons: all(ReasonBadBase64), index: []int{-1}},
		{name: "CWL mode: text not base64", fn: DecodeCloudWatchLogs, in: "this is not base64", reasons: all(ReasonBadBase64)},
		{name: "CWL mode: quoted text not base64", fn: DecodeCloudWatchLogs, in: `"H4sI%%%%"`, reasons: all(ReasonBadBase64)},
	})
}

func TestGzipDamage(t *testing.T) {
	var recs []string
	for i := 0; i < 300; i++ {
		recs = append(recs, event(t, map[string]any{"eventID": fmt.Sprint(i), "requestParameters": map[string]any{"n": i, "s": strings.Repeat(fmt.Sprint(i), i%40)}}))
	}
	z := gz(t, []byte(`{"Records":[`+strings.Join(recs, ",")+"]}"))
	t.Run("truncated", func(t *testing.T) {
		res := decodeAll(t, Decode, bytes.NewReader(z[:len(z)*2/3]), Options{})
		if res.err != nil || len(res.events) == 0 || len(res.events) >= 300 {
			t.Fatalf("err %v, %d events; want some events before the break", res.err, len(res.events))
		}
		if !reflect.DeepEqual(res.reasons(), []Reason{ReasonBadGzip}) || res.rejections[0].Index != -1 {
			t.Fatalf("rejections %+v, want one bad_gzip for the input", res.rejections)
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		bad := bytes.Clone(z)
		bad[len(bad)-6] ^= 0xff // CRC-32 of the trailer
		res := decodeAll(t, Decode, bytes.NewReader(bad), Options{})
		if res.err != nil || !reflect.DeepEqual(res.reasons(), []Reason{ReasonBadGzip}) {
			t.Fatalf("err %v, rejections %+v", res.err, res.rejections)
		}
	})
	t.Run("corrupt body", func(t *testing.T) {
		bad := bytes.Clone(z)
		for i := 40; i < 80; i++ {
			bad[i] = 0xff
		}
		res := decodeAll(t, Decode, bytes.NewReader(bad), Options{})
		if res.err != nil || len(res.rejections) == 0 || res.rejections[len(res.rejections)-1].Reason != ReasonBadGzip {
			t.Fatalf("err %v, rejections %+v", res.err, res.rejections)
		}
	})
	t.Run("two members", func(t *testing.T) {
		two := append(bytes.Clone(z), z...)
		res := decodeAll(t, Decode, bytes.NewReader(two), Options{})
		if res.err != nil || len(res.events) != 600 || len(res.rejections) != 0 {
			t.Fatalf("err %v, events %d, rejections %+v", res.err, len(res.events), res.rejections)
		}
	})
	t.Run("gzip bomb in CloudWatch Logs data", func(t *testing.T) {
		bomb := awslogs(b64gz(t, bytes.Repeat([]byte(" "), 4<<20)))
		res := decodeAll(t, DecodeCloudWatchLogs, strings.NewReader(bomb), Options{MaxInputBytes: 1 << 20})
		if res.err != nil || !reflect.DeepEqual(res.reasons(), []Reason{ReasonTooLarge}) || res.rejections[0].Index != -1 {
			t.Fatalf("err %v, rejections %+v", res.err, res.rejections)
		}
	})
	t.Run("gzip bomb", func(t *testing.T) {
		bomb := gz(t, bytes.Repeat([]byte(" "), 8<<20))
		res := decodeAll(t, Decode, bytes.NewReader(bomb), Options{MaxInputBytes: 1 << 20})
		if res.err != nil || !reflect.DeepEqual(res.reasons(), []Reason{ReasonTooLarge}) {
			t.Fatalf("err %v, rejections %+v", res.err, res.rejections)
		}
	})
}

// TestHugeEvent puts a 3 MiB event between two small ones, with the default limits.
func TestHugeEvent(t *testing.T) {
	ok := event(t, nil)
	huge := event(t, map[string]any{"requestParameters": map[string]any{"userData": strings.Repeat("QUJD", 3<<18)}})
	in := gz(t, []byte(`{"Records":[`+ok+","+huge+","+ok+"]}"))
	res := decodeAll(t, Decode, bytes.NewReader(in), Options{})
	if res.err != nil || len(res.events) != 2 || !reflect.DeepEqual(res.reasons(), []Reason{ReasonTooLarge}) || res.rejections[0].Index != 1 {
		t.Fatalf("err %v, %d events, rejections %+v", res.err, len(res.events), res.rejections)
	}
}

func TestCloudWatchLogs(t *testing.T) {
	ok := event(t, nil)
	doc := cwlDocument(ok, ok)
	data := b64gz(t, []byte(doc))
	control := `{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}`
	controlLast := `{"logEvents":[{"message":"CWL CONTROL MESSAGE: Checking health"}],"messageType":"CONTROL_MESSAGE"}`
	for _, fn := range []struct {
		name string
		fn   decodeFunc
	}{{"Decode", Decode}, {"DecodeCloudWatchLogs", DecodeCloudWatchLogs}} {
		t.Run(fn.name, func(t *testing.T) {
			runRejectionCases(t, []rejectionCase{
				{name: "Lambda event", fn: fn.fn, in: awslogs(data), events: 2},
				{name: "Lambda event with escaped slashes", fn: fn.fn, in: strings.ReplaceAll(awslogs(data), "/", `\/`), events: 2},
				{name: "Lambda event with more fields", fn: fn.fn, in: `{"other":[1,{"x":"}"}],"awslogs":{"x":1,"data":"` + data + `","y":"z"}}`, events: 2},
				{name: "base64 text", fn: fn.fn, in: data + "\n", events: 2},
				{name: "base64 as JSON string", fn: fn.fn, in: `"` + data + `"`, events: 2},
				{name: "gzip data", fn: fn.fn, in: string(gz(t, []byte(doc))), events: 2},
				{name: "document", fn: fn.fn, in: doc, events: 2},
				{name: "control message ignored", fn: fn.fn, in: control},
				{name: "control message, messageType last", fn: fn.fn, in: controlLast},
				{name: "control message in Lambda event", fn: fn.fn, in: awslogs(b64gz(t, []byte(control)))},
				{name: "EventBridge event as message", fn: fn.fn, in: cwlDocument(eventBridge(apiCallDetailType, "123456789012", ok)), events: 1},
				{name: "bad messages", fn: fn.fn, in: cwlDocument(ok, "START RequestId: 1", "[1]", `{"eventName":"x"}`, ok),
					events: 2, reasons: []Reason{ReasonMalformedJSON, ReasonNotObject, ReasonMissingField}, index: []int{1, 2, 3}},
				{name: "truncated base64", fn: fn.fn, in: awslogs(data[:len(data)/2]), reasons: []Reason{ReasonBadGzip}},
				{name: "JSON cut in the base64 string", fn: fn.fn, in: `{"awslogs":{"data":"` + data[:len(data)/2], reasons: []Reason{ReasonMalformedJSON}},
				{name: "base64 of plain JSON", fn: fn.fn, in: awslogs(b64(doc)), events: 2},
				{name: "two payloads one after another", fn: fn.fn, in: awslogs(data) + "\n" + awslogs(data), events: 4},
			})
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodeMisc(t *testing.T) {
	ok := event(t, nil)
	runRejectionCases(t, []rejectionCase{
		{name: "empty input", in: ""},
		{name: "white space", in: " \n\t\r\n"},
		{name: "byte order mark", in: "\xef\xbb\xbf" + ok, events: 1},
		{name: "empty Records", in: `{"Records":[]}`},
		{name: "empty array", in: `[]`},
		{name: "Records after other keys", in: `{"x":{"Records":[1]},"Records":[` + ok + `],"y":"}"}`, events: 1},
		{name: "unknown and odd fields", in: event(t, map[string]any{"x": []any{1, "]", map[string]any{"}": "{"}}, "errorCode": json.RawMessage("null"), "userIdentity": json.RawMessage("null")}), events: 1},
		{name: "SQS body with a plain event", in: sqsEvent(ok), events: 1},
		{name: "SQS in a JSON array", in: `[` + sqsEvent(eventBridge(apiCallDetailType, "123456789012", ok)) + `]`, reasons: []Reason{ReasonNotCloudTrail}},
		{name: "mixed shapes one after another", in: ok + "\n[" + ok + "," + eventBridge(apiCallDetailType, "123456789012", ok) + "]\n" + `{"Records":[` + ok + "]}" + ok, events: 5},
		{name: "pretty-printed objects with a broken one", in: "{\n  \"eventName\": 5,\n  \"x\": [\n}\n" + indent(t, ok) + "\n" + indent(t, ok), events: 2,
			reasons: []Reason{ReasonMalformedJSON}},
		{name: "deep nesting", in: strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n" + ok, events: 1, reasons: []Reason{ReasonMalformedJSON}},
		{name: "huge key", in: `{"` + strings.Repeat("k", 10000) + `":1,"eventName":"x"}`, reasons: []Reason{ReasonMissingField}},
		{name: "escaped Records key is not streamed", in: `{"Rec\u006frds":[` + ok + `]}`, reasons: []Reason{ReasonNotCloudTrail}},
	})
}

func indent(tb testing.TB, s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

func TestDetailIsShort(t *testing.T) {
	long := strings.Repeat("é", 5000)
	for _, in := range []string{
		event(t, map[string]any{"eventTime": long}),
		event(t, map[string]any{"recipientAccountId": long}),
		eventBridge(long, "1", "{}"),
		`{"` + long + `":` + long,
	} {
		res := decodeAll(t, Decode, strings.NewReader(in), Options{})
		for _, r := range res.rejections {
			if len(r.Detail) > maxDetail || strings.Contains(r.Detail, strings.Repeat("é", 100)) {
				t.Errorf("detail too long (%d bytes): %q", len(r.Detail), r.Detail)
			}
		}
	}
}

func TestRejectionError(t *testing.T) {
	if got, want := (Rejection{ReasonBadTime, 3, "x"}).Error(), "cloudtrail: event 3 rejected (bad_time): x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (Rejection{ReasonBadGzip, -1, "y"}).Error(), "cloudtrail: input rejected (bad_gzip): y"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEmitError(t *testing.T) {
	boom := errors.New("boom")
	for _, in := range []string{
		string(fixture(t, "s3_records.json")),
		string(fixture(t, "cwl_lambda.json")),
		string(gz(t, fixture(t, "sqs_eventbridge.json"))),
	} {
		calls := 0
		err := Decode(strings.NewReader(in), Options{}, func(*Event) error { calls++; return boom }, nil)
		if !errors.Is(err, boom) || calls != 1 {
			t.Errorf("err %v after %d calls, want boom after 1", err, calls)
		}
	}
}

// failingReader gives data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	broken := errors.New("connection reset")
	s3 := fixture(t, "s3_records.json")
	lambda := fixture(t, "cwl_lambda.json")
	for _, tt := range []struct {
		name string
		fn   decodeFunc
		data []byte
	}{
		{"plain", Decode, s3[:len(s3)/2]},
		{"gzip", Decode, gz(t, s3)[:200]},
		{"gzip header", Decode, gz(t, s3)[:5]},
		{"nothing", Decode, nil},
		{"CWL base64", DecodeCloudWatchLogs, lambda[:len(lambda)/2]},
		{"CWL gzip", DecodeCloudWatchLogs, gz(t, lambda)[:300]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := decodeAll(t, tt.fn, &failingReader{tt.data, broken}, Options{})
			if !errors.Is(res.err, broken) {
				t.Fatalf("err %v, want %v", res.err, broken)
			}
			if len(res.rejections) != 0 {
				t.Errorf("a read error is not a rejection: %+v", res.rejections)
			}
		})
	}
}

// recordsReader generates {"Records":[...]} with n copies of an event, without holding it.
type recordsReader struct {
	event   []byte
	n       int
	started bool
	buf     []byte
}

func (r *recordsReader) Read(p []byte) (int, error) {
	if !r.started {
		r.started = true
		r.buf = append(r.buf, `{"Records":[`...)
	}
	for len(r.buf) < len(p) && r.n >= 0 {
		switch {
		case r.n == 0:
			r.buf = append(r.buf, "]}"...)
		default:
			r.buf = append(r.buf, r.event...)
			if r.n > 1 {
				r.buf = append(r.buf, ',')
			}
		}
		r.n--
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// TestStreaming decodes a 100 MB S3 file and checks that the heap stays far below its size.
func TestStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ev := []byte(event(t, map[string]any{"requestParameters": map[string]any{"pad": strings.Repeat("p", 1000)}}))
	n := (100 << 20) / len(ev)
	var peak uint64
	var ms runtime.MemStats
	count := 0
	err := Decode(&recordsReader{event: ev, n: n}, Options{}, func(*Event) error {
		count++
		if count%2000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	}, func(r Rejection) { t.Errorf("rejection %+v", r) })
	if err != nil || count != n {
		t.Fatalf("err %v, %d events, want %d", err, count, n)
	}
	if peak > 32<<20 {
		t.Errorf("heap reached %d MB while decoding a 100 MB input", peak>>20)
	}
	t.Logf("%d events, heap peak %.1f MB", n, float64(peak)/(1<<20))
}
