// Package pricing estimates what a usage spike costs per hour from a price table shipped as data
// (prices.json: on-demand EC2 instance prices, EBS GiB-month, Lambda requests). The estimates are
// for alerts ("this spike costs about $X per hour while it lasts"), not for billing.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
)

//go:embed prices.json
var defaultJSON []byte

// Table is a price table.
type Table struct {
	Source                 string             `json:"source"`
	Currency               string             `json:"currency"`
	EC2Hourly              map[string]float64 `json:"ec2_hourly"`
	EC2DefaultHourly       float64            `json:"ec2_default_hourly"`
	EBSGiBMonth            map[string]float64 `json:"ebs_gib_month"`
	EBSDefaultGiBMonth     float64            `json:"ebs_default_gib_month"`
	LambdaPerRequest       float64            `json:"lambda_per_request"`
	LambdaAssumedGBSeconds float64            `json:"lambda_assumed_gb_seconds_per_request"`
	LambdaPerGBSecond      float64            `json:"lambda_per_gb_second"`
}

// Default returns the embedded table.
func Default() *Table {
	t, err := Parse(defaultJSON)
	if err != nil {
		panic(fmt.Sprintf("embedded prices: %v", err)) // checked by tests
	}
	return t
}

// Load reads a table from a file, or the embedded one when path is empty.
func Load(path string) (*Table, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	return Parse(b)
}

// Parse decodes a table.
func Parse(b []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	if t.EC2DefaultHourly <= 0 || t.EBSDefaultGiBMonth <= 0 {
		return nil, fmt.Errorf("prices: default prices must be positive")
	}
	return &t, nil
}

// Share is a context value with its share of calls (instance types, volume types).
type Share struct {
	Value string
	Count int64
}

// Estimate is the cost of a spike.
type Estimate struct {
	PerHour float64 `json:"per_hour"`
	Basis   string  `json:"basis"`
}

const hoursPerMonth = 730

// Spike estimates the hourly cost of a spike of an API's units over a window.
//   - ec2_instances: units are instances requested; each keeps running at the on-demand price of
//     its instance type (weighted by the types seen), so the cost per hour is excess instances x price.
//   - ebs_gib_month: units are GiB created; cost per hour is excess GiB x GiB-month price / 730.
//   - lambda_requests: units are calls; cost per hour is the excess call rate per hour x (request
//     price + an assumed 0.0125 GB-s of duration).
//
// excessUnits is what the window had above its baseline; minutes is the window's length.
func (t *Table) Spike(model string, excessUnits float64, minutes float64, types []Share) Estimate {
	if excessUnits <= 0 || minutes <= 0 {
		return Estimate{Basis: "no excess over the baseline"}
	}
	switch model {
	case "ec2_instances":
		price := t.weighted(types, t.EC2Hourly, t.EC2DefaultHourly)
		return Estimate{PerHour: excessUnits * price, Basis: fmt.Sprintf("%.0f extra instances x $%.4f/h on-demand (by instance types seen)", excessUnits, price)}
	case "ebs_gib_month":
		price := t.weighted(types, t.EBSGiBMonth, t.EBSDefaultGiBMonth)
		return Estimate{PerHour: excessUnits * price / hoursPerMonth, Basis: fmt.Sprintf("%.0f extra GiB x $%.3f/GiB-month", excessUnits, price)}
	case "lambda_requests":
		perCall := t.LambdaPerRequest + t.LambdaAssumedGBSeconds*t.LambdaPerGBSecond
		perHour := excessUnits / minutes * 60
		return Estimate{PerHour: perHour * perCall, Basis: fmt.Sprintf("%.0f extra invocations/h x $%.8f (request + %.4f GB-s assumed)", perHour, perCall, t.LambdaAssumedGBSeconds)}
	default:
		return Estimate{Basis: "no cost model for " + model}
	}
}

func (t *Table) weighted(types []Share, prices map[string]float64, def float64) float64 {
	var sum float64
	var n int64
	for _, s := range types {
		p, ok := prices[s.Value]
		if !ok {
			p = def
		}
		sum += p * float64(s.Count)
		n += s.Count
	}
	if n == 0 {
		return def
	}
	return sum / float64(n)
}
