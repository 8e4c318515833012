package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spikewatch/spikewatch/internal/awstest"
	"github.com/spikewatch/spikewatch/internal/notify"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

const (
	accountA = "111111111111"
	accountB = "222222222222"
)

// received is what an SQS subscriber got.
type received struct {
	Body  map[string]any
	Attrs map[string]string
}

// fixture: a topic, one queue per account subscribed with FilterPolicy(account), and a central
// queue with no filter. Raw delivery, so bodies are the alert JSON itself.
type fixture struct {
	topicARN string
	queues   map[string]string // name -> URL
	sqs      *sqs.Client
}

func newFixture(t *testing.T, cfg aws.Config, name string) *fixture {
	t.Helper()
	ctx := context.Background()
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{topicARN: aws.ToString(topic.TopicArn), queues: map[string]string{}, sqs: sqsc}
	for queue, policy := range map[string]string{
		accountA:  notify.FilterPolicy(accountA),
		accountB:  notify.FilterPolicy(accountB),
		"central": notify.FilterPolicy(),
	} {
		q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-" + queue)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			t.Fatal(err)
		}
		subAttrs := map[string]string{"RawMessageDelivery": "true"}
		if policy != "" {
			subAttrs["FilterPolicy"] = policy
			subAttrs["FilterPolicyScope"] = "MessageAttributes"
		}
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn:   topic.TopicArn,
			Protocol:   aws.String("sqs"),
			Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
			Attributes: subAttrs,
		}); err != nil {
			t.Fatal(err)
		}
		f.queues[queue] = aws.ToString(q.QueueUrl)
	}
	return f
}

// drain reads every message in the queue.
func (f *fixture) drain(t *testing.T, queue string) []received {
	t.Helper()
	var out []received
	for {
		resp, err := f.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(f.queues[queue]),
			MaxNumberOfMessages:   10,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			return out
		}
		for _, m := range resp.Messages {
			r := received{Attrs: map[string]string{}}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r.Body); err != nil {
				t.Fatalf("queue %s: body is not JSON: %v: %q", queue, err, aws.ToString(m.Body))
			}
			for k, v := range m.MessageAttributes {
				if aws.ToString(v.DataType) != "String" {
					t.Errorf("attribute %s: type %q", k, aws.ToString(v.DataType))
				}
				r.Attrs[k] = aws.ToString(v.StringValue)
			}
			out = append(out, r)
			if _, err := f.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(f.queues[queue]), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSNSRoutesByAccountFilterPolicy(t *testing.T) {
	cfg := awstest.Config(t)
	f := newFixture(t, cfg, "routing")
	pub := notify.NewSNS(cfg, f.topicARN)

	msgA := notify.Message{
		Subject:   "Spike: ec2:RunInstances in prod (111111111111)",
		Text:      "ec2:RunInstances: 48 calls in 5 minutes, baseline 2.",
		JSON:      []byte(`{"account_id":"111111111111","api":"ec2:RunInstances","count":48}`),
		AccountID: accountA, API: "ec2:RunInstances", Severity: "high",
	}
	msgB := notify.Message{ // no Text: plain message; an entity
		Subject:   "Spike: lambda:Invoke",
		JSON:      []byte(`{"account_id":"222222222222","api":"lambda:Invoke","count":90000}`),
		AccountID: accountB, API: "lambda:Invoke", Severity: "critical", Entity: "resize-images",
	}
	for _, m := range []notify.Message{msgA, msgB} {
		if err := pub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}

	wantA := received{
		Body:  map[string]any{"account_id": accountA, "api": "ec2:RunInstances", "count": 48.0},
		Attrs: map[string]string{"account_id": accountA, "api": "ec2:RunInstances", "severity": "high"},
	}
	wantB := received{
		Body:  map[string]any{"account_id": accountB, "api": "lambda:Invoke", "count": 90000.0},
		Attrs: map[string]string{"account_id": accountB, "api": "lambda:Invoke", "severity": "critical", "entity": "resize-images"},
	}
	for _, tc := range []struct {
		queue string
		want  []received
	}{
		{accountA, []received{wantA}},
		{accountB, []received{wantB}},
		{"central", []received{wantA, wantB}},
	} {
		t.Run(tc.queue, func(t *testing.T) {
			got := f.drain(t, tc.queue)
			if tc.queue == "central" && len(got) == 2 && got[0].Attrs["account_id"] == accountB {
				got[0], got[1] = got[1], got[0] // SQS order is not guaranteed
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("queue %s got\n%+v\nwant\n%+v", tc.queue, got, tc.want)
			}
		})
	}
}

func TestSNSPublishErrors(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	missing := notify.NewSNS(cfg, "arn:aws:sns:us-east-1:"+awstest.AccountID+":no-such-topic")
	err := missing.Publish(ctx, notify.Message{JSON: []byte(`{}`), AccountID: accountA})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want a wrapped API error", err)
	}
	if !strings.Contains(err.Error(), "no-such-topic") {
		t.Errorf("error does not name the topic: %v", err)
	}
	t.Logf("missing topic: %v (code %s)", err, apiErr.ErrorCode())

	if err := missing.Publish(ctx, notify.Message{JSON: []byte(`{not json`)}); err == nil {
		t.Error("invalid JSON published")
	}
}

// throttleOnce answers the first Publish with SNS's throttling error, then passes requests on.
type throttleOnce struct {
	next      aws.HTTPClient
	publishes atomic.Int32
}

func (c *throttleOnce) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	if strings.Contains(string(body), "Action=Publish") && c.publishes.Add(1) == 1 {
		return &http.Response{
			StatusCode: http.StatusBadRequest,
			Status:     "400 Bad Request",
			Header:     http.Header{"Content-Type": {"text/xml"}},
			Body: io.NopCloser(strings.NewReader(`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">` +
				`<Error><Type>Sender</Type><Code>Throttled</Code><Message>Rate exceeded</Message></Error>` +
				`<RequestId>test</RequestId></ErrorResponse>`)),
			Request: req,
		}, nil
	}
	return c.next.Do(req)
}

// The SDK's standard retryer does not know SNS's "Throttled" code; NewSNS adds it.
func TestSNSRetriesThrottling(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("throttled")})
	if err != nil {
		t.Fatal(err)
	}
	tr := &throttleOnce{next: http.DefaultClient}
	cfg.HTTPClient = tr
	noWait := func(o *sns.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
	pub := notify.NewSNS(cfg, aws.ToString(topic.TopicArn), noWait)
	if err := pub.Publish(ctx, notify.Message{JSON: []byte(`{"n":1}`), AccountID: accountA}); err != nil {
		t.Fatalf("publish after one throttle: %v", err)
	}
	if n := tr.publishes.Load(); n != 2 {
		t.Errorf("publish attempts = %d, want 2", n)
	}

	// Without the added code the same retryer gives up at once (guards the reason for it).
	tr.publishes.Store(0)
	plain := sns.NewFromConfig(cfg, noWait)
	_, err = plain.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("{}")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "Throttled" || tr.publishes.Load() != 1 {
		t.Errorf("plain client: err %v after %d attempts; want Throttled after 1", err, tr.publishes.Load())
	}
}
