package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/credentials"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/search"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// NewLogger builds the process logger: text on a terminal-ish stderr, JSON with --log-json.
func NewLogger(w io.Writer, jsonFormat bool, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if jsonFormat {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Hub implements `spikewatch hub`.
func Hub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", envOr("SPIKEWATCH_LISTEN", "127.0.0.1:7443"), "gRPC address for agents (SPIKEWATCH_LISTEN)")
	httpAddr := fs.String("http", envOr("SPIKEWATCH_HTTP_LISTEN", "127.0.0.1:7080"), "address of /healthz, /metrics and the alert API (empty: off; SPIKEWATCH_HTTP_LISTEN)")
	detectMode := fs.String("detect", envOr("SPIKEWATCH_DETECT", "builtin"), "builtin (the hub's detector over the counts), opensearch (the AD plugin's detectors and alert monitors, kept in line with the catalog), or off")
	windowDelay := fs.Duration("window-delay", 3*time.Minute, "how long after a minute ends it is scored (source delivery latency)")
	snsTopic := fs.String("sns-topic-arn", os.Getenv("SPIKEWATCH_SNS_TOPIC_ARN"), "central SNS topic for alerts (SPIKEWATCH_SNS_TOPIC_ARN)")
	awsEndpoint := fs.String("aws-endpoint", os.Getenv("SPIKEWATCH_AWS_ENDPOINT"), "endpoint for every AWS API (a local emulator); default: AWS")
	webhookURL := fs.String("alert-webhook", os.Getenv("SPIKEWATCH_ALERT_WEBHOOK"), "also POST every alert to this URL (HMAC-signed with --alert-webhook-secret)")
	webhookSinkSecret := fs.String("alert-webhook-secret", os.Getenv("SPIKEWATCH_ALERT_WEBHOOK_SECRET"), "secret for --alert-webhook signatures")
	monitorSecret := fs.String("monitor-secret", os.Getenv("SPIKEWATCH_MONITOR_SECRET"), "secret the OpenSearch monitors' webhook must carry (default: generated and kept in OpenSearch)")
	publicURL := fs.String("public-url", os.Getenv("SPIKEWATCH_WEBHOOK_URL"), "URL at which OpenSearch reaches this hub's alert webhook (--detect opensearch)")
	dashboards := fs.String("dashboards-url", os.Getenv("SPIKEWATCH_DASHBOARDS_URL"), "OpenSearch Dashboards URL for alert links")
	accountsFile := fs.String("accounts", "", "accounts file (YAML or JSON) for alert enrichment instead of AWS Organizations")
	useOrgs := fs.Bool("organizations", os.Getenv("SPIKEWATCH_ORGANIZATIONS") == "true", "enrich alerts from AWS Organizations (account name, OU, tags)")
	osURL := fs.String("opensearch", envOr("SPIKEWATCH_OPENSEARCH_URL", "http://127.0.0.1:9200"), "OpenSearch URL")
	osUser := fs.String("opensearch-user", os.Getenv("SPIKEWATCH_OPENSEARCH_USER"), "OpenSearch basic-auth user")
	prefix := fs.String("index-prefix", "spikewatch", "index name prefix")
	retention := fs.Duration("retention", 30*24*time.Hour, "delete counts indices older than this (0 keeps them)")
	catPath := fs.String("catalog", "", "catalog file (default: the embedded catalog)")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM) for the gRPC listener")
	keyFile := fs.String("tls-key", "", "TLS key (PEM)")
	logJSON := fs.Bool("log-json", false, "log JSON")
	var devTokens multiFlag
	fs.Var(&devTokens, "dev-token", "TOKEN=ACCOUNTS (comma list of 12-digit accounts, or *); repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := NewLogger(stderr, *logJSON, slog.LevelInfo)
	cat, err := catalog.Load(*catPath)
	if err != nil {
		log.Error("catalog", "err", err)
		return 1
	}
	var auth hub.DevTokens
	for _, t := range devTokens {
		if err := auth.Add(t); err != nil {
			log.Error("dev token", "err", err)
			return 2
		}
	}
	if len(devTokens) == 0 {
		log.Error("no authentication configured: give --dev-token TOKEN=ACCOUNTS")
		return 2
	}
	sc, err := search.New(search.Config{URL: *osURL, Username: *osUser, Password: os.Getenv("SPIKEWATCH_OPENSEARCH_PASSWORD")})
	if err != nil {
		log.Error("opensearch", "err", err)
		return 1
	}
	cfg := hub.Config{GRPCAddr: *listen, HTTPAddr: *httpAddr, IndexPrefix: *prefix, Retention: *retention}
	if *certFile != "" {
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			log.Error("tls", "err", err)
			return 1
		}
		cfg.TLS = creds
	}
	set := hub.Settings{Logger: log, Search: sc, Catalog: cat, Auth: &auth}
	var background []func(context.Context) error
	if *detectMode != "off" {
		as, bg, err := alertSide(ctx, log, sc, cat, alertFlags{
			mode: *detectMode, prefix: *prefix, windowDelay: *windowDelay, snsTopic: *snsTopic, awsEndpoint: *awsEndpoint,
			sinkURL: *webhookURL, sinkSecret: *webhookSinkSecret, monitorSecret: *monitorSecret, publicURL: *publicURL,
			dashboards: *dashboards, accounts: *accountsFile, organizations: *useOrgs,
		})
		if err != nil {
			log.Error("alerts", "err", err)
			return 1
		}
		set.Alerts = as
		background = bg
	}
	h, err := hub.New(cfg, set)
	if err != nil {
		log.Error("hub", "err", err)
		return 2
	}
	for _, run := range background {
		go func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				log.Error("background task", "err", err)
			}
		}()
	}
	if err := h.Run(ctx); err != nil {
		log.Error("hub", "err", err)
		return 1
	}
	return 0
}

// Agent implements `spikewatch agent`.
func Agent(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hubAddr := fs.String("hub", "127.0.0.1:7443", "hub address host:port")
	token := fs.String("token", os.Getenv("SPIKEWATCH_TOKEN"), "dev token (or SPIKEWATCH_TOKEN)")
	source := fs.String("source", "stdin", "dir://PATH (replay a directory tree) or stdin")
	spool := fs.String("spool", "", "directory for batches not yet acknowledged (survives restarts)")
	once := fs.Bool("once", false, "exit 0 when the source is drained and every batch is acknowledged")
	agentID := fs.String("agent-id", "", "agent id (default: host name)")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	caFile := fs.String("tls-ca", "", "CA bundle (PEM) to verify the hub")
	catPath := fs.String("catalog", "", "catalog file (default: the embedded catalog)")
	logJSON := fs.Bool("log-json", false, "log JSON")
	metricsAddr := fs.String("metrics", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:7081)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := NewLogger(stderr, *logJSON, slog.LevelInfo)
	if *agentID == "" {
		h, _ := os.Hostname()
		*agentID = "agent-" + h
	}
	cat, err := catalog.Load(*catPath)
	if err != nil {
		log.Error("catalog", "err", err)
		return 1
	}
	cfg := agent.Config{Hub: *hubAddr, Token: *token, AgentID: *agentID, SpoolDir: *spool, Once: *once}
	if *useTLS || *caFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if *caFile != "" {
			pool, err := loadPool(*caFile)
			if err != nil {
				log.Error("tls", "err", err)
				return 1
			}
			tc.RootCAs = pool
		}
		cfg.TLS = tc
	}
	src, err := agent.ParseSource(*source, stdin, *agentID, cat, log)
	if err != nil {
		log.Error("source", "err", err)
		return 2
	}
	stats := &agent.Stats{}
	a, err := agent.New(cfg, agent.Settings{Logger: log, Catalog: cat, Stats: stats})
	if err != nil {
		log.Error("agent", "err", err)
		return 2
	}
	if *metricsAddr != "" {
		stop, err := serveAgentMetrics(ctx, *metricsAddr, a, src, log)
		if err != nil {
			log.Error("metrics", "err", err)
			return 1
		}
		defer stop()
	}
	err = a.Run(ctx, src)
	fmt.Fprintf(stderr, "spikewatch agent: batches sent=%d accepted=%d rejected=%d retried=%d reconnects=%d counts acked=%d\n",
		stats.Sent.Load(), stats.Accepted.Load(), stats.Rejected.Load(), stats.Retried.Load(), stats.Reconnects.Load(), stats.CountsAcked.Load())
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("agent", "err", err)
		return 1
	}
	if stats.Rejected.Load() > 0 {
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// serveAgentMetrics serves the agent's /metrics until stop is called.
func serveAgentMetrics(ctx context.Context, addr string, a *agent.Agent, src agent.Source, log *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	ss, _ := src.(agent.StatsSource)
	reg.MustRegister(agent.NewCollector(a, ss))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("agent metrics", "addr", l.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
