// Package agent reads CloudTrail, counts the catalog's APIs per minute and streams the counts to
// the hub over spikewatch.v1. A batch is forgotten only once the hub acknowledged it; until then it
// is held in memory and, with a spool, on disk.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/wire"
)

// Version is the agent's build version, sent in hello.
var Version = "dev"

// Config is what the agent's user sets.
type Config struct {
	Hub     string // host:port
	Token   string
	AgentID string
	// TLS: nil for plaintext (local use), otherwise the client TLS config.
	TLS *tls.Config
	// SpoolDir keeps unacknowledged batches across restarts ("" keeps them in memory only).
	SpoolDir string
	// Once exits when the source is drained and every batch is acknowledged.
	Once bool
	// MaxInFlight batches sent and not yet acknowledged on a stream.
	MaxInFlight int
	// MaxPending batches held before the source is paused (backpressure).
	MaxPending int
	// MaxBatchCounts splits a unit's counts into batches of at most this many.
	MaxBatchCounts int
}

// Settings is what code wires in.
type Settings struct {
	Logger  *slog.Logger
	Catalog *catalog.Catalog
	Stats   *Stats
}

// Stats are the agent's running totals (read them with the accessors; safe for concurrent use).
type Stats struct {
	Sent, Accepted, Rejected, Retried, Reconnects, CountsAcked atomic.Int64
	mu                                                         sync.Mutex
	lastError                                                  string
}

// LastError is the last rejection or stream error the agent saw.
func (s *Stats) LastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError
}

func (s *Stats) setError(e string) {
	s.mu.Lock()
	s.lastError = e
	s.mu.Unlock()
}

// Source produces input units. Run calls emit for each unit's counts (all of a unit's counts in one
// call) and returns when drained (nil) or when ctx ends. skip reports units already acknowledged.
type Source interface {
	Run(ctx context.Context, skip func(unit string) bool, emit func(ctx context.Context, unit string, counts []counting.Count) error) error
}

// Agent streams counts to a hub.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	cat   *catalog.Catalog
	spool *Spool
	stats *Stats

	mu          sync.Mutex
	queue       []*item // waiting to be sent, oldest first
	wake        chan struct{}
	slots       chan struct{}
	outstanding atomic.Int64
	settled     chan struct{}
}

type item struct {
	batch     *pb.CountBatch
	notBefore time.Time
	slot      bool
}

// New prepares an agent.
func New(cfg Config, set Settings) (*Agent, error) {
	if cfg.Hub == "" {
		return nil, errors.New("agent: no hub address (--hub)")
	}
	if cfg.AgentID == "" {
		return nil, errors.New("agent: no agent id")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 16
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 256
	}
	if cfg.MaxBatchCounts <= 0 || cfg.MaxBatchCounts > wire.MaxBatchCounts {
		cfg.MaxBatchCounts = 2000
	}
	if set.Logger == nil {
		set.Logger = slog.Default()
	}
	if set.Catalog == nil {
		set.Catalog = catalog.Default()
	}
	if set.Stats == nil {
		set.Stats = &Stats{}
	}
	a := &Agent{
		cfg: cfg, log: set.Logger.With("component", "agent", "agent_id", cfg.AgentID), cat: set.Catalog, stats: set.Stats,
		wake: make(chan struct{}, 1), slots: make(chan struct{}, cfg.MaxPending), settled: make(chan struct{}, 1),
	}
	if cfg.SpoolDir != "" {
		s, err := OpenSpool(cfg.SpoolDir)
		if err != nil {
			return nil, err
		}
		a.spool = s
	}
	return a, nil
}

// Run sends what the spool holds, then what src produces, until src is drained and (with Once)
// everything is acknowledged, or until ctx ends.
func (a *Agent) Run(ctx context.Context, src Source) error {
	defer a.spool.Close()
	pending, errs := a.spool.Pending()
	for _, err := range errs {
		a.log.Error("spool", "err", err)
	}
	if len(pending) > 0 {
		a.log.Info("resending spooled batches", "batches", len(pending))
	}
	for _, b := range pending {
		a.push(&item{batch: b})
	}
	sctx, stopSender := context.WithCancel(ctx)
	senderDone := make(chan error, 1)
	go func() { senderDone <- a.sendLoop(sctx) }()

	srcErr := src.Run(ctx, a.spool.Acked, a.emit)
	if srcErr != nil && ctx.Err() == nil {
		a.log.Error("source failed", "err", srcErr)
	}
	if srcErr == nil && a.cfg.Once {
		a.log.Info("source drained, waiting for acks", "pending", a.outstanding.Load())
		for a.outstanding.Load() > 0 {
			select {
			case <-a.settled:
			case <-ctx.Done():
			case err := <-senderDone:
				stopSender()
				return fmt.Errorf("agent: sender stopped: %w", err)
			}
			if ctx.Err() != nil {
				break
			}
		}
	} else if srcErr == nil {
		<-ctx.Done()
	}
	stopSender()
	<-senderDone
	if srcErr != nil && ctx.Err() == nil {
		return srcErr
	}
	if ctx.Err() != nil && a.cfg.Once && a.outstanding.Load() > 0 {
		return fmt.Errorf("agent: stopped with %d batches unacknowledged (spooled: %v)", a.outstanding.Load(), a.spool != nil)
	}
	return nil
}

// emit turns a unit's counts into batches, spools them and queues them, waiting for room.
func (a *Agent) emit(ctx context.Context, unit string, counts []counting.Count) error {
	if len(counts) == 0 {
		return a.spool.Settle(unit)
	}
	parts := (len(counts) + a.cfg.MaxBatchCounts - 1) / a.cfg.MaxBatchCounts
	for p := 0; p < parts; p++ {
		lo, hi := p*a.cfg.MaxBatchCounts, min((p+1)*a.cfg.MaxBatchCounts, len(counts))
		id := unit
		if parts > 1 {
			id = fmt.Sprintf("%s#%d", unit, p)
		}
		b := &pb.CountBatch{UnitId: id, Counts: wire.ToProto(counts[lo:hi])}
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := a.spool.Put(b); err != nil {
			<-a.slots
			return err
		}
		a.push(&item{batch: b, slot: true})
	}
	return nil
}

func (a *Agent) push(it *item) {
	a.outstanding.Add(1)
	a.mu.Lock()
	a.queue = append(a.queue, it)
	a.mu.Unlock()
	a.poke()
}

func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) settle(it *item) {
	if err := a.spool.Settle(it.batch.UnitId); err != nil {
		a.log.Error("spool settle", "err", err)
	}
	if it.slot {
		<-a.slots
	}
	a.outstanding.Add(-1)
	select {
	case a.settled <- struct{}{}:
	default:
	}
}

// next takes the first sendable item, or returns when the next one becomes sendable.
func (a *Agent) next(now time.Time) (*item, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	wait := time.Duration(-1)
	for i, it := range a.queue {
		if !it.notBefore.After(now) {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			return it, 0
		}
		if d := it.notBefore.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return nil, wait
}

func (a *Agent) requeueFront(its []*item) {
	a.mu.Lock()
	a.queue = append(its, a.queue...)
	a.mu.Unlock()
	a.poke()
}

func (a *Agent) sendLoop(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		connected, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = 200 * time.Millisecond
		}
		a.stats.Reconnects.Add(1)
		a.stats.setError(err.Error())
		d := backoff/2 + rand.N(backoff/2+1)
		a.log.Warn("hub stream ended, reconnecting", "err", err, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
	return nil
}

type recvd struct {
	msg *pb.StreamResponse
	err error
}

// session runs one stream until it fails or ctx ends. Batches in flight when it ends go back to
// the front of the queue.
func (a *Agent) session(ctx context.Context) (connected bool, err error) {
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS)
	}
	conn, err := grpc.NewClient(a.cfg.Hub,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", a.cfg.Hub, err)
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+a.cfg.Token)
	stream, err := pb.NewIngestServiceClient(conn).Stream(sctx)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	if err := stream.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Hello{Hello: &pb.Hello{
		AgentId: a.cfg.AgentID, AgentVersion: Version, CatalogDigest: a.cat.Digest,
	}}}); err != nil {
		return false, fmt.Errorf("send hello: %w", recvErr(stream, err))
	}
	first, err := stream.Recv()
	if err != nil {
		if status.Code(err) == codes.Unauthenticated {
			a.log.Error("hub refused the agent's credentials", "err", err)
		}
		return false, fmt.Errorf("await welcome: %w", err)
	}
	if first.GetWelcome() == nil {
		return false, errors.New("hub did not answer hello with welcome")
	}
	a.log.Info("connected to hub", "hub_id", first.GetWelcome().HubId, "accounts", first.GetWelcome().AllowedAccounts)

	in := make(chan recvd, 16)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case in <- recvd{m, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	inflight := map[uint64]*item{}
	var seq uint64
	var pauseUntil time.Time
	heartbeat := time.NewTicker(20 * time.Second)
	defer heartbeat.Stop()
	defer func() {
		var back []*item
		for _, it := range inflight {
			back = append(back, it)
		}
		if len(back) > 0 {
			a.requeueFront(back)
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Send while there is room and nothing pauses us.
		now := time.Now()
		wait := time.Duration(-1)
		for len(inflight) < a.cfg.MaxInFlight && !now.Before(pauseUntil) {
			it, w := a.next(now)
			if it == nil {
				wait = w
				break
			}
			seq++
			it.batch.Seq = seq
			if err := stream.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Batch{Batch: it.batch}}); err != nil {
				a.requeueFront([]*item{it})
				return true, fmt.Errorf("send batch: %w", recvErr(stream, err))
			}
			inflight[seq] = it
			a.stats.Sent.Add(1)
		}
		if now.Before(pauseUntil) {
			wait = pauseUntil.Sub(now)
		}
		if wait >= 0 {
			timer.Reset(wait + time.Millisecond)
		}
		select {
		case <-ctx.Done():
			_ = stream.CloseSend()
			return true, ctx.Err()
		case <-a.wake:
		case <-timer.C:
		case <-heartbeat.C:
			if err := stream.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Heartbeat{Heartbeat: &pb.Heartbeat{PendingBatches: a.outstanding.Load()}}}); err != nil {
				return true, fmt.Errorf("send heartbeat: %w", recvErr(stream, err))
			}
		case r := <-in:
			if r.err != nil {
				if errors.Is(r.err, io.EOF) {
					return true, errors.New("hub closed the stream")
				}
				return true, r.err
			}
			switch m := r.msg.Msg.(type) {
			case *pb.StreamResponse_FlowControl:
				d := m.FlowControl.GetRetryAfter().AsDuration()
				d = max(min(d, time.Minute), 100*time.Millisecond)
				pauseUntil = time.Now().Add(d)
				a.log.Warn("hub asks to hold batches", "for", d, "reason", m.FlowControl.Reason)
			case *pb.StreamResponse_Ack:
				it, ok := inflight[m.Ack.Seq]
				if !ok {
					a.log.Warn("ack for an unknown batch", "seq", m.Ack.Seq)
					continue
				}
				delete(inflight, m.Ack.Seq)
				switch m.Ack.Status {
				case pb.AckStatus_ACK_STATUS_ACCEPTED:
					a.stats.Accepted.Add(1)
					a.stats.CountsAcked.Add(int64(len(it.batch.Counts)))
					a.settle(it)
				case pb.AckStatus_ACK_STATUS_REJECTED:
					a.stats.Rejected.Add(1)
					a.stats.setError(m.Ack.Error)
					a.log.Error("hub rejected a batch; it is dropped", "unit", it.batch.UnitId, "err", m.Ack.Error)
					a.settle(it)
				default:
					a.stats.Retried.Add(1)
					it.notBefore = pauseUntil
					a.requeueFront([]*item{it})
				}
			}
		}
	}
}

// recvErr returns the stream's status when a Send failed because the stream ended.
func recvErr(stream pb.IngestService_StreamClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}
