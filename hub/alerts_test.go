package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/awstest"
	"github.com/spikewatch/spikewatch/internal/catalog"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/notify"
	"github.com/spikewatch/spikewatch/internal/orgs"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/pricing"
	"github.com/spikewatch/spikewatch/internal/search"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

const (
	acctA = "111111111111"
	acctB = "222222222222"
)

// A monitor's webhook becomes an enriched SNS message that account A's filtered subscription
// receives and account B's does not; a forged webhook is refused.
func TestWebhookToSNSPerAccount(t *testing.T) {
	e := ostest.New(t)
	cfg := awstest.Config(t)
	ctx := ostest.Context(t, 2*time.Minute)

	// SNS topic and one queue per account team, subscribed with a filter policy on account_id.
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(e.Prefix + "-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	queues := map[string]string{}
	for _, acct := range []string{acctA, acctB} {
		q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(e.Prefix + "-" + acct)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"]),
			Attributes: map[string]string{"FilterPolicy": notify.FilterPolicy(acct), "RawMessageDelivery": "true"}}); err != nil {
			t.Fatal(err)
		}
		queues[acct] = *q.QueueUrl
	}

	// Counts for enrichment: a baseline a day and a week before, and the spike.
	cat := catalog.Default()
	sc, _ := search.New(search.Config{URL: e.URL})
	store := &alerts.IndexStore{Search: sc, Index: e.Prefix + "-alerts"}
	if err := store.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	dir := orgs.Static{acctA: {ID: acctA, Name: "prod-payments", OUPath: "Root/Workloads/Prod", Tags: map[string]string{"team": "payments"}}}
	en := &alerts.SearchEnricher{Search: sc, IndexPrefix: e.Prefix, Catalog: cat, Directory: dir, Prices: pricing.Default(), DashboardsURL: "https://dashboards.example"}
	m, err := alerts.New(ctx, alerts.Config{}, cat, store, notify.NewSNS(cfg, *topic.TopicArn), en, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t, e, hubOpts{alerts: &hub.AlertSettings{Manager: m, Store: store}})

	spike := time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)
	s := openStream(ctx, t, h.GRPCAddr(), token)
	var counts []*pb.Count
	for _, back := range []time.Duration{0, 24 * time.Hour, 7 * 24 * time.Hour} {
		for i := 0; i < 10; i++ {
			c := &pb.Count{Minute: timestamppb.New(spike.Add(-back + time.Duration(i)*time.Minute)), AccountId: acctA, Region: "eu-west-1", Api: "ec2:RunInstances", Calls: 1, Units: 1,
				Principals: []*pb.TopValue{{Value: "arn:aws:iam::111111111111:role/ci", Count: 1}},
				Extra:      map[string]*pb.TopValues{"instance_types": {Values: []*pb.TopValue{{Value: "t3.micro", Count: 1}}}}}
			if back == 0 {
				c.Calls, c.Units = 20, 80
				c.Principals = []*pb.TopValue{{Value: "arn:aws:iam::111111111111:user/leaked", Count: 20}}
				c.SourceIps = []*pb.TopValue{{Value: "203.0.113.7", Count: 20}}
				c.Extra = map[string]*pb.TopValues{"instance_types": {Values: []*pb.TopValue{{Value: "p3.2xlarge", Count: 20}}}}
			}
			counts = append(counts, c)
		}
	}
	if ack := sendBatch(t, s, &pb.CountBatch{Seq: 1, UnitId: "enrich", Counts: counts}); ack.Status != pb.AckStatus_ACK_STATUS_ACCEPTED {
		t.Fatalf("counts: %v %s", ack.Status, ack.Error)
	}
	_ = sc.Refresh(ctx, e.Prefix+"-counts-*")

	url := "http://" + h.HTTPAddr() + "/api/v1/alerts/webhook"
	payload := fmt.Sprintf(`{"monitor":"spikewatch-ec2-runinstances","api":"ec2:RunInstances","period_end":%q,"buckets":[{"account_id":%q,"entity":"","grade":0.96,"confidence":0.92,"start":%q}]}`,
		spike.Add(10*time.Minute).Format(time.RFC3339), acctA, spike.Format(time.RFC3339))
	post := func(secret string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(payload))
		if secret != "" {
			req.Header.Set(hub.WebhookHeader, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("webhook without secret: %d", code)
	}
	if code := post("forged-secret"); code != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d", code)
	}
	if code := post(h.WebhookSecret()); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}

	msgs := receive(ctx, t, sqsc, queues[acctA], 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("account A's queue got %d messages, want 1", len(msgs))
	}
	msg := msgs[0]
	for k, want := range map[string]string{"account_id": acctA, "api": "ec2:RunInstances", "severity": "high"} {
		if v := msg.MessageAttributes[k]; v.StringValue == nil || *v.StringValue != want {
			t.Errorf("attribute %s = %v, want %s", k, v.StringValue, want)
		}
	}
	var body struct {
		Kind  string       `json:"kind"`
		Alert alerts.Alert `json:"alert"`
	}
	if err := json.Unmarshal([]byte(*msg.Body), &body); err != nil {
		t.Fatalf("body: %v\n%s", err, *msg.Body)
	}
	en0 := body.Alert.Enrichment
	if body.Kind != "opened" || en0 == nil {
		t.Fatalf("body: %s", *msg.Body)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"account name", en0.AccountName == "prod-payments" && en0.OUPath == "Root/Workloads/Prod" && en0.Tags["team"] == "payments"},
		{"counts during", en0.During.Units == 800 && en0.During.Calls == 200},
		{"baselines", en0.DayBefore.Units == 10 && en0.WeekBefore.Units == 10},
		{"who", len(en0.Principals) > 0 && strings.HasSuffix(en0.Principals[0].Value, "user/leaked")},
		{"from where", len(en0.SourceIPs) > 0 && en0.SourceIPs[0].Value == "203.0.113.7"},
		{"instance types", len(en0.Types) > 0 && en0.Types[0].Value == "p3.2xlarge"},
		{"cost", en0.CostPerHour > 1000},
		{"links", strings.HasPrefix(en0.Links.Discover, "https://dashboards.example/") && strings.Contains(en0.Links.CloudTrail, "eu-west-1")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("enrichment %s wrong: %+v", c.name, en0)
		}
	}
	if extra := receive(ctx, t, sqsc, queues[acctB], 1, 3*time.Second); len(extra) != 0 {
		t.Errorf("account B's subscriber received %d messages", len(extra))
	}
	// The same webhook again is a repeat: no second message.
	if code := post(h.WebhookSecret()); code != http.StatusAccepted {
		t.Fatalf("webhook repeat: %d", code)
	}
	if again := receive(ctx, t, sqsc, queues[acctA], 1, 3*time.Second); len(again) != 0 {
		t.Errorf("a repeat notified again: %d messages", len(again))
	}
	// The alert history API shows it.
	resp, err := http.Get("http://" + h.HTTPAddr() + "/api/v1/alerts?state=open&account_id=" + acctA)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Alerts []alerts.Alert `json:"alerts"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&list); err != nil || len(list.Alerts) != 1 || list.Alerts[0].API != "ec2:RunInstances" {
		t.Fatalf("GET /api/v1/alerts: %v %s", err, b)
	}
}

func receive(ctx context.Context, t *testing.T, c *sqs.Client, url string, want int, wait time.Duration) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	deadline := time.Now().Add(wait)
	for len(out) < want && time.Now().Before(deadline) {
		r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Messages...)
	}
	return out
}
