// Command spikewatch counts CloudTrail API calls per minute (count, agent), indexes them into
// OpenSearch (hub) and generates realistic workloads to try it on (generate).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/internal/cli"
)

const usage = `usage: spikewatch <command> [flags]

commands:
  count PATH...   count CloudTrail files (a file or directory tree) and print the counts
  agent           read CloudTrail and stream counts to a hub
  hub             receive counts from agents and index them into OpenSearch
  generate        write a realistic multi-account CloudTrail workload with incidents
  totals          what the hub indexed, per account and API
  backtest        replay CloudTrail through agent, hub and detectors: what would have alerted
  dashboards      export or import the OpenSearch Dashboards saved objects
  lambda          run as the agent's AWS Lambda function (SQS batches; the zip's bootstrap)
  version         print the version

Run 'spikewatch <command> -h' for a command's flags.
`

var version = "dev"

func main() {
	// In AWS Lambda the deployment zip's bootstrap is this binary, started without arguments.
	if len(os.Args) < 2 && os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		os.Args = append(os.Args, "lambda")
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	agent.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[2:]
	var code int
	switch os.Args[1] {
	case "count":
		code = cli.Count(ctx, args, os.Stdout, os.Stderr)
	case "agent":
		code = cli.Agent(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	case "hub":
		code = cli.Hub(ctx, args, os.Stdout, os.Stderr)
	case "generate":
		code = cli.Generate(ctx, args, os.Stdout, os.Stderr)
	case "lambda":
		code = cli.Lambda(ctx, args, os.Stdout, os.Stderr)
	case "dashboards":
		code = cli.Dashboards(ctx, args, os.Stdout, os.Stderr)
	case "backtest":
		code = cli.Backtest(ctx, args, os.Stdout, os.Stderr)
	case "totals":
		code = cli.Totals(ctx, args, os.Stdout, os.Stderr)
	case "version":
		fmt.Println(version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "spikewatch: unknown command %q\n\n%s", os.Args[1], usage)
		code = 2
	}
	stop()
	os.Exit(code)
}
