// Package workload generates realistic, deterministic CloudTrail workloads for a multi-account AWS
// Organization, with injected incidents (a leaked key launching GPU instances, a Lambda function in a
// recursive loop, a script creating hundreds of EBS volumes) and their ground truth. Tests, the demo
// and benchmarks use it.
//
// Every account has its own busy or quiet profile: per-API base rates drawn from the seed, Poisson
// counts per minute, a diurnal cycle in the account's home time zone and quieter weekends, Lambda
// functions invoked by API Gateway, EventBridge, S3 and SDK callers, EC2 launches and volumes from
// Auto Scaling, CI and people, some failures, and background calls of non-catalog APIs. The same
// Config always gives byte-identical output.
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config describes a workload. Zero fields take their defaults.
type Config struct {
	Seed     int64         `json:"seed"`
	Accounts int           `json:"accounts"`    // default 12
	Regions  []string      `json:"regions"`     // default us-east-1, eu-west-1, ap-southeast-2
	Start    time.Time     `json:"start"`       // UTC, truncated to the minute; default 2026-11-02T00:00:00Z (a Monday)
	Duration time.Duration `json:"duration_ns"` // default 72h, whole minutes
	// Incidents: nil means DefaultIncidents; an empty, non-nil slice means none.
	Incidents []Incident `json:"incidents"`
	NoiseRate float64    `json:"noise_rate"` // multiplier on background non-catalog events, default 1
	// Scale multiplies every background rate (catalog APIs and noise), default 1. Default incident
	// rates follow it, since they are set relative to each account's baseline.
	Scale       float64 `json:"scale"`
	FileMinutes int     `json:"file_minutes"` // minutes per CloudTrail file, default 5
}

type plainConfig Config

type jsonConfig struct {
	plainConfig
	Duration string `json:"duration"`
}

// MarshalJSON writes Duration as a Go duration string.
func (cfg Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonConfig{plainConfig(cfg), cfg.Duration.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (cfg *Config) UnmarshalJSON(b []byte) error {
	var j jsonConfig
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*cfg = Config(j.plainConfig)
	if j.Duration != "" {
		d, err := time.ParseDuration(j.Duration)
		if err != nil {
			return fmt.Errorf("config duration: %w", err)
		}
		cfg.Duration = d
	}
	return nil
}

// Incident kinds.
const (
	GPUMining   = "gpu_mining"   // a leaked IAM user key launching GPU instances in several regions
	LambdaLoop  = "lambda_loop"  // one function invoking itself, growing to thousands of calls a minute
	VolumeBurst = "volume_burst" // a script creating hundreds of EBS volumes
)

// Incident is an injected spike. Zero fields of an explicit incident take defaults from the kind
// and the account (API, Entity, Regions, Rate). Baseline, Events and Units are filled in Truth.
type Incident struct {
	Kind      string    `json:"kind"`
	AccountID string    `json:"account_id"`
	API       string    `json:"api"`              // catalog id
	Entity    string    `json:"entity,omitempty"` // function name for lambda_loop
	Regions   []string  `json:"regions"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Rate      float64   `json:"rate"` // extra calls per minute at the peak, over all regions

	// Baseline is the account's normal rate of API at its busiest hour, in calls per minute.
	Baseline float64 `json:"baseline,omitempty"`
	// Events and Units count the injected calls of API and their units (instances, GiB, calls).
	Events int64 `json:"events,omitempty"`
	Units  int64 `json:"units,omitempty"`
}

// Account is one member account of the generated organization.
type Account struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	OU         string            `json:"ou"`
	Tags       map[string]string `json:"tags"`
	HomeRegion string            `json:"home_region"`
	Regions    []string          `json:"regions"`    // where it normally runs
	UTCOffset  int               `json:"utc_offset"` // hours; its business day follows this zone
	Functions  []string          `json:"functions,omitempty"`
}

// Truth is the ground truth of a generated workload.
type Truth struct {
	Config    Config     `json:"config"` // with defaults and incidents filled in
	End       time.Time  `json:"end"`
	Accounts  []Account  `json:"accounts"`
	Incidents []Incident `json:"incidents"`
	Events    int64      `json:"events"`
	Files     int64      `json:"files,omitempty"`
	Bytes     int64      `json:"bytes,omitempty"` // compressed bytes of the files
}

// DefaultStart is the default start of a workload: Monday 2026-11-02 00:00 UTC.
var DefaultStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// DefaultRegions are the default regions of the organization.
var DefaultRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}

// withDefaults returns cfg with its zero fields set. Incidents are left alone.
func (cfg Config) withDefaults() Config {
	if cfg.Accounts == 0 {
		cfg.Accounts = 12
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = DefaultRegions
	}
	cfg.Regions = slices.Clone(cfg.Regions)
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	cfg.Start = cfg.Start.UTC().Truncate(time.Minute)
	if cfg.Duration == 0 {
		cfg.Duration = 72 * time.Hour
	}
	cfg.Duration = cfg.Duration.Truncate(time.Minute)
	if cfg.NoiseRate == 0 {
		cfg.NoiseRate = 1
	}
	if cfg.Scale == 0 {
		cfg.Scale = 1
	}
	if cfg.FileMinutes == 0 {
		cfg.FileMinutes = 5
	}
	return cfg
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.Accounts < 1 || cfg.Accounts > 1000 {
		errs = append(errs, fmt.Errorf("accounts %d: want 1-1000", cfg.Accounts))
	}
	if cfg.Duration < time.Minute {
		errs = append(errs, fmt.Errorf("duration %v: want at least a minute", cfg.Duration))
	}
	if cfg.NoiseRate < 0 || cfg.Scale < 0 {
		errs = append(errs, errors.New("noise rate and scale must not be negative"))
	}
	if cfg.FileMinutes < 1 || cfg.FileMinutes > 60 {
		errs = append(errs, fmt.Errorf("file minutes %d: want 1-60", cfg.FileMinutes))
	}
	seen := map[string]bool{}
	for _, r := range cfg.Regions {
		if r == "" || seen[r] {
			errs = append(errs, fmt.Errorf("region %q is empty or repeated", r))
		}
		seen[r] = true
	}
	return errors.Join(errs...)
}

// Generate writes the workload as CloudTrail log files in the S3 layout under dir,
// AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz,
// one gzip {"Records":[...]} file per account, region and FileMinutes window that has events
// (named after its delivery time, the end of the window), and dir/truth.json. dir should be empty.
// progress, when not nil, is called after every window with the files and events written so far.
func Generate(ctx context.Context, cfg Config, dir string, progress func(files, events int64)) (Truth, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Truth{}, err
	}
	return g.writeFiles(ctx, dir, progress)
}

// Events generates the workload in memory and calls fn with each CloudTrail record (its raw JSON)
// in time order, from one goroutine. record is valid only during the call (copy it to keep it). An
// error from fn stops the run and is returned.
func Events(ctx context.Context, cfg Config, fn func(account, region string, t time.Time, record []byte) error) (Truth, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Truth{}, err
	}
	return g.stream(ctx, fn)
}
