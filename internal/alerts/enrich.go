package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/orgs"
	"github.com/spikewatch/spikewatch/internal/pricing"
	"github.com/spikewatch/spikewatch/internal/search"
)

// Enrichment is what an alert carries besides the anomaly itself.
type Enrichment struct {
	AccountName string            `json:"account_name,omitempty"`
	OUPath      string            `json:"ou_path,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`

	Window      search.Window `json:"window"`
	UnitsName   string        `json:"units_name"`
	During      search.Sums   `json:"during"`
	DayBefore   search.Sums   `json:"day_before"`
	WeekBefore  search.Sums   `json:"week_before"`
	Median7d    search.Sums   `json:"median_7d"`
	Ratio       float64       `json:"ratio"` // during / max(median, 1) in the detector's feature
	Feature     string        `json:"feature"`
	Principals  []TopValue    `json:"principals,omitempty"`
	SourceIPs   []TopValue    `json:"source_ips,omitempty"`
	UserAgents  []TopValue    `json:"user_agents,omitempty"`
	ErrorCodes  []TopValue    `json:"error_codes,omitempty"`
	Types       []TopValue    `json:"types,omitempty"` // instance or volume types
	Regions     []TopValue    `json:"regions,omitempty"`
	CostPerHour float64       `json:"cost_per_hour"`
	CostBasis   string        `json:"cost_basis"`
	Links       Links         `json:"links"`
}

// TopValue is a context value with its call count.
type TopValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Links point a responder at the evidence.
type Links struct {
	Discover   string `json:"discover,omitempty"`
	CloudTrail string `json:"cloudtrail,omitempty"`
}

// SearchEnricher enriches from the counts indices, the organization directory and the price table.
type SearchEnricher struct {
	Search        *search.Client
	IndexPrefix   string
	Catalog       *catalog.Catalog
	Directory     orgs.Directory
	Prices        *pricing.Table
	DashboardsURL string // e.g. https://search-domain/_dashboards; "" leaves the link out
}

// Enrich implements Enricher. Parts that fail are left out and reported in the error.
func (e *SearchEnricher) Enrich(ctx context.Context, a *Alert) (*Enrichment, error) {
	api, ok := e.Catalog.ByID(a.API)
	if !ok {
		return nil, fmt.Errorf("enrich: unknown api %s", a.API)
	}
	w := search.Window{Start: a.Start, End: a.End}
	en := &Enrichment{Window: w, UnitsName: api.Units.Name, Feature: api.Detector.Feature}
	var errs []error
	if e.Directory != nil {
		acct, found, err := e.Directory.Account(ctx, a.AccountID)
		if err != nil {
			errs = append(errs, fmt.Errorf("organizations: %w", err))
		} else if found {
			en.AccountName, en.OUPath, en.Tags = acct.Name, acct.OUPath, acct.Tags
		}
	}
	f := search.KeyFilter{AccountID: a.AccountID, API: a.API, Entity: a.Entity}
	ws := []search.Window{w, shift(w, 24*time.Hour), shift(w, 7*24*time.Hour)}
	for d := 1; d <= 7; d++ {
		ws = append(ws, shift(w, time.Duration(d)*24*time.Hour))
	}
	sums, err := e.Search.SumWindows(ctx, e.IndexPrefix, f, ws)
	if err != nil {
		errs = append(errs, err)
	} else {
		en.During, en.DayBefore, en.WeekBefore = sums[0], sums[1], sums[2]
		en.Median7d = median(sums[3:])
		num, den := feature(en.During, api.Detector.Feature), feature(en.Median7d, api.Detector.Feature)
		en.Ratio = float64(num) / float64(max(den, 1))
	}
	docs, err := e.Search.CountDocs(ctx, e.IndexPrefix, f, w, 2000)
	if err != nil {
		errs = append(errs, err)
	}
	merge := func(get func(d *search.CountDoc) []search.TopValue) []TopValue {
		m := map[string]int64{}
		for i := range docs {
			for _, v := range get(&docs[i]) {
				m[v.Value] += v.Count
			}
		}
		return top(m, 5)
	}
	en.Principals = merge(func(d *search.CountDoc) []search.TopValue { return d.Principals })
	en.SourceIPs = merge(func(d *search.CountDoc) []search.TopValue { return d.SourceIPs })
	en.UserAgents = merge(func(d *search.CountDoc) []search.TopValue { return d.UserAgents })
	en.ErrorCodes = merge(func(d *search.CountDoc) []search.TopValue { return d.ErrorCodes })
	for _, field := range []string{"instance_types", "volume_types"} {
		if t := merge(func(d *search.CountDoc) []search.TopValue { return d.Extra[field] }); len(t) > 0 {
			en.Types = t
		}
	}
	regions := map[string]int64{}
	for _, d := range docs {
		regions[d.Region] += d.Calls
	}
	en.Regions = top(regions, 5)
	if e.Prices != nil {
		excess := float64(en.During.Units - en.Median7d.Units)
		if api.Cost.Model == "lambda_requests" {
			excess = float64(en.During.Calls - en.Median7d.Calls)
		}
		// Failed calls (vCPU limits, capacity) created nothing: count only the share that succeeded.
		if en.During.Calls > 0 && api.Cost.Model != "lambda_requests" {
			excess *= float64(en.During.Calls-en.During.Errors) / float64(en.During.Calls)
		}
		shares := make([]pricing.Share, len(en.Types))
		for i, t := range en.Types {
			shares[i] = pricing.Share{Value: t.Value, Count: t.Count}
		}
		est := e.Prices.Spike(api.Cost.Model, excess, w.End.Sub(w.Start).Minutes(), shares)
		en.CostPerHour, en.CostBasis = est.PerHour, est.Basis
	}
	en.Links = links(e.DashboardsURL, a, api, en.Regions)
	return en, errors.Join(errs...)
}

func feature(s search.Sums, f string) int64 {
	if f == "units" {
		return s.Units
	}
	return s.Calls
}

func shift(w search.Window, d time.Duration) search.Window {
	return search.Window{Start: w.Start.Add(-d), End: w.End.Add(-d)}
}

func median(s []search.Sums) search.Sums {
	pick := func(get func(search.Sums) int64) int64 {
		v := make([]int64, len(s))
		for i := range s {
			v[i] = get(s[i])
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	return search.Sums{
		Calls:  pick(func(x search.Sums) int64 { return x.Calls }),
		Units:  pick(func(x search.Sums) int64 { return x.Units }),
		Errors: pick(func(x search.Sums) int64 { return x.Errors }),
	}
}

func top(m map[string]int64, n int) []TopValue {
	out := make([]TopValue, 0, len(m))
	for v, c := range m {
		if v != "" {
			out = append(out, TopValue{v, c})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func links(dashboards string, a *Alert, api *catalog.API, regions []TopValue) Links {
	var l Links
	from, to := a.Start.Add(-30*time.Minute).UTC().Format(time.RFC3339), a.End.Add(30*time.Minute).UTC().Format(time.RFC3339)
	if dashboards != "" {
		q := fmt.Sprintf(`account_id:"%s" and api:"%s"`, a.AccountID, a.API)
		if a.Entity != "" {
			q += fmt.Sprintf(` and entity:"%s"`, a.Entity)
		}
		l.Discover = strings.TrimRight(dashboards, "/") + "/app/data-explorer/discover#?_g=(time:(from:'" + from + "',to:'" + to + "'))&_q=(query:(language:kuery,query:'" + url.QueryEscape(q) + "'))"
	}
	region := "us-east-1"
	if len(regions) > 0 {
		region = regions[0].Value
	}
	l.CloudTrail = fmt.Sprintf("https://%s.console.aws.amazon.com/cloudtrailv2/home?region=%s#/events?EventName=%s&StartTime=%s&EndTime=%s",
		region, region, url.QueryEscape(api.EventName), url.QueryEscape(from), url.QueryEscape(to))
	return l
}
