// Package hub receives per-minute counts from agents over the spikewatch.v1 stream, checks who may
// write what, and indexes the counts into OpenSearch exactly once per key and input unit.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/spikewatch/spikewatch/internal/catalog"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/search"
	"github.com/spikewatch/spikewatch/internal/wire"
)

// Config is what the hub's user sets.
type Config struct {
	// GRPCAddr is the agents' stream address (host:port).
	GRPCAddr string
	// HTTPAddr serves /healthz and /metrics.
	HTTPAddr string
	// IndexPrefix names the indices ("spikewatch" -> spikewatch-counts-YYYY.MM.DD).
	IndexPrefix string
	// Retention deletes counts indices older than this (0 keeps them).
	Retention time.Duration
	// MaxConcurrentBulk bounds bulk requests in flight across all streams.
	MaxConcurrentBulk int
	// BulkTimeout bounds one bulk write.
	BulkTimeout time.Duration
	// TLS, when set, serves gRPC over TLS.
	TLS credentials.TransportCredentials
	// HubID names this replica.
	HubID string
	// StreamConcurrency bounds the batches of one stream indexed at once (default 8).
	StreamConcurrency int
}

// Settings is what the hub's code wires in.
type Settings struct {
	Logger  *slog.Logger
	Search  *search.Client
	Catalog *catalog.Catalog
	Auth    Authenticator
	// Registry receives the metrics; nil makes a new one.
	Registry *prometheus.Registry
	// Alerts, when set, serves GET /api/v1/alerts and the monitors' webhook.
	Alerts *AlertSettings
}

// Hub is a running hub.
type Hub struct {
	pb.UnimplementedIngestServiceServer
	cfg     Config
	set     Settings
	log     *slog.Logger
	m       *metrics
	reg     *prometheus.Registry
	bulkSem chan struct{}
	health  *health.Server

	grpcLis, httpLis net.Listener
	grpc             *grpc.Server
	http             *http.Server
	ready            atomic.Bool
	alertSecret      string

	bulkCh     chan *bulkJob
	stopBulker context.CancelFunc
	bulkerDone chan struct{}
}

// New checks the configuration and prepares a hub; Start runs it.
func New(cfg Config, set Settings) (*Hub, error) {
	var errs []error
	if cfg.GRPCAddr == "" {
		errs = append(errs, errors.New("hub: no gRPC listen address"))
	}
	if set.Search == nil {
		errs = append(errs, errors.New("hub: no OpenSearch client"))
	}
	if set.Auth == nil {
		errs = append(errs, errors.New("hub: no authenticator (give --dev-token)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.IndexPrefix == "" {
		cfg.IndexPrefix = "spikewatch"
	}
	if cfg.MaxConcurrentBulk <= 0 {
		cfg.MaxConcurrentBulk = 4
	}
	if cfg.BulkTimeout <= 0 {
		cfg.BulkTimeout = 30 * time.Second
	}
	if cfg.HubID == "" {
		cfg.HubID = "hub"
	}
	if cfg.StreamConcurrency <= 0 {
		cfg.StreamConcurrency = 8
	}
	if set.Catalog == nil {
		set.Catalog = catalog.Default()
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	reg := set.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Hub{
		cfg: cfg, set: set, log: set.Logger.With("component", "hub"), reg: reg, m: newMetrics(reg),
		bulkSem: make(chan struct{}, cfg.MaxConcurrentBulk), health: health.NewServer(),
		bulkCh: make(chan *bulkJob, 1024),
	}, nil
}

// GRPCAddr is the address the stream listener is bound to (after Start).
func (h *Hub) GRPCAddr() string { return h.grpcLis.Addr().String() }

// HTTPAddr is the address of /healthz and /metrics (after Start), or "".
func (h *Hub) HTTPAddr() string {
	if h.httpLis == nil {
		return ""
	}
	return h.httpLis.Addr().String()
}

// Start installs the index template, binds the listeners and serves in the background. It returns
// once the hub accepts streams.
func (h *Hub) Start(ctx context.Context) error {
	if err := h.set.Search.EnsureCountsTemplate(ctx, h.cfg.IndexPrefix); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	bctx, stop := context.WithCancel(context.Background())
	h.stopBulker, h.bulkerDone = stop, make(chan struct{})
	go h.bulker(bctx)
	var err error
	if h.grpcLis, err = net.Listen("tcp", h.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("hub: listen %s: %w", h.cfg.GRPCAddr, err)
	}
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second, // ping an idle agent every 30s
			Timeout: 10 * time.Second, // and drop it when the ping is not answered in 10s
			// Agents reconnect at least hourly, which re-authenticates them.
			MaxConnectionAge:      time.Hour,
			MaxConnectionAgeGrace: time.Minute,
		}),
		grpc.MaxRecvMsgSize(16 << 20),
		grpc.ChainStreamInterceptor(h.recoverStream),
	}
	if h.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(h.cfg.TLS))
	}
	h.grpc = grpc.NewServer(opts...)
	pb.RegisterIngestServiceServer(h.grpc, h)
	healthpb.RegisterHealthServer(h.grpc, h.health)
	go func() {
		if err := h.grpc.Serve(h.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			h.log.Error("grpc serve", "err", err)
		}
	}()
	if h.cfg.HTTPAddr != "" {
		if h.httpLis, err = net.Listen("tcp", h.cfg.HTTPAddr); err != nil {
			h.grpc.Stop()
			return fmt.Errorf("hub: listen %s: %w", h.cfg.HTTPAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", h.healthz)
		if h.set.Alerts != nil {
			if err := h.ensureWebhookSecret(ctx); err != nil {
				h.grpc.Stop()
				return fmt.Errorf("hub: %w", err)
			}
			if h.set.Alerts.Store != nil {
				mux.HandleFunc("GET /api/v1/alerts", h.handleAlerts)
			}
			mux.HandleFunc("POST /api/v1/alerts/webhook", h.handleWebhook)
		}
		h.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := h.http.Serve(h.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error("http serve", "err", err)
			}
		}()
	}
	h.ready.Store(true)
	h.log.Info("hub started", "grpc", h.GRPCAddr(), "http", h.HTTPAddr(), "prefix", h.cfg.IndexPrefix, "catalog", h.set.Catalog.Digest)
	return nil
}

// Run starts the hub and serves until ctx ends, then shuts down within 15 seconds.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	if h.cfg.Retention > 0 {
		go h.janitor(ctx)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return h.Shutdown(sctx)
}

// Shutdown stops taking streams, lets open batches finish until ctx ends, then stops.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.ready.Store(false)
	h.health.Shutdown()
	if h.grpc != nil {
		done := make(chan struct{})
		go func() { h.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			h.grpc.Stop()
		}
	}
	if h.http != nil {
		_ = h.http.Shutdown(ctx)
	}
	if h.stopBulker != nil {
		h.stopBulker()
		<-h.bulkerDone
	}
	h.log.Info("hub stopped")
	return nil
}

func (h *Hub) healthz(w http.ResponseWriter, r *http.Request) {
	if !h.ready.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	hl, err := h.set.Search.Health(ctx)
	if err != nil || hl.Status == "red" {
		http.Error(w, fmt.Sprintf("opensearch: %v %s", err, hl.Status), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "ok opensearch=%s\n", hl.Status)
}

func (h *Hub) janitor(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		deleted, err := h.set.Search.DeleteCountsBefore(ctx, h.cfg.IndexPrefix, time.Now().Add(-h.cfg.Retention))
		if err != nil && ctx.Err() == nil {
			h.log.Warn("retention", "err", err)
		} else if len(deleted) > 0 {
			h.log.Info("retention deleted indices", "indices", deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recoverStream turns a panic in a stream handler into an Internal error, logged with its value
// but not sent to the agent.
func (h *Hub) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("stream handler panic", "panic", p, "method", info.FullMethod)
			h.m.streamErrors.WithLabelValues("panic").Inc()
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(srv, ss)
}

// Stream implements spikewatch.v1.IngestService.
func (h *Hub) Stream(stream pb.IngestService_StreamServer) error {
	ctx := stream.Context()
	id, err := h.set.Auth.Authenticate(ctx, tokenFromContext(ctx))
	if err != nil {
		h.m.streamErrors.WithLabelValues("unauthenticated").Inc()
		return status.Error(codes.Unauthenticated, "spikewatch: missing or invalid credentials")
	}
	h.m.streams.Inc()
	defer h.m.streams.Dec()
	log := h.log.With("identity", id.Name)

	first, err := stream.Recv()
	if err != nil {
		return h.streamEnd(log, err)
	}
	hello := first.GetHello()
	if hello == nil {
		h.m.streamErrors.WithLabelValues("no_hello").Inc()
		return status.Error(codes.InvalidArgument, "spikewatch: the first message must be hello")
	}
	agentID := hello.AgentId
	if agentID == "" || len(agentID) > 256 {
		h.m.streamErrors.WithLabelValues("bad_hello").Inc()
		return status.Error(codes.InvalidArgument, "spikewatch: hello needs an agent_id of 1-256 bytes")
	}
	log = log.With("agent_id", agentID)
	if hello.CatalogDigest != "" && hello.CatalogDigest != h.set.Catalog.Digest {
		log.Warn("agent runs another catalog", "agent_catalog", hello.CatalogDigest, "hub_catalog", h.set.Catalog.Digest)
	}
	if err := stream.Send(&pb.StreamResponse{Msg: &pb.StreamResponse_Welcome{Welcome: &pb.Welcome{
		HubId: h.cfg.HubID, BucketSeconds: 60, CatalogYaml: nil, CatalogDigest: h.set.Catalog.Digest,
		AllowedAccounts: id.AccountList(), MaxBatchCounts: wire.MaxBatchCounts,
	}}}); err != nil {
		return h.streamEnd(log, err)
	}
	log.Info("agent connected", "version", hello.AgentVersion)

	// Batches of one stream are indexed concurrently (up to StreamConcurrency): the agent keeps
	// several in flight, and acks may come back in any order (they carry the batch's seq).
	var (
		sendMu  sync.Mutex
		retryMu sync.Mutex
		retry   = time.Second
		wg      sync.WaitGroup
		sendErr = make(chan error, 1)
		slots   = make(chan struct{}, h.cfg.StreamConcurrency)
	)
	send := func(r *pb.StreamResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(r)
	}
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if err != nil {
			return h.streamEnd(log, err)
		}
		select {
		case err := <-sendErr:
			return h.streamEnd(log, err)
		default:
		}
		switch msg := req.Msg.(type) {
		case *pb.StreamRequest_Heartbeat:
			continue
		case *pb.StreamRequest_Hello:
			h.m.streamErrors.WithLabelValues("second_hello").Inc()
			return status.Error(codes.InvalidArgument, "spikewatch: hello sent twice")
		case *pb.StreamRequest_Batch:
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return h.streamEnd(log, ctx.Err())
			}
			wg.Add(1)
			go func(b *pb.CountBatch) {
				defer wg.Done()
				defer func() { <-slots }()
				ack := h.handleBatch(ctx, log, id, agentID, b)
				var err error
				if ack.Status == pb.AckStatus_ACK_STATUS_RETRY {
					retryMu.Lock()
					d := retry
					retry = min(retry*2, 15*time.Second)
					retryMu.Unlock()
					err = send(&pb.StreamResponse{Msg: &pb.StreamResponse_FlowControl{FlowControl: &pb.FlowControl{
						RetryAfter: durationpb.New(d), Reason: ack.Error,
					}}})
				} else {
					retryMu.Lock()
					retry = time.Second
					retryMu.Unlock()
				}
				if err == nil {
					err = send(&pb.StreamResponse{Msg: &pb.StreamResponse_Ack{Ack: ack}})
				}
				if err != nil {
					select {
					case sendErr <- err:
					default:
					}
				}
			}(msg.Batch)
		default:
			h.m.streamErrors.WithLabelValues("unknown_message").Inc()
			return status.Error(codes.InvalidArgument, "spikewatch: empty or unknown message")
		}
	}
}

func (h *Hub) handleBatch(ctx context.Context, log *slog.Logger, id Identity, agentID string, b *pb.CountBatch) *pb.Ack {
	ack := &pb.Ack{Seq: b.GetSeq()}
	docs, err := wire.ToDocs(b, h.set.Catalog, id.Allows, agentID)
	if err != nil {
		reason := "invalid"
		if errors.Is(err, wire.ErrForbidden) {
			reason = "forbidden_account"
		}
		h.m.rejected.WithLabelValues(reason).Inc()
		h.m.batches.WithLabelValues("rejected").Inc()
		log.Warn("batch rejected", "seq", b.GetSeq(), "unit", b.GetUnitId(), "reason", reason, "err", err)
		ack.Status, ack.Error = pb.AckStatus_ACK_STATUS_REJECTED, err.Error()
		return ack
	}
	job := &bulkJob{docs: docs, done: make(chan error, 1)}
	select {
	case h.bulkCh <- job:
	case <-ctx.Done():
		ack.Status, ack.Error = pb.AckStatus_ACK_STATUS_RETRY, "stream ended"
		return ack
	}
	select {
	case err = <-job.done:
	case <-ctx.Done():
		ack.Status, ack.Error = pb.AckStatus_ACK_STATUS_RETRY, "stream ended"
		return ack
	}
	if err != nil {
		var be *search.BulkError
		if errors.As(err, &be) && !be.Retryable {
			// Some item can never be written (a mapping conflict): retrying will not help.
			h.m.rejected.WithLabelValues("opensearch_refused").Inc()
			h.m.batches.WithLabelValues("rejected").Inc()
			log.Error("batch refused by OpenSearch", "seq", b.GetSeq(), "unit", b.GetUnitId(), "err", err)
			ack.Status, ack.Error = pb.AckStatus_ACK_STATUS_REJECTED, err.Error()
			return ack
		}
		h.m.batches.WithLabelValues("retry").Inc()
		log.Warn("batch not indexed, agent will retry", "seq", b.GetSeq(), "err", err)
		ack.Status, ack.Error = pb.AckStatus_ACK_STATUS_RETRY, "opensearch unavailable: "+err.Error()
		return ack
	}
	h.m.countsIndexed.Add(float64(len(docs)))
	h.m.batches.WithLabelValues("accepted").Inc()
	ack.Status, ack.Indexed = pb.AckStatus_ACK_STATUS_ACCEPTED, int64(len(docs))
	return ack
}

func (h *Hub) streamEnd(log *slog.Logger, err error) error {
	if errors.Is(err, io.EOF) {
		log.Info("agent disconnected")
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Canceled {
		log.Info("agent stream cancelled")
		return err
	}
	h.m.streamErrors.WithLabelValues("recv").Inc()
	log.Warn("agent stream error", "err", err)
	return err
}

// bulkJob is the documents of one batch waiting for a bulk request, and where its outcome goes.
type bulkJob struct {
	docs []search.CountDoc
	done chan error
}

// bulker writes batches to OpenSearch with at most MaxConcurrentBulk bulk requests in flight. When
// a slot frees up it takes every batch that queued meanwhile into one request (up to 10,000
// documents), so many small batches (one CloudTrail file each) cost few requests under load, and a
// lone batch waits for nothing. Each batch still gets its own outcome: accepted only when all of
// its items were.
func (h *Hub) bulker(ctx context.Context) {
	defer close(h.bulkerDone)
	const maxDocs = 10000
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var first *bulkJob
		select {
		case first = <-h.bulkCh:
		case <-ctx.Done():
			return
		}
		select {
		case h.bulkSem <- struct{}{}:
		case <-ctx.Done():
			first.done <- fmt.Errorf("hub shutting down: %w", search.ErrUnavailable)
			return
		}
		jobs, n := []*bulkJob{first}, len(first.docs)
	drain:
		for n < maxDocs {
			select {
			case j := <-h.bulkCh:
				jobs = append(jobs, j)
				n += len(j.docs)
			default:
				break drain
			}
		}
		wg.Add(1)
		go func(jobs []*bulkJob) {
			defer wg.Done()
			defer func() { <-h.bulkSem }()
			groups := make([][]search.CountDoc, len(jobs))
			for i, j := range jobs {
				groups[i] = j.docs
			}
			start := time.Now()
			bctx, cancel := context.WithTimeout(context.Background(), h.cfg.BulkTimeout)
			errs := h.set.Search.IndexCountGroups(bctx, h.cfg.IndexPrefix, groups)
			cancel()
			h.m.bulkSeconds.Observe(time.Since(start).Seconds())
			h.m.bulkBatches.Observe(float64(len(jobs)))
			for i, j := range jobs {
				j.done <- errs[i]
			}
		}(jobs)
	}
}
