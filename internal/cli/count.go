// Package cli implements the spikewatch commands.
package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/replay"
)

// CountRow is one line of `spikewatch count --json`.
type CountRow struct {
	Minute     string                         `json:"minute"`
	AccountID  string                         `json:"account_id"`
	Region     string                         `json:"region"`
	API        string                         `json:"api"`
	Entity     string                         `json:"entity"`
	Calls      int64                          `json:"calls"`
	Units      int64                          `json:"units"`
	Errors     int64                          `json:"errors"`
	Principals []counting.TopValue            `json:"principals,omitempty"`
	SourceIPs  []counting.TopValue            `json:"source_ips,omitempty"`
	UserAgents []counting.TopValue            `json:"user_agents,omitempty"`
	Extra      map[string][]counting.TopValue `json:"extra,omitempty"`
}

// CountFiles totals the counts of every CloudTrail file under paths.
func CountFiles(ctx context.Context, paths []string, cat *catalog.Catalog, workers int, progress io.Writer) ([]counting.Count, replay.Stats, error) {
	files, err := replay.List(paths...)
	if err != nil {
		return nil, replay.Stats{}, err
	}
	table := counting.NewTable(counting.Options{})
	var st replay.Stats
	last := time.Now()
	err = replay.Count(ctx, files, cat, counting.Options{}, workers, func(r replay.Result) error {
		st.Add(r.Stats)
		if r.Err != nil && progress != nil {
			fmt.Fprintf(progress, "spikewatch count: %v\n", r.Err)
		}
		for _, c := range r.Counts {
			table.Add(c)
		}
		if progress != nil && time.Since(last) > time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "spikewatch count: %d/%d files, %d events\n", st.Files, len(files), st.Events)
		}
		return nil
	})
	return table.Counts(), st, err
}

// Count implements `spikewatch count PATH...`.
func Count(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "one JSON object per line")
	catPath := fs.String("catalog", "", "catalog file (default: the embedded catalog)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "files read in parallel")
	quiet := fs.Bool("quiet", false, "no progress or summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: spikewatch count [--json] [--catalog FILE] [--workers N] PATH...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cat, err := catalog.Load(*catPath)
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch count:", err)
		return 1
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	start := time.Now()
	counts, st, err := CountFiles(ctx, fs.Args(), cat, *workers, progress)
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch count:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, c := range counts {
			if err := enc.Encode(Row(c)); err != nil {
				fmt.Fprintln(stderr, "spikewatch count:", err)
				return 1
			}
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MINUTE\tACCOUNT\tREGION\tAPI\tENTITY\tCALLS\tUNITS\tERRORS\tTOP PRINCIPAL")
		for _, c := range counts {
			top := ""
			if len(c.Principals) > 0 {
				top = c.Principals[0].Value
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", c.Minute.UTC().Format(time.RFC3339), c.AccountID, c.Region, c.API, c.Entity, c.Calls, c.Units, c.Errors, top)
		}
		tw.Flush()
	}
	if !*quiet {
		fmt.Fprintf(stderr, "spikewatch count: %d files, %.1f MB, %d events, %d counted, %d count rows in %s\n",
			st.Files, float64(st.Bytes)/1e6, st.Events, st.Matched, len(counts), time.Since(start).Round(time.Millisecond))
		if len(st.Rejected) > 0 {
			var parts []string
			for k, v := range st.Rejected {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(parts)
			fmt.Fprintf(stderr, "spikewatch count: rejected: %s\n", strings.Join(parts, " "))
		}
	}
	if st.ReadError > 0 {
		fmt.Fprintf(stderr, "spikewatch count: %d files could not be read whole\n", st.ReadError)
		return 1
	}
	return 0
}

// Row is the JSON form of a count.
func Row(c counting.Count) CountRow {
	return CountRow{
		Minute: c.Minute.UTC().Format(time.RFC3339), AccountID: c.AccountID, Region: c.Region, API: c.API, Entity: c.Entity,
		Calls: c.Calls, Units: c.Units, Errors: c.Errors,
		Principals: c.Principals, SourceIPs: c.SourceIPs, UserAgents: c.UserAgents, Extra: c.Extra,
	}
}
