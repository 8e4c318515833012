package workload

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"
)

type generator struct {
	cfg       Config
	accounts  []*account
	incidents []Incident
	incFuncs  []*function // lambda_loop: the looping function
	incIP     []string    // gpu_mining: the attacker's address
	incSize   []int       // volume_burst: the script's volume size
	regions   []string    // every region with events: cfg.Regions, then incident-only regions
	end       time.Time
	windows   int
	dirs      sync.Map // directories made by writeFile
}

func newGenerator(cfg Config) (*generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	g := &generator{cfg: cfg, accounts: buildOrg(cfg), end: cfg.Start.Add(cfg.Duration)}
	if cfg.Incidents == nil {
		g.incidents = defaultIncidents(cfg, g.accounts)
	} else {
		g.incidents = slices.Clone(cfg.Incidents)
		for i := range g.incidents {
			if err := fillIncident(cfg, g.accounts, &g.incidents[i]); err != nil {
				return nil, fmt.Errorf("workload: incident %d: %w", i, err)
			}
		}
	}
	g.regions = slices.Clone(cfg.Regions)
	for k := range g.incidents {
		inc := &g.incidents[k]
		inc.Events, inc.Units = 0, 0
		for _, reg := range inc.Regions {
			if !slices.Contains(g.regions, reg) {
				g.regions = append(g.regions, reg)
			}
		}
		r := newRand(cfg.Seed, streamIncident, uint64(k))
		g.incIP = append(g.incIP, fmt.Sprintf("185.220.%d.%d", 100+r.IntN(4), 2+r.IntN(250)))
		g.incSize = append(g.incSize, pick(r, []int{100, 200, 500, 500}))
		var f *function
		if inc.Kind == LambdaLoop {
			a := g.account(inc.AccountID)
			if f = a.function(inc.Entity); f == nil || !slices.Contains(inc.Regions, f.region) {
				f = loopFunction(a, inc, r)
			}
		}
		g.incFuncs = append(g.incFuncs, f)
	}
	g.cfg.Incidents = make([]Incident, len(g.incidents))
	for i, inc := range g.incidents {
		inc.Baseline = 0
		g.cfg.Incidents[i] = inc
	}
	minutes := int(cfg.Duration / time.Minute)
	g.windows = (minutes + cfg.FileMinutes - 1) / cfg.FileMinutes
	return g, nil
}

func (g *generator) account(id string) *account {
	i := slices.IndexFunc(g.accounts, func(a *account) bool { return a.ID == id })
	return g.accounts[i]
}

// loopFunction makes the looping function of an incident that names a function the account does
// not have (or one in another region).
func loopFunction(a *account, inc *Incident, r *rand.Rand) *function {
	region := inc.Regions[0]
	f := &function{name: inc.Entity, region: region, version: 1 + r.IntN(40),
		arn: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, a.ID, inc.Entity)}
	f.execRole = &principal{kind: kindRole, name: inc.Entity + "-role", path: "service-role/", id: "AROA" + hashString(upperID, 17, a.ID, inc.Entity),
		sessions: []string{inc.Entity}, agents: []string{nodeAgent}, ips: a.natIPs}
	return f
}

// job is one account and region of a window.
type job struct {
	a      *account
	region string
	ri     int
}

func (g *generator) jobs() []job {
	var js []job
	for _, a := range g.accounts {
		for ri, reg := range g.regions {
			active := slices.Contains(a.Regions, reg)
			for _, f := range a.functions {
				active = active || f.region == reg
			}
			for _, inc := range g.incidents {
				active = active || inc.AccountID == a.ID && slices.Contains(inc.Regions, reg)
			}
			if active {
				js = append(js, job{a, reg, ri})
			}
		}
	}
	return js
}

// windowSpan returns the first minute and the end (unix seconds) of window w.
func (g *generator) windowSpan(w int) (int64, int64) {
	from := g.cfg.Start.Add(time.Duration(w*g.cfg.FileMinutes) * time.Minute).Unix()
	return from, min(from+int64(g.cfg.FileMinutes)*60, g.end.Unix())
}

// batch generates the events of job j in window w, sorted by time.
func (g *generator) batch(j job, w int) *batch {
	b := newBatch(j.a, j.region, j.ri, len(g.incidents))
	from, to := g.windowSpan(w)
	b.r = newRand(g.cfg.Seed, streamBackground, uint64(j.a.idx), uint64(j.ri), uint64(w))
	for m := from; m < to; m += 60 {
		b.background(m)
	}
	for k, inc := range g.incidents {
		if inc.AccountID != j.a.ID || !slices.Contains(inc.Regions, j.region) || inc.End.Unix() <= from || inc.Start.Unix() >= to {
			continue
		}
		b.r = newRand(g.cfg.Seed, streamIncident, uint64(k), uint64(j.ri), uint64(w))
		for m := max(from, inc.Start.Unix()); m < min(to, inc.End.Unix()); m += 60 {
			g.incident(b, k, m)
		}
	}
	b.r = nil
	b.sort()
	return b
}

// run generates the workload window by window. Each window's batches are made (and passed to each,
// when not nil) in parallel, then handed to done in job order.
func (g *generator) run(ctx context.Context, each func(b *batch, w int) error, done func(w int, bs []*batch) error) (Truth, error) {
	js := g.jobs()
	truth := Truth{Config: g.cfg, End: g.end, Incidents: slices.Clone(g.incidents)}
	for _, a := range g.accounts {
		acc := a.Account
		acc.Regions = slices.Clone(a.Regions)
		truth.Accounts = append(truth.Accounts, acc)
	}
	workers := runtime.GOMAXPROCS(0)
	bs := make([]*batch, len(js))
	errs := make([]error, len(js))
	for w := range g.windows {
		if err := ctx.Err(); err != nil {
			return truth, err
		}
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(workers, len(js)) {
			wg.Go(func() {
				for i := range next {
					if ctx.Err() != nil {
						errs[i] = ctx.Err()
						continue
					}
					bs[i] = g.batch(js[i], w)
					if each != nil {
						errs[i] = each(bs[i], w)
					}
				}
			})
		}
		for i := range js {
			next <- i
		}
		close(next)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return truth, err
			}
			for k := range truth.Incidents {
				truth.Incidents[k].Events += bs[i].incEvents[k]
				truth.Incidents[k].Units += bs[i].incUnits[k]
			}
			truth.Events += int64(len(bs[i].recs))
		}
		if err := done(w, bs); err != nil {
			return truth, err
		}
		for i, b := range bs {
			b.release()
			bs[i] = nil
		}
	}
	return truth, nil
}

func (g *generator) stream(ctx context.Context, fn func(account, region string, t time.Time, record []byte) error) (Truth, error) {
	type ref struct {
		t    int64
		b, i int
	}
	var refs []ref
	return g.run(ctx, nil, func(_ int, bs []*batch) error {
		refs = refs[:0]
		for bi, b := range bs {
			for i, r := range b.recs {
				refs = append(refs, ref{r.t, bi, i})
			}
		}
		slices.SortStableFunc(refs, func(x, y ref) int { return cmp.Compare(x.t, y.t) })
		for _, r := range refs {
			b := bs[r.b]
			if err := fn(b.a.ID, b.region, time.Unix(r.t, 0).UTC(), b.record(r.i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (g *generator) writeFiles(ctx context.Context, dir string, progress func(files, events int64)) (Truth, error) {
	var mu sync.Mutex
	var files, events, size int64
	write := func(b *batch, w int) error {
		if len(b.recs) == 0 {
			return nil
		}
		n, err := g.writeFile(dir, b, w)
		mu.Lock()
		files, events, size = files+1, events+int64(len(b.recs)), size+n
		mu.Unlock()
		return err
	}
	truth, err := g.run(ctx, write, func(int, []*batch) error {
		if progress != nil {
			progress(files, events)
		}
		return nil
	})
	truth.Files, truth.Bytes = files, size
	if err != nil {
		return truth, err
	}
	js, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return truth, err
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.json"), append(js, '\n'), 0o644); err != nil {
		return truth, fmt.Errorf("workload: %w", err)
	}
	return truth, nil
}

// gzip writers are recycled: each holds about a megabyte of compressor state.
var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// writeFile writes a batch as a CloudTrail log file named after its delivery time (the window's
// end) and returns its size.
func (g *generator) writeFile(dir string, b *batch, w int) (int64, error) {
	_, to := g.windowSpan(w)
	at := time.Unix(to, 0).UTC()
	suffix := randString(newRand(g.cfg.Seed, streamFileName, uint64(b.a.idx), uint64(b.ri), uint64(w)), alnum, 16)
	name := fmt.Sprintf("%s_CloudTrail_%s_%s_%s.json.gz", b.a.ID, b.region, at.Format("20060102T1504Z"), suffix)
	sub := filepath.Join(dir, "AWSLogs", b.a.ID, "CloudTrail", b.region, at.Format("2006/01/02"))
	if _, done := g.dirs.Load(sub); !done {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return 0, fmt.Errorf("workload: %w", err)
		}
		g.dirs.Store(sub, true)
	}
	f, err := os.Create(filepath.Join(sub, name))
	if err != nil {
		return 0, fmt.Errorf("workload: %w", err)
	}
	cw := &countWriter{w: f}
	bw := bufio.NewWriterSize(cw, 64<<10)
	zw := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(zw)
	zw.Reset(bw)
	zw.Write([]byte(`{"Records":[`))
	for i := range b.recs {
		if i > 0 {
			zw.Write([]byte{','})
		}
		zw.Write(b.record(i))
	}
	zw.Write([]byte("]}\n"))
	err = zw.Close() // gzip.Writer keeps the first write error
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("workload: write %s: %w", name, err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
