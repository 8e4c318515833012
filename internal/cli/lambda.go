package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spikewatch/spikewatch/agent/lambda"
)

// Lambda implements `spikewatch lambda`: the agent as the member stack's Lambda function (SQS
// batches of EventBridge CloudTrail events in, counts to the hub, partial batch responses out). It
// runs the Lambda Runtime API loop at AWS_LAMBDA_RUNTIME_API until the process is stopped.
//
// Deployment: the function's zip holds one file, `bootstrap`, which is the spikewatch binary itself
// (linux/arm64; provided.al2023 runs `bootstrap` with no arguments). cmd/spikewatch/main.go
// dispatches to this command when it is started without arguments and AWS_LAMBDA_RUNTIME_API is
// set, so the same binary serves as `spikewatch agent`, `spikewatch hub` and the Lambda bootstrap.
//
// Configuration comes from the environment (see agent/lambda's Env constants): HUB_ENDPOINT,
// SPIKEWATCH_TOKEN, optionally SPIKEWATCH_AUTH, SPIKEWATCH_TLS, SPIKEWATCH_TLS_CA, SPIKEWATCH_CATALOG,
// SPIKEWATCH_CATALOG_DIGEST, SPIKEWATCH_AGENT_ID and SPIKEWATCH_LOG_LEVEL. Logs are JSON on stderr,
// which Lambda sends to the function's log group. A configuration error is reported to Lambda as
// an init error, so the invocation fails and SQS keeps the messages.
func Lambda(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: spikewatch lambda [flags]\n\n"+
			"Run the agent as an AWS Lambda function behind SQS (the deployment zip's bootstrap).\n"+
			"Configured by the environment: %s, %s, %s, %s, %s, %s, %s, %s.\n\n",
			lambda.EnvHub, lambda.EnvToken, lambda.EnvAuth, lambda.EnvTLS, lambda.EnvTLSCA, lambda.EnvCatalog, lambda.EnvAgentID, lambda.EnvLogLevel)
		fs.PrintDefaults()
	}
	runtimeAPI := fs.String("runtime-api", os.Getenv(lambda.EnvRuntimeAPI), "Lambda Runtime API host:port ("+lambda.EnvRuntimeAPI+", set by Lambda)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "spikewatch lambda: unexpected arguments %q\n", fs.Args())
		return 2
	}
	level := slog.LevelInfo
	var levelErr error
	if v := os.Getenv(lambda.EnvLogLevel); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level, levelErr = slog.LevelInfo, fmt.Errorf("%s=%q: %w", lambda.EnvLogLevel, v, err)
		}
	}
	log := NewLogger(stderr, true, level)
	if levelErr != nil {
		log.Warn("log level ignored", "err", levelErr)
	}
	if *runtimeAPI == "" {
		log.Error(lambda.EnvRuntimeAPI + " is not set: `spikewatch lambda` runs inside AWS Lambda (as the function's bootstrap)")
		return 2
	}
	h, err := lambda.HandlerFromEnv(os.Getenv, log)
	if err != nil {
		log.Error("agent configuration", "err", err)
		if rerr := lambda.ReportInitError(ctx, *runtimeAPI, err); rerr != nil {
			log.Error("reporting the init error", "err", rerr)
		}
		return 1
	}
	if err := lambda.Serve(ctx, *runtimeAPI, h, log); err != nil {
		log.Error("lambda runtime", "err", err)
		return 1
	}
	return 0
}
