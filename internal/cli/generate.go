package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/internal/workload"
)

// Generate runs `spikewatch generate`: it writes a realistic multi-account CloudTrail workload with
// injected incidents (see package workload) and its ground truth, truth.json. It returns the exit
// code: 0 done, 1 failed, 2 bad usage.
func Generate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for the CloudTrail files (AWSLogs/...) and truth.json (required)")
	seed := fs.Int64("seed", 1, "random seed; the same flags always write the same bytes")
	accounts := fs.Int("accounts", 12, "member accounts")
	days := fs.Int("days", 3, "length in days")
	duration := fs.Duration("duration", 0, "length as a duration, e.g. 6h (instead of --days)")
	start := fs.String("start", workload.DefaultStart.Format(time.RFC3339), "start time, RFC 3339")
	noIncidents := fs.Bool("no-incidents", false, "inject no incidents")
	noise := fs.Float64("noise", 1, "multiplier on background calls of non-catalog APIs")
	scale := fs.Float64("scale", 1, "multiplier on every background rate (the size of the demo)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: spikewatch generate --out DIR [--seed N] [--accounts N] [--days N|--duration D] [--start RFC3339] [--no-incidents] [--noise F] [--scale F]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "spikewatch generate: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected arguments %q", fs.Args())
	case *out == "":
		return bad("--out is required")
	case set["days"] && set["duration"]:
		return bad("give --days or --duration, not both")
	case *accounts < 1:
		return bad("--accounts must be at least 1")
	case *days < 1:
		return bad("--days must be at least 1")
	case set["duration"] && *duration < time.Minute:
		return bad("--duration must be at least 1m")
	case *noise <= 0 || *scale <= 0:
		return bad("--noise and --scale must be positive")
	}
	begin, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return bad("--start: %v", err)
	}
	cfg := workload.Config{Seed: *seed, Accounts: *accounts, Start: begin.UTC(), Duration: time.Duration(*days) * 24 * time.Hour,
		NoiseRate: *noise, Scale: *scale}
	if set["duration"] {
		cfg.Duration = *duration
	}
	if *noIncidents {
		cfg.Incidents = []workload.Incident{}
	}

	fail := func(err error) int {
		fmt.Fprintf(stderr, "spikewatch generate: %v\n", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(*out, "AWSLogs")); err == nil {
		fmt.Fprintf(stderr, "spikewatch generate: warning: %s already holds AWSLogs; files of another workload stay mixed in\n", *out)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	last := t0
	truth, err := workload.Generate(ctx, cfg, *out, func(files, events int64) {
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(stderr, "generate: %d files, %d events written\n", files, events)
		}
	})
	if err != nil {
		return fail(err)
	}
	printSummary(stdout, *out, truth, time.Since(t0))
	return 0
}

func printSummary(w io.Writer, dir string, t workload.Truth, took time.Duration) {
	c := t.Config
	fmt.Fprintf(w, "wrote %d accounts, %d files, %d events (%.1f MB) to %s in %.1fs\n",
		len(t.Accounts), t.Files, t.Events, float64(t.Bytes)/1e6, dir, took.Seconds())
	fmt.Fprintf(w, "window %s .. %s, seed %d, regions %s\n", c.Start.Format(time.RFC3339), t.End.Format(time.RFC3339), c.Seed, strings.Join(c.Regions, ","))
	names := map[string]string{}
	fmt.Fprintln(w, "accounts:")
	for _, a := range t.Accounts {
		names[a.ID] = a.Name
		fmt.Fprintf(w, "  %s  %-20s %-24s %s\n", a.ID, a.Name, a.OU, strings.Join(a.Regions, ","))
	}
	if len(t.Incidents) == 0 {
		fmt.Fprintln(w, "incidents: none")
	} else {
		fmt.Fprintln(w, "incidents:")
	}
	for _, inc := range t.Incidents {
		api := inc.API
		if inc.Entity != "" {
			api += " " + inc.Entity
		}
		fmt.Fprintf(w, "  %-12s %s (%s)  %s  %s .. %s  %s  peak %.4g/min (%.0fx baseline)  %d calls, %d units\n",
			inc.Kind, inc.AccountID, names[inc.AccountID], api, inc.Start.Format(time.RFC3339), inc.End.Format(time.RFC3339),
			strings.Join(inc.Regions, ","), inc.Rate, inc.Rate/max(inc.Baseline, 1e-9), inc.Events, inc.Units)
	}
	fmt.Fprintf(w, "ground truth: %s\n", filepath.Join(dir, "truth.json"))
}
