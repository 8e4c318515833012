package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cli"
	"github.com/spikewatch/spikewatch/internal/counting"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/search"
	"github.com/spikewatch/spikewatch/internal/workload"
)

const token = "test-token-all"

func quietLogger() *slog.Logger {
	if os.Getenv("SPIKEWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type hubOpts struct {
	osURL  string
	tokens []string
	addr   string
	alerts *hub.AlertSettings
}

func startHub(t testing.TB, e *ostest.Env, o hubOpts) *hub.Hub {
	t.Helper()
	url := e.URL
	if o.osURL != "" {
		url = o.osURL
	}
	sc, err := search.New(search.Config{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var auth hub.DevTokens
	if len(o.tokens) == 0 {
		o.tokens = []string{token + "=*"}
	}
	for _, tk := range o.tokens {
		if err := auth.Add(tk); err != nil {
			t.Fatal(err)
		}
	}
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	h, err := hub.New(hub.Config{GRPCAddr: o.addr, HTTPAddr: "127.0.0.1:0", IndexPrefix: e.Prefix, BulkTimeout: 5 * time.Second},
		hub.Settings{Logger: quietLogger(), Search: sc, Auth: &auth, Alerts: o.alerts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ostest.Context(t, time.Minute)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return h
}

func runAgent(ctx context.Context, t *testing.T, hubAddr, dir, spool string, stats *agent.Stats) error {
	t.Helper()
	cat := catalog.Default()
	a, err := agent.New(agent.Config{Hub: hubAddr, Token: token, AgentID: "test-agent", SpoolDir: spool, Once: true, MaxInFlight: 4, MaxBatchCounts: 500},
		agent.Settings{Logger: quietLogger(), Catalog: cat, Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	return a.Run(ctx, &agent.DirSource{Path: dir, Catalog: cat, Workers: 2})
}

type key struct {
	minute                       int64
	account, region, api, entity string
}
type sums struct{ calls, units, errors int64 }

func expected(t *testing.T, dirs ...string) map[key]sums {
	t.Helper()
	counts, _, err := cli.CountFiles(context.Background(), dirs, catalog.Default(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fromCounts(counts)
}

func fromCounts(cs []counting.Count) map[key]sums {
	m := map[key]sums{}
	for _, c := range cs {
		k := key{c.Minute.Unix(), c.AccountID, c.Region, c.API, c.Entity}
		s := m[k]
		s.calls += c.Calls
		s.units += c.Units
		s.errors += c.Errors
		m[k] = s
	}
	return m
}

func indexed(t *testing.T, e *ostest.Env) map[key]sums {
	t.Helper()
	ctx := ostest.Context(t, time.Minute)
	if err := e.Client.Refresh(ctx, e.Prefix+"-counts-*"); err != nil {
		t.Fatal(err)
	}
	tot, err := e.Client.SumCounts(ctx, e.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	m := map[key]sums{}
	for _, c := range tot {
		m[key{c.Minute.Unix(), c.AccountID, c.Region, c.API, c.Entity}] = sums{c.Calls, c.Units, c.Errors}
	}
	return m
}

func assertSame(t *testing.T, want, got map[key]sums) {
	t.Helper()
	var wc, gc int64
	for _, s := range want {
		wc += s.calls
	}
	for _, s := range got {
		gc += s.calls
	}
	if len(want) == 0 {
		t.Fatal("expected no counts at all: the test data matched nothing")
	}
	var diffs []string
	for k, w := range want {
		if g := got[k]; g != w {
			diffs = append(diffs, fmt.Sprintf("%v: want %+v got %+v", k, w, g))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v: unexpected %+v", k, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d keys differ (calls want %d got %d), first: %v", len(diffs), wc, gc, diffs[:min(5, len(diffs))])
	}
	t.Logf("%d keys, %d calls: OpenSearch equals spikewatch count", len(want), wc)
}

var (
	genOnce sync.Once
	genDir  string
	genErr  error
)

// generated writes a small multi-account workload once per test binary.
func generated(t *testing.T) string {
	t.Helper()
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "spikewatch-gen-")
		if genErr != nil {
			return
		}
		cfg := workload.Config{Seed: 7, Accounts: 5, Duration: 12 * time.Hour}
		_, genErr = workload.Generate(context.Background(), cfg, genDir, nil)
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genDir
}

func sharedCloudTrail(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "data", "cloudtrail")
			if _, err := os.Stat(p); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("shared data missing at %s", p)
				}
				t.Skipf("shared data not found at %s", p)
			}
			return p
		}
	}
	t.Fatal("no go.mod above the test directory")
	return ""
}

func TestReplayTotalsEqualCount(t *testing.T) {
	e := ostest.New(t)
	gen := generated(t)
	shared := sharedCloudTrail(t)
	h := startHub(t, e, hubOpts{})
	ctx := ostest.Context(t, 5*time.Minute)
	for _, dir := range []string{shared, gen} {
		var st agent.Stats
		if err := runAgent(ctx, t, h.GRPCAddr(), dir, "", &st); err != nil {
			t.Fatalf("agent on %s: %v", dir, err)
		}
		if st.Rejected.Load() > 0 {
			t.Fatalf("hub rejected %d batches from %s: %s", st.Rejected.Load(), dir, st.LastError())
		}
	}
	assertSame(t, expected(t, shared, gen), indexed(t, e))
}

func TestDuplicateBatchChangesNothing(t *testing.T) {
	e := ostest.New(t)
	h := startHub(t, e, hubOpts{})
	ctx := ostest.Context(t, time.Minute)
	b := &pb.CountBatch{UnitId: "dup-unit", Counts: []*pb.Count{{
		Minute: timestamppb.New(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)), AccountId: "123456789012", Region: "us-east-1",
		Api: "ec2:RunInstances", Calls: 3, Units: 7,
	}}}
	s := openStream(ctx, t, h.GRPCAddr(), token)
	for i := 1; i <= 3; i++ {
		b.Seq = uint64(i)
		if ack := sendBatch(t, s, b); ack.Status != pb.AckStatus_ACK_STATUS_ACCEPTED {
			t.Fatalf("send %d: %v %s", i, ack.Status, ack.Error)
		}
	}
	got := indexed(t, e)
	want := map[key]sums{{b.Counts[0].Minute.AsTime().Unix(), "123456789012", "us-east-1", "ec2:RunInstances", ""}: {3, 7, 0}}
	assertSame(t, want, got)
}

func TestAgentRestartFromSpool(t *testing.T) {
	e := ostest.New(t)
	gen := generated(t)
	h := startHub(t, e, hubOpts{})
	spool := t.TempDir()
	// First run: stop it after some batches were acknowledged, before the end.
	var st agent.Stats
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for st.Accepted.Load() < 5 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_ = runAgent(ctx, t, h.GRPCAddr(), gen, spool, &st)
	cancel()
	first := st.Accepted.Load()
	// Second run from the same spool, then a third that must find nothing left to do.
	var st2, st3 agent.Stats
	if err := runAgent(ostest.Context(t, 5*time.Minute), t, h.GRPCAddr(), gen, spool, &st2); err != nil {
		t.Fatal(err)
	}
	if err := runAgent(ostest.Context(t, time.Minute), t, h.GRPCAddr(), gen, spool, &st3); err != nil {
		t.Fatal(err)
	}
	t.Logf("first run acked %d batches, second %d, third %d", first, st2.Accepted.Load(), st3.Accepted.Load())
	if first == 0 || st2.Accepted.Load() == 0 {
		t.Fatal("the restart was not exercised")
	}
	if st3.Sent.Load() != 0 {
		t.Errorf("third run sent %d batches: acknowledged units should be skipped", st3.Sent.Load())
	}
	assertSame(t, expected(t, gen), indexed(t, e))
}

func TestForbiddenAccountIsRejected(t *testing.T) {
	e := ostest.New(t)
	h := startHub(t, e, hubOpts{tokens: []string{"only-account-a=111111111111"}})
	ctx := ostest.Context(t, time.Minute)
	s := openStream(ctx, t, h.GRPCAddr(), "only-account-a")
	mk := func(seq uint64, acct string) *pb.CountBatch {
		return &pb.CountBatch{Seq: seq, UnitId: fmt.Sprintf("u%d", seq), Counts: []*pb.Count{{
			Minute: timestamppb.New(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)), AccountId: acct, Region: "us-east-1", Api: "ec2:CreateVolume", Calls: 1, Units: 100,
		}}}
	}
	ack := sendBatch(t, s, mk(1, "222222222222"))
	if ack.Status != pb.AckStatus_ACK_STATUS_REJECTED || !contains(ack.Error, "222222222222") || !contains(ack.Error, "not allowed") {
		t.Fatalf("forbidden account: ack %v %q", ack.Status, ack.Error)
	}
	if got := indexed(t, e); len(got) != 0 {
		t.Fatalf("something was indexed: %v", got)
	}
	if ack := sendBatch(t, s, mk(2, "111111111111")); ack.Status != pb.AckStatus_ACK_STATUS_ACCEPTED {
		t.Fatalf("allowed account: %v %s", ack.Status, ack.Error)
	}
	// A wrong token never gets a stream.
	bad := openStreamNoWelcome(ctx, t, h.GRPCAddr(), "wrong-token-123")
	if _, err := bad.Recv(); err == nil || !contains(err.Error(), "Unauthenticated") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestMalformedBatchesAndGarbage(t *testing.T) {
	e := ostest.New(t)
	h := startHub(t, e, hubOpts{})
	ctx := ostest.Context(t, time.Minute)
	m := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	good := func() *pb.Count {
		return &pb.Count{Minute: timestamppb.New(m), AccountId: "123456789012", Region: "us-east-1", Api: "lambda:Invoke", Entity: "fn", Calls: 2}
	}
	cases := []struct {
		name string
		mod  func(*pb.CountBatch)
		want string
	}{
		{"no unit", func(b *pb.CountBatch) { b.UnitId = "" }, "unit_id"},
		{"bad account", func(b *pb.CountBatch) { b.Counts[0].AccountId = "12345" }, "12 digits"},
		{"minute not aligned", func(b *pb.CountBatch) { b.Counts[0].Minute = timestamppb.New(m.Add(7 * time.Second)) }, "minute boundary"},
		{"unknown api", func(b *pb.CountBatch) { b.Counts[0].Api = "s3:GetObject" }, "not in the catalog"},
		{"negative", func(b *pb.CountBatch) { b.Counts[0].Units = -5 }, "must be in"},
		{"zero calls", func(b *pb.CountBatch) { b.Counts[0].Calls = 0 }, "calls must be"},
		{"bad region", func(b *pb.CountBatch) { b.Counts[0].Region = "mars" }, "region"},
		{"no minute", func(b *pb.CountBatch) { b.Counts[0].Minute = nil }, "no minute"},
		{"duplicate key", func(b *pb.CountBatch) { b.Counts = append(b.Counts, good()) }, "repeats the key"},
		{"too many top values", func(b *pb.CountBatch) {
			for i := 0; i < 50; i++ {
				b.Counts[0].Principals = append(b.Counts[0].Principals, &pb.TopValue{Value: "x", Count: 1})
			}
		}, "top values"},
	}
	s := openStream(ctx, t, h.GRPCAddr(), token)
	for i, tc := range cases {
		b := &pb.CountBatch{Seq: uint64(i + 1), UnitId: "u-" + tc.name, Counts: []*pb.Count{good()}}
		tc.mod(b)
		ack := sendBatch(t, s, b)
		if ack.Status != pb.AckStatus_ACK_STATUS_REJECTED || !contains(ack.Error, tc.want) {
			t.Errorf("%s: ack %v %q, want rejected with %q", tc.name, ack.Status, ack.Error, tc.want)
		}
	}
	// Raw garbage on the gRPC port: the connection dies, the hub does not.
	for _, junk := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), {0, 0, 0, 4, 1, 0, 0, 0, 0, 0xff, 0xff}, make([]byte, 1<<16)} {
		c, err := net.Dial("tcp", h.GRPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.ReadAll(c)
		c.Close()
	}
	// A stream that starts with a batch instead of hello is refused.
	raw := openStreamNoWelcome(ctx, t, h.GRPCAddr(), token)
	_ = raw.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Batch{Batch: &pb.CountBatch{Seq: 1, UnitId: "x"}}})
	if _, err := raw.Recv(); err == nil || !contains(err.Error(), "hello") {
		t.Errorf("batch before hello: %v", err)
	}
	// Nothing of it was indexed, and the hub still takes good batches.
	if ack := sendBatch(t, openStream(ctx, t, h.GRPCAddr(), token), &pb.CountBatch{Seq: 1, UnitId: "good", Counts: []*pb.Count{good()}}); ack.Status != pb.AckStatus_ACK_STATUS_ACCEPTED {
		t.Fatalf("good batch after garbage: %v %s", ack.Status, ack.Error)
	}
	got := indexed(t, e)
	if len(got) != 1 {
		t.Fatalf("want only the good count indexed, got %v", got)
	}
	// Every refusal is counted.
	resp, err := http.Get("http://" + h.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`spikewatch_hub_batches_rejected_total{reason="invalid"} %d`, len(cases)),
		`spikewatch_hub_stream_errors_total{reason="no_hello"} 1`,
		`spikewatch_hub_batches_total{status="accepted"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// OpenSearch unreachable for 30 seconds in the middle of a replay (the hub talks to it through a
// proxy that the test cuts): the agent holds its batches, totals are exact afterwards.
func TestOpenSearchOutage(t *testing.T) {
	e := ostest.New(t)
	gen := generated(t)
	p := newProxy(t, e.URL)
	h := startHub(t, e, hubOpts{osURL: "http://" + p.addr()})
	var st agent.Stats
	done := make(chan error, 1)
	go func() { done <- runAgent(ostest.Context(t, 5*time.Minute), t, h.GRPCAddr(), gen, t.TempDir(), &st) }()
	for st.Accepted.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	p.cut(true)
	t.Logf("OpenSearch cut after %d batches", st.Accepted.Load())
	time.Sleep(30 * time.Second)
	during := st.Retried.Load()
	p.cut(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if during == 0 {
		t.Error("no batch was retried during the outage")
	}
	t.Logf("retried %d batches during the outage", during)
	assertSame(t, expected(t, gen), indexed(t, e))
}

// kill -9 of the hub process in the middle of a replay, then a restart on the same address.
func TestHubKill9(t *testing.T) {
	e := ostest.New(t)
	gen := generated(t)
	bin := filepath.Join(t.TempDir(), "spikewatch")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/spikewatch").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startProc := func() *exec.Cmd {
		cmd := exec.Command(bin, "hub", "--listen", addr, "--http", "", "--opensearch", e.URL, "--index-prefix", e.Prefix, "--dev-token", token+"=*")
		if os.Getenv("SPIKEWATCH_TEST_LOG") != "" {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	proc := startProc()
	var st agent.Stats
	done := make(chan error, 1)
	go func() { done <- runAgent(ostest.Context(t, 5*time.Minute), t, addr, gen, t.TempDir(), &st) }()
	deadline := time.Now().Add(time.Minute)
	for st.Accepted.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if err := proc.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = proc.Wait()
	killedAt := st.Accepted.Load()
	time.Sleep(2 * time.Second)
	startProc()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("hub killed after %d acked batches; agent reconnected %d times", killedAt, st.Reconnects.Load())
	if st.Reconnects.Load() == 0 {
		t.Error("the agent never reconnected")
	}
	assertSame(t, expected(t, gen), indexed(t, e))
}

func openStreamNoWelcome(ctx context.Context, t testing.TB, addr, tok string) pb.IngestService_StreamClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := pb.NewIngestServiceClient(conn).Stream(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStream(ctx context.Context, t testing.TB, addr, tok string) pb.IngestService_StreamClient {
	t.Helper()
	s := openStreamNoWelcome(ctx, t, addr, tok)
	if err := s.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Hello{Hello: &pb.Hello{AgentId: "raw-test"}}}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Recv()
	if err != nil || w.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", w, err)
	}
	return s
}

func sendBatch(t *testing.T, s pb.IngestService_StreamClient, b *pb.CountBatch) *pb.Ack {
	t.Helper()
	if err := s.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Batch{Batch: b}}); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a := r.GetAck(); a != nil {
			return a
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// proxy forwards TCP to OpenSearch; cut(true) drops every connection and refuses new ones.
type proxy struct {
	l      net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, url string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := url[len("http://"):]
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.cut(true) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) cut(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}
