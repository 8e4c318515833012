package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/search"
)

const (
	testToken = "tok-123456"
	account   = "111122223333"
)

func quietLogger() *slog.Logger {
	if os.Getenv("SPIKEWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startHub runs a real hub on the test's OpenSearch prefix and returns its gRPC address.
func startHub(t *testing.T, e *ostest.Env, tokenSpec string) string {
	t.Helper()
	sc, err := search.New(search.Config{URL: e.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var auth hub.DevTokens
	if err := auth.Add(tokenSpec); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{GRPCAddr: "127.0.0.1:0", IndexPrefix: e.Prefix, BulkTimeout: 5 * time.Second},
		hub.Settings{Logger: quietLogger(), Search: sc, Auth: &auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ostest.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return h.GRPCAddr()
}

// fakeRuntime is the Lambda Runtime API: it serves the invocations queued with invoke from /next
// and records what the function posts.
type fakeRuntime struct {
	srv     *httptest.Server
	next    chan invocation
	results chan posted
	seq     atomic.Int64
}

type posted struct {
	kind      string // response, error, init
	requestID string
	errorType string // Lambda-Runtime-Function-Error-Type
	body      []byte
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	t.Helper()
	rt := &fakeRuntime{next: make(chan invocation), results: make(chan posted, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-rt.next:
			w.Header().Set(headerRequestID, inv.requestID)
			if !inv.deadline.IsZero() {
				w.Header().Set(headerDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			}
			_, _ = w.Write(inv.event)
		case <-r.Context().Done():
		}
	})
	record := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rt.results <- posted{kind: kind, requestID: r.PathValue("id"), errorType: r.Header.Get(headerErrorType), body: body}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", record("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", record("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", record("init"))
	rt.srv = httptest.NewServer(mux)
	t.Cleanup(rt.srv.Close)
	return rt
}

// addr is what AWS_LAMBDA_RUNTIME_API would hold: host:port.
func (rt *fakeRuntime) addr() string { return strings.TrimPrefix(rt.srv.URL, "http://") }

// serve runs Serve against the fake runtime until the test ends.
func (rt *fakeRuntime) serve(t *testing.T, h *Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, rt.addr(), h, quietLogger()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// invoke hands the function one event with the given time left and waits for what it posts.
func (rt *fakeRuntime) invoke(t *testing.T, event []byte, timeout time.Duration) posted {
	t.Helper()
	inv := invocation{requestID: "req-" + strconv.FormatInt(rt.seq.Add(1), 10), event: event, deadline: time.Now().Add(timeout)}
	wait := time.NewTimer(timeout + 5*time.Second)
	defer wait.Stop()
	select {
	case rt.next <- inv:
	case <-wait.C:
		t.Fatal("the function did not ask for the next invocation")
	}
	select {
	case p := <-rt.results:
		if p.requestID != inv.requestID {
			t.Fatalf("outcome posted for %q, want %q", p.requestID, inv.requestID)
		}
		return p
	case <-wait.C:
		t.Fatalf("no outcome for %s within %v", inv.requestID, timeout+5*time.Second)
	}
	return posted{}
}

func decodeResponse(t *testing.T, p posted) Response {
	t.Helper()
	if p.kind != "response" {
		t.Fatalf("posted %s (%s: %s), want a response", p.kind, p.errorType, p.body)
	}
	var r Response
	if err := json.Unmarshal(p.body, &r); err != nil {
		t.Fatalf("response %s: %v", p.body, err)
	}
	if r.BatchItemFailures == nil {
		t.Fatalf("response %s has no batchItemFailures list", p.body)
	}
	return r
}

func failedIDs(r Response) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// The test messages: EventBridge "AWS API Call via CloudTrail" events, as the member stack's rule
// puts them on the queue.
const (
	msgRun       = "6f1a2b3c-0000-4000-8000-000000000001"
	msgInvoke    = "6f1a2b3c-0000-4000-8000-000000000002"
	msgMalformed = "6f1a2b3c-0000-4000-8000-000000000003"
)

func eventBridge(t *testing.T, at time.Time, source, name string, params map[string]any, errorCode string) string {
	t.Helper()
	detail := map[string]any{
		"eventVersion": "1.08",
		"userIdentity": map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::" + account + ":assumed-role/Admin/alice", "accountId": account},
		"eventTime":    at.Format(time.RFC3339), "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
		"sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0", "requestParameters": params,
		"requestID": "req-" + name, "eventID": "evt-" + name,
		"eventType": "AwsApiCall", "recipientAccountId": account,
	}
	if errorCode != "" {
		detail["errorCode"] = errorCode
	}
	b, err := json.Marshal(map[string]any{
		"version": "0", "id": "eb-" + name, "detail-type": "AWS API Call via CloudTrail", "source": "aws." + strings.Split(source, ".")[0],
		"account": account, "time": at.Format(time.RFC3339), "region": "us-east-1", "resources": []any{}, "detail": detail,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type sqsMessage struct{ id, body string }

func sqsEventJSON(t *testing.T, msgs ...sqsMessage) []byte {
	t.Helper()
	var recs []map[string]any
	for _, m := range msgs {
		recs = append(recs, map[string]any{
			"messageId": m.id, "receiptHandle": "rh-" + m.id, "body": m.body,
			"attributes":        map[string]any{"ApproximateReceiveCount": "1", "SentTimestamp": "1714557600000"},
			"messageAttributes": map[string]any{}, "md5OfBody": "x", "eventSource": "aws:sqs",
			"eventSourceARN": "arn:aws:sqs:us-east-1:" + account + ":spikewatch", "awsRegion": "us-east-1",
		})
	}
	b, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type key struct {
	minute                       int64
	account, region, api, entity string
}
type sums struct{ calls, units, errors int64 }

// testEvent is an SQS batch of three messages: RunInstances launching 5+3 instances, a failed
// Lambda Invoke named by ARN, and a truncated body. It returns the sums the hub must index.
func testEvent(t *testing.T) ([]byte, []sqsMessage, map[key]sums) {
	t.Helper()
	minute := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	at := minute.Add(17 * time.Second)
	msgs := []sqsMessage{
		{msgRun, eventBridge(t, at, "ec2.amazonaws.com", "RunInstances", map[string]any{
			"instanceType": "p3.16xlarge",
			"instancesSet": map[string]any{"items": []any{
				map[string]any{"imageId": "ami-0abcdef", "minCount": 1, "maxCount": 5},
				map[string]any{"imageId": "ami-0abcdef", "minCount": 1, "maxCount": 3},
			}},
		}, "")},
		{msgInvoke, eventBridge(t, at, "lambda.amazonaws.com", "Invoke", map[string]any{
			"functionName": "arn:aws:lambda:us-east-1:" + account + ":function:billing-worker",
		}, "TooManyRequestsException")},
		{msgMalformed, `{"version":"0","detail-type":"AWS API Call via CloudTrail","detail":{"eventTime":"2024-05-01T10:0`},
	}
	want := map[key]sums{
		{minute.Unix(), account, "us-east-1", "ec2:RunInstances", ""}:            {calls: 1, units: 8},
		{minute.Unix(), account, "us-east-1", "lambda:Invoke", "billing-worker"}: {calls: 1, units: 1, errors: 1},
	}
	return sqsEventJSON(t, msgs...), msgs, want
}

// indexed returns what OpenSearch holds under the test's prefix, summed per key, and the unit ids
// of its documents.
func indexed(t *testing.T, e *ostest.Env) (map[key]sums, []string) {
	t.Helper()
	ctx := ostest.Context(t, 30*time.Second)
	if err := e.Client.Refresh(ctx, e.Prefix+"-counts-*"); err != nil {
		t.Fatal(err)
	}
	tot, err := e.Client.SumCounts(ctx, e.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]sums{}
	for _, c := range tot {
		got[key{c.Minute.Unix(), c.AccountID, c.Region, c.API, c.Entity}] = sums{c.Calls, c.Units, c.Errors}
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Unit string `json:"unit_id"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/"+e.Prefix+"-counts-*/_search", map[string]any{"size": 100, "_source": []string{"unit_id"}}, &res); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, h := range res.Hits.Hits {
		units = append(units, h.Source.Unit)
	}
	slices.Sort(units)
	return got, units
}

// The function against a real hub and OpenSearch: a batch is counted and indexed, the malformed
// message is a counted rejection (not a failure), and the same batch delivered again (SQS
// redelivery) overwrites the same documents.
func TestSQSBatchToHubExactlyOnce(t *testing.T) {
	e := ostest.New(t)
	addr := startHub(t, e, testToken+"=*")
	h, err := NewHandler(agent.Config{Hub: addr, Token: testToken, AgentID: "test-lambda"}, catalog.Default(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime(t)
	rt.serve(t, h)
	event, _, want := testEvent(t)
	wantUnits := []string{UnitPrefix + msgRun, UnitPrefix + msgInvoke}

	for _, delivery := range []string{"first delivery", "redelivery"} {
		t.Run(delivery, func(t *testing.T) {
			resp := decodeResponse(t, rt.invoke(t, event, 10*time.Second))
			if ids := failedIDs(resp); len(ids) > 0 {
				t.Fatalf("batchItemFailures %v, want none", ids)
			}
			got, units := indexed(t, e)
			if len(got) != len(want) {
				t.Errorf("indexed %d keys %v, want %d %v", len(got), got, len(want), want)
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s %s: indexed %+v, want %+v", k.api, k.entity, got[k], w)
				}
			}
			if !slices.Equal(units, wantUnits) {
				t.Errorf("documents of units %v, want one per counted message %v", units, wantUnits)
			}
		})
	}
}

// A batch the hub rejects (here: an account the token may not write) is dropped for good: retrying
// would be rejected again, so its messages succeed and nothing is indexed.
func TestHubRejectionIsNotRetried(t *testing.T) {
	e := ostest.New(t)
	addr := startHub(t, e, testToken+"=999999999999")
	h, err := NewHandler(agent.Config{Hub: addr, Token: testToken, AgentID: "test-lambda"}, nil, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime(t)
	rt.serve(t, h)
	event, _, _ := testEvent(t)
	resp := decodeResponse(t, rt.invoke(t, event, 10*time.Second))
	if ids := failedIDs(resp); len(ids) > 0 {
		t.Errorf("batchItemFailures %v, want none: a rejection is permanent", ids)
	}
	if got, units := indexed(t, e); len(got) > 0 || len(units) > 0 {
		t.Errorf("indexed %v (units %v), want nothing", got, units)
	}
}

// Counts that the hub cannot acknowledge before the deadline: every message of the batch goes back
// to the queue, unless the batch has nothing to send.
func TestUnreachableHubFailsTheBatch(t *testing.T) {
	event, msgs, _ := testEvent(t)
	var all []string
	for _, m := range msgs {
		all = append(all, m.id)
	}
	slices.Sort(all)
	h, err := NewHandler(agent.Config{Hub: "127.0.0.1:1", Token: testToken, AgentID: "test-lambda"}, nil, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	h.Margin = 200 * time.Millisecond
	rt := newFakeRuntime(t)
	rt.serve(t, h)
	for _, tc := range []struct {
		name  string
		event []byte
		want  []string
	}{
		{"counted messages", event, all},
		{"nothing to send", sqsEventJSON(t, msgs[2], sqsMessage{"not-monitored", eventBridge(t, time.Now(), "s3.amazonaws.com", "GetObject", nil, "")}), nil},
		{"empty batch", []byte(`{"Records":[]}`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp := decodeResponse(t, rt.invoke(t, tc.event, 1500*time.Millisecond))
			if got := failedIDs(resp); !slices.Equal(got, tc.want) {
				t.Errorf("batchItemFailures %v, want %v", got, tc.want)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("answered after %v, past the deadline", d)
			}
		})
	}
}

// Events that are not SQS batches fail as a whole, reported on the error endpoint.
func TestInvalidEvents(t *testing.T) {
	h, err := NewHandler(agent.Config{Hub: "127.0.0.1:1", Token: testToken}, nil, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime(t)
	rt.serve(t, h)
	for _, tc := range []struct {
		name, event string
	}{
		{"not JSON", `not json`},
		{"no Records", `{"detail-type":"AWS API Call via CloudTrail"}`},
		{"not SQS", `{"Records":[{"eventSource":"aws:s3","messageId":"m"}]}`},
		{"no messageId", `{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.Handle(context.Background(), []byte(tc.event)); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Handle: %v, want ErrInvalidEvent", err)
			}
			p := rt.invoke(t, []byte(tc.event), 5*time.Second)
			var doc errorDoc
			if err := json.Unmarshal(p.body, &doc); err != nil {
				t.Fatalf("error document %s: %v", p.body, err)
			}
			if p.kind != "error" || p.errorType != errTypeInvalid || doc.ErrorType != errTypeInvalid || doc.ErrorMessage == "" {
				t.Errorf("posted %s %q %+v, want an error of type %s", p.kind, p.errorType, doc, errTypeInvalid)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	unreadable := errors.New("read body: connection reset")
	for _, tc := range []struct {
		name   string
		msgs   []*message
		runErr error
		want   []string
	}{
		{"all settled", []*message{{id: "a"}, {id: "b"}}, nil, nil},
		{"unreadable body", []*message{{id: "a"}, {id: "b", err: unreadable}}, nil, []string{"b"}},
		{"deadline", []*message{{id: "a"}, {id: "b", err: unreadable}, {id: "c"}}, context.DeadlineExceeded, []string{"a", "b", "c"}},
		{"no messages", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := outcome(tc.msgs, tc.runErr)
			if r.BatchItemFailures == nil {
				t.Fatal("nil batchItemFailures")
			}
			if got := failedIDs(r); !slices.Equal(got, tc.want) {
				t.Errorf("failures %v, want %v", got, tc.want)
			}
		})
	}
	b, err := json.Marshal(outcome([]*message{{id: "m-1"}}, context.DeadlineExceeded))
	if err != nil || string(b) != `{"batchItemFailures":[{"itemIdentifier":"m-1"}]}` {
		t.Errorf("JSON %s (%v)", b, err)
	}
}

func TestHandlerFromEnv(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		EnvHub: "hub.spikewatch.example.com:443", EnvToken: testToken, EnvLogLevel: "info",
		EnvCatalogDigest: catalog.Default().Digest, "AWS_REGION": "eu-west-1", "AWS_LAMBDA_FUNCTION_NAME": "spikewatch-agent",
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string // over base; "" unsets
		wantErr []string          // every one in the error
		tls     bool
		agentID string
	}{
		{name: "member stack", tls: true, agentID: "lambda:eu-west-1:spikewatch-agent"},
		{name: "localhost hub", env: map[string]string{EnvHub: "127.0.0.1:7443"}, tls: false, agentID: "lambda:eu-west-1:spikewatch-agent"},
		{name: "TLS forced off", env: map[string]string{EnvTLS: "false"}, tls: false, agentID: "lambda:eu-west-1:spikewatch-agent"},
		{name: "TLS forced on", env: map[string]string{EnvHub: "localhost:7443", EnvTLS: "true"}, tls: true, agentID: "lambda:eu-west-1:spikewatch-agent"},
		{name: "agent id", env: map[string]string{EnvAgentID: "my-agent"}, tls: true, agentID: "my-agent"},
		{name: "other catalog digest", env: map[string]string{EnvCatalogDigest: "0123456789abcdef"}, tls: true, agentID: "lambda:eu-west-1:spikewatch-agent"},
		{name: "no hub", env: map[string]string{EnvHub: ""}, wantErr: []string{"HUB_ENDPOINT is not set"}},
		{name: "hub without port", env: map[string]string{EnvHub: "hub.example.com"}, wantErr: []string{"is not host:port"}},
		{name: "no token", env: map[string]string{EnvToken: ""}, wantErr: []string{"SPIKEWATCH_TOKEN is not set"}},
		{name: "IAM auth", env: map[string]string{EnvAuth: "aws"}, wantErr: []string{"not implemented"}},
		{name: "bad TLS flag", env: map[string]string{EnvTLS: "maybe"}, wantErr: []string{"SPIKEWATCH_TLS=\"maybe\""}},
		{name: "bad CA", env: map[string]string{EnvTLSCA: ca}, wantErr: []string{"no PEM certificates"}},
		{name: "missing catalog", env: map[string]string{EnvCatalog: "/nonexistent/catalog.yaml"}, wantErr: []string{"SPIKEWATCH_CATALOG"}},
		{name: "every problem at once", env: map[string]string{EnvHub: "", EnvToken: ""}, wantErr: []string{"HUB_ENDPOINT is not set", "SPIKEWATCH_TOKEN is not set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			h, err := HandlerFromEnv(func(k string) string { return env[k] }, quietLogger())
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.cfg.TLS != nil; got != tc.tls {
				t.Errorf("TLS %v, want %v", got, tc.tls)
			}
			if h.cfg.AgentID != tc.agentID || h.cfg.Token != testToken || !h.cfg.Once || h.cfg.SpoolDir != "" {
				t.Errorf("config %+v", h.cfg)
			}
		})
	}
}

func TestReportInitError(t *testing.T) {
	rt := newFakeRuntime(t)
	if err := ReportInitError(context.Background(), rt.addr(), errors.New("HUB_ENDPOINT is not set")); err != nil {
		t.Fatal(err)
	}
	p := <-rt.results
	var doc errorDoc
	if err := json.Unmarshal(p.body, &doc); err != nil {
		t.Fatal(err)
	}
	if p.kind != "init" || p.errorType != errTypeInitError || doc.ErrorMessage != "HUB_ENDPOINT is not set" {
		t.Errorf("posted %s %q %+v", p.kind, p.errorType, doc)
	}
}
