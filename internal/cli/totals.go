package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spikewatch/spikewatch/internal/search"
)

// Totals implements `spikewatch totals`: what the hub indexed, per account and API.
func Totals(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("totals", flag.ContinueOnError)
	fs.SetOutput(stderr)
	osURL := fs.String("opensearch", envOr("SPIKEWATCH_OPENSEARCH_URL", "http://127.0.0.1:9200"), "OpenSearch URL")
	prefix := fs.String("index-prefix", "spikewatch", "index name prefix")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sc, err := search.New(search.Config{URL: *osURL})
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch totals:", err)
		return 1
	}
	if err := sc.Refresh(ctx, *prefix+"-counts-*"); err != nil {
		fmt.Fprintln(stderr, "spikewatch totals:", err)
		return 1
	}
	rows, err := sc.SumCounts(ctx, *prefix)
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch totals:", err)
		return 1
	}
	type k struct{ account, api string }
	type v struct {
		calls, units, errors, minutes int64
		first, last                   time.Time
		peak                          int64
	}
	agg := map[k]*v{}
	perMinute := map[k]map[time.Time]int64{}
	for _, r := range rows {
		key := k{r.AccountID, r.API}
		a := agg[key]
		if a == nil {
			a = &v{first: r.Minute, last: r.Minute}
			agg[key] = a
			perMinute[key] = map[time.Time]int64{}
		}
		a.calls += r.Calls
		a.units += r.Units
		a.errors += r.Errors
		if r.Minute.Before(a.first) {
			a.first = r.Minute
		}
		if r.Minute.After(a.last) {
			a.last = r.Minute
		}
		perMinute[key][r.Minute] += r.Calls
	}
	keys := make([]k, 0, len(agg))
	for key, a := range agg {
		for _, c := range perMinute[key] {
			a.peak = max(a.peak, c)
		}
		a.minutes = int64(len(perMinute[key]))
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].account != keys[j].account {
			return keys[i].account < keys[j].account
		}
		return keys[i].api < keys[j].api
	})
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ACCOUNT\tAPI\tCALLS\tUNITS\tERRORS\tACTIVE MIN\tPEAK CALLS/MIN\t")
	var total int64
	for _, key := range keys {
		a := agg[key]
		total += a.calls
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", key.account, key.api, a.calls, a.units, a.errors, a.minutes, a.peak)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d accounts x APIs, %d calls, %d count rows in %s-counts-*\n", len(keys), total, len(rows), *prefix)
	return 0
}
