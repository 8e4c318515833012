package workload

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// kindSpec holds what an incident kind targets and how far above the account's baseline its
// default rate is.
var kindSpecs = map[string]struct {
	api      string
	multiple float64
}{
	GPUMining:   {"ec2:RunInstances", 20},
	LambdaLoop:  {"lambda:Invoke", 30},
	VolumeBurst: {"ec2:CreateVolume", 45},
}

// DefaultIncidents returns one incident of each kind, in different accounts (when there are three or
// more), placed at fixed fractions of the window (on days 2 and 3 of the default 72 hours), each
// lasting 40-75 minutes at 20-45 times its account's busiest-hour rate of the API.
func DefaultIncidents(cfg Config) []Incident {
	cfg = cfg.withDefaults()
	return defaultIncidents(cfg, buildOrg(cfg))
}

func defaultIncidents(cfg Config, org []*account) []Incident {
	used := map[*account]bool{}
	// choose picks the unused account that scores highest (or the best one if all are used).
	choose := func(score func(*account) float64) *account {
		best := slices.MaxFunc(org, func(x, y *account) int {
			return cmp.Or(cmp.Compare(b2i(!used[x]), b2i(!used[y])), cmp.Compare(score(x), score(y)), cmp.Compare(y.idx, x.idx))
		})
		used[best] = true
		return best
	}
	at := func(frac float64, length time.Duration) (time.Time, time.Time) {
		length = max(time.Minute, min(length, cfg.Duration/8).Truncate(time.Minute))
		start := cfg.Start.Add(time.Duration(frac * float64(cfg.Duration))).Truncate(time.Minute)
		end := start.Add(length)
		if limit := cfg.Start.Add(cfg.Duration); end.After(limit) {
			end = limit
		}
		return start, end
	}
	loop := choose((*account).lambdaRate)
	vol := choose(func(a *account) float64 { return a.volRate })
	gpu := choose(func(a *account) float64 { return a.runRate })

	var out []Incident
	s, e := at(0.42, 75*time.Minute)
	out = append(out, Incident{Kind: GPUMining, AccountID: gpu.ID, Regions: slices.Clone(cfg.Regions[:min(3, len(cfg.Regions))]), Start: s, End: e})
	s, e = at(0.58, 45*time.Minute)
	loopFn := ""
	if len(loop.functions) > 0 {
		// A recursive loop is typically an event-driven function; take the least busy one.
		loopFn = slices.MinFunc(loop.functions, func(x, y *function) int { return cmp.Compare(x.rate, y.rate) }).name
	}
	out = append(out, Incident{Kind: LambdaLoop, AccountID: loop.ID, Entity: loopFn, Start: s, End: e})
	s, e = at(0.79, 60*time.Minute)
	out = append(out, Incident{Kind: VolumeBurst, AccountID: vol.ID, Start: s, End: e})
	for i := range out {
		if err := fillIncident(cfg, org, &out[i]); err != nil {
			panic(err) // the defaults above are valid by construction
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// baseline is the account's busiest-hour rate of api, calls per minute.
func (a *account) baseline(api string) float64 {
	switch api {
	case "ec2:RunInstances":
		return a.runRate
	case "ec2:CreateVolume":
		return a.volRate
	default:
		return a.lambdaRate()
	}
}

// fillIncident validates inc and sets its defaults and Baseline.
func fillIncident(cfg Config, org []*account, inc *Incident) error {
	spec, ok := kindSpecs[inc.Kind]
	if !ok {
		return fmt.Errorf("incident kind %q: want gpu_mining, lambda_loop or volume_burst", inc.Kind)
	}
	i := slices.IndexFunc(org, func(a *account) bool { return a.ID == inc.AccountID })
	if i < 0 {
		return fmt.Errorf("%s incident: account %q is not in the organization", inc.Kind, inc.AccountID)
	}
	a := org[i]
	if inc.API == "" {
		inc.API = spec.api
	}
	if inc.API != spec.api {
		return fmt.Errorf("%s incident: api %q, want %s", inc.Kind, inc.API, spec.api)
	}
	inc.Start, inc.End = inc.Start.UTC().Truncate(time.Minute), inc.End.UTC().Truncate(time.Minute)
	end := cfg.Start.Add(cfg.Duration)
	if inc.Start.Before(cfg.Start) || inc.End.After(end) || !inc.Start.Before(inc.End) {
		return fmt.Errorf("%s incident: window %s..%s is empty or outside the workload %s..%s", inc.Kind,
			inc.Start.Format(time.RFC3339), inc.End.Format(time.RFC3339), cfg.Start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	if inc.Kind == LambdaLoop && inc.Entity == "" {
		if len(a.functions) == 0 {
			return fmt.Errorf("lambda_loop incident: account %s has no functions; set Entity", a.ID)
		}
		inc.Entity = a.functions[0].name
	}
	if len(inc.Regions) == 0 {
		inc.Regions = []string{a.HomeRegion}
		if f := a.function(inc.Entity); inc.Kind == LambdaLoop && f != nil {
			inc.Regions = []string{f.region}
		}
	}
	inc.Regions = slices.Clone(inc.Regions)
	for _, r := range inc.Regions {
		if r == "" || strings.ContainsAny(r, `/\ `) {
			return fmt.Errorf("%s incident: bad region %q", inc.Kind, r)
		}
	}
	inc.Baseline = a.baseline(inc.API)
	if inc.Rate == 0 {
		inc.Rate = math.Round(spec.multiple*inc.Baseline*100) / 100
	}
	if inc.Rate < 0 || math.IsNaN(inc.Rate) {
		return errors.New("incident rate must not be negative")
	}
	return nil
}

// shape is an incident's intensity (0-1 of Rate) at time t.
func (inc *Incident) shape(t time.Time) float64 {
	frac := float64(t.Sub(inc.Start)) / float64(inc.End.Sub(inc.Start))
	switch inc.Kind {
	case LambdaLoop: // grows exponentially, from 1/30 of the peak to the peak
		return math.Exp(math.Log(30) * (frac - 1))
	case GPUMining: // ramps up over the first five minutes as the attacker's script spreads
		return min(1, (t.Sub(inc.Start).Minutes()+1)/5)
	default: // a script's steady loop
		return 1
	}
}

const attackerAgent = "aws-cli/1.22.34 Python/3.10.12 Linux/5.15.0-91-generic botocore/1.23.34"

// incident adds the events of incident k in minute m to b.
func (g *generator) incident(b *batch, k int, m int64) {
	inc, a, r := &g.incidents[k], b.a, b.r
	t := time.Unix(m, 0)
	lambda := inc.Rate * inc.shape(t) / float64(len(inc.Regions))
	switch inc.Kind {
	case GPUMining:
		attacker := *a.legacy
		attacker.agents = []string{attackerAgent}
		attacker.ips = []string{g.incIP[k]}
		if t.Equal(inc.Start) {
			b.recon(m, &attacker)
		}
		for range poisson(r, lambda) {
			t := m + r.Int64N(60)
			s := b.as(&attacker)
			itype := pick(r, gpuTypes)
			var code, msg string
			switch u := r.Float64(); {
			case u < 0.2:
				code, msg = "Client.VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
			case u < 0.3:
				code, msg = "Server.InsufficientInstanceCapacity", "We currently do not have sufficient "+itype+" capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity."
			}
			b.incUnits[k] += int64(b.runInstances(t, s, itype, pick(r, []int{1, 2, 4, 5, 8, 10}), code, msg))
			b.incEvents[k]++
		}
	case LambdaLoop:
		f := g.incFuncs[k]
		throttle := 0.15 * inc.shape(t) * inc.shape(t)
		for range poisson(r, lambda) {
			b.invoke(m+r.Int64N(60), f, f.execRole, throttle)
			b.incEvents[k]++
			b.incUnits[k]++
		}
	case VolumeBurst:
		script := *a.humans
		script.sessions = script.sessions[:1]
		script.agents = []string{cliAgents[1] + " md/command#ec2.create-volume"}
		script.ips = script.ips[:1]
		for range poisson(r, lambda) {
			b.incUnits[k] += int64(b.createVolume(m+r.Int64N(60), b.as(&script), g.incSize[k], "gp3", ""))
			b.incEvents[k]++
		}
	}
}

// recon adds what an attacker with a fresh key does first in a region.
func (b *batch) recon(m int64, p *principal) {
	r := b.r
	for i, name := range []string{"GetCallerIdentity", "DescribeRegions", "DescribeInstanceTypeOfferings", "DescribeImages", "CreateKeyPair", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress"} {
		t := m + int64(i*5+r.IntN(5))
		source := "ec2.amazonaws.com"
		if name == "GetCallerIdentity" {
			source = "sts.amazonaws.com"
		}
		rec := b.call(t, b.as(p), source, name, name[:3] != "Cre" && name[:3] != "Aut")
		switch name {
		case "CreateKeyPair":
			rec.RequestParameters = obj{"keyName": "k" + randString(r, hexLow, 8)}
		case "CreateSecurityGroup":
			rec.RequestParameters = obj{"groupName": "default-" + randString(r, hexLow, 6), "groupDescription": "default"}
		case "AuthorizeSecurityGroupIngress":
			rec.RequestParameters = obj{"ipPermissions": obj{"items": []obj{{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
				"ipRanges": obj{"items": []obj{{"cidrIp": "0.0.0.0/0"}}}}}}}
		}
		b.emit(t, rec)
	}
}
