package workload

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// small is the test workload: three accounts (two busy, one sandbox) over six hours.
func small() Config { return Config{Seed: 7, Accounts: 3, Duration: 6 * time.Hour} }

// ctRecord is what the tests read back from a record.
type ctRecord struct {
	EventVersion       string
	EventID            string `json:"eventID"`
	EventTime          time.Time
	EventSource        string
	EventName          string
	AWSRegion          string
	RecipientAccountID string
	SourceIPAddress    string
	UserAgent          string
	ErrorCode          string
	EventType          string
	EventCategory      string
	ManagementEvent    bool
	UserIdentity       struct {
		Type, PrincipalID, ARN, AccountID, AccessKeyID, InvokedBy string
		SessionContext                                            *struct {
			SessionIssuer struct{ Type, ARN, UserName string }
		}
	}
	RequestParameters struct {
		FunctionName string
		InstanceType string
		InstancesSet struct{ Items []struct{ MaxCount *int } }
		Size         string
		VolumeType   string
	}
}

type event struct {
	account, region string
	t               time.Time
	rec             ctRecord
}

func collect(t *testing.T, cfg Config) ([]event, Truth) {
	t.Helper()
	var evs []event
	truth, err := Events(context.Background(), cfg, func(account, region string, at time.Time, raw []byte) error {
		var rec ctRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return err
		}
		evs = append(evs, event{account, region, at, rec})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(evs)) != truth.Events {
		t.Fatalf("streamed %d events, truth says %d", len(evs), truth.Events)
	}
	return evs, truth
}

// treeHash hashes every file's path and content under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

var fileName = regexp.MustCompile(`^AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$`)
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGenerateFilesDeterministic(t *testing.T) {
	cfg := small()
	a, b := t.TempDir(), t.TempDir()
	var calls int
	ta, err := Generate(context.Background(), cfg, a, func(files, events int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), cfg, b, nil); err != nil {
		t.Fatal(err)
	}
	if ha, hb := treeHash(t, a), treeHash(t, b); ha != hb {
		t.Fatalf("two runs differ: %s vs %s", ha, hb)
	}
	if calls == 0 {
		t.Error("progress was never called")
	}
	other := cfg
	other.Seed++
	to, err := Events(context.Background(), other, func(string, string, time.Time, []byte) error { return nil })
	if err != nil || to.Accounts[0].ID == ta.Accounts[0].ID {
		t.Errorf("another seed gives the same organization (%v)", err)
	}

	// Layout, names and content of every file.
	var files, events, size int64
	ids := map[string]bool{}
	accounts := map[string]bool{}
	for _, acc := range ta.Accounts {
		accounts[acc.ID] = true
	}
	err = filepath.WalkDir(a, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "truth.json" {
			return err
		}
		rel, _ := filepath.Rel(a, path)
		m := fileName.FindStringSubmatch(filepath.ToSlash(rel))
		if m == nil {
			t.Fatalf("bad path %s", rel)
		}
		acct, region, delivered := m[1], m[2], m[8]
		at, _ := time.Parse("20060102T1504Z", delivered)
		if m[6] != acct || m[7] != region || at.Format("2006/01/02") != m[3]+"/"+m[4]+"/"+m[5] || !accounts[acct] {
			t.Fatalf("path %s: account, region or date do not agree", rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size += int64(len(b))
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		var doc struct{ Records []ctRecord }
		if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Records) == 0 {
			t.Fatalf("%s: %d records, %v", rel, len(doc.Records), err)
		}
		files++
		events += int64(len(doc.Records))
		for i, r := range doc.Records {
			if r.RecipientAccountID != acct || r.AWSRegion != region {
				t.Fatalf("%s: record %d is for %s %s", rel, i, r.RecipientAccountID, r.AWSRegion)
			}
			if !r.EventTime.Before(at) || r.EventTime.Before(at.Add(-time.Duration(cfg.withDefaults().FileMinutes)*time.Minute)) {
				t.Fatalf("%s: record %d at %v is outside the file's window", rel, i, r.EventTime)
			}
			if i > 0 && r.EventTime.Before(doc.Records[i-1].EventTime) {
				t.Fatalf("%s: records out of order", rel)
			}
			if !uuidRE.MatchString(r.EventID) || ids[r.EventID] {
				t.Fatalf("%s: bad or repeated eventID %q", rel, r.EventID)
			}
			ids[r.EventID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != ta.Files || events != ta.Events || size != ta.Bytes || files == 0 {
		t.Errorf("found %d files, %d events, %d bytes; truth says %d, %d, %d", files, events, size, ta.Files, ta.Events, ta.Bytes)
	}

	// truth.json round-trips, and Events streams the same workload.
	var tj Truth
	b2, err := os.ReadFile(filepath.Join(a, "truth.json"))
	if err != nil || json.Unmarshal(b2, &tj) != nil {
		t.Fatalf("truth.json: %v", err)
	}
	if tj.Config.Duration != 6*time.Hour || len(tj.Incidents) != 3 || tj.Events != ta.Events {
		t.Errorf("truth.json: %+v", tj.Config)
	}
	evs, _ := collect(t, cfg)
	for _, e := range evs {
		if !ids[e.rec.EventID] {
			t.Fatalf("event %s from Events is not in the files", e.rec.EventID)
		}
	}
	again, err := Events(context.Background(), tj.Config, func(string, string, time.Time, []byte) error { return nil })
	if err != nil || again.Events != ta.Events {
		t.Errorf("truth.json's config does not reproduce the workload: %d events, %v", again.Events, err)
	}
}

func TestRecordsLookReal(t *testing.T) {
	evs, truth := collect(t, small())
	functions := map[string]bool{}
	for _, a := range truth.Accounts {
		for _, f := range a.Functions {
			functions[a.ID+"/"+f] = true
		}
	}
	for _, inc := range truth.Incidents {
		functions[inc.AccountID+"/"+inc.Entity] = true
	}
	names := map[string]int{}
	types := map[string]int{}
	var errs, fullARN, bare int
	for _, e := range evs {
		r := e.rec
		names[r.EventName]++
		types[r.UserIdentity.Type]++
		if r.EventVersion == "" || r.EventType == "" || r.SourceIPAddress == "" || r.UserAgent == "" || r.RecipientAccountID != e.account || !r.EventTime.Equal(e.t) {
			t.Fatalf("incomplete record %+v", r)
		}
		if r.ErrorCode != "" {
			errs++
		}
		switch id := r.UserIdentity; id.Type {
		case "AssumedRole":
			if id.SessionContext == nil || id.SessionContext.SessionIssuer.Type != "Role" || id.SessionContext.SessionIssuer.ARN == "" || len(id.AccessKeyID) != 20 {
				t.Fatalf("assumed role without session issuer: %+v", id)
			}
		case "IAMUser":
			if id.ARN == "" || id.AccessKeyID[:4] != "AKIA" {
				t.Fatalf("IAM user %+v", id)
			}
		case "AWSService":
			if id.InvokedBy == "" || r.SourceIPAddress != id.InvokedBy {
				t.Fatalf("AWS service %+v from %s", id, r.SourceIPAddress)
			}
		default:
			t.Fatalf("identity type %q", id.Type)
		}
		p := r.RequestParameters
		switch r.EventSource + " " + r.EventName {
		case "lambda.amazonaws.com Invoke":
			name := catalog.NormalizeEntity(catalog.NormalizeLambdaFunction, p.FunctionName)
			if !functions[e.account+"/"+name] || r.ManagementEvent || r.EventCategory != "Data" {
				t.Fatalf("invoke of %q (%s) in %s", p.FunctionName, name, e.account)
			}
			if name == p.FunctionName {
				bare++
			} else if len(p.FunctionName) > 11 && p.FunctionName[:11] == "arn:aws:lam" {
				fullARN++
			}
		case "ec2.amazonaws.com RunInstances":
			if len(p.InstancesSet.Items) != 1 || p.InstancesSet.Items[0].MaxCount == nil || *p.InstancesSet.Items[0].MaxCount < 1 || p.InstanceType == "" {
				t.Fatalf("RunInstances parameters %+v", p)
			}
		case "ec2.amazonaws.com CreateVolume":
			if n, err := strconv.Atoi(p.Size); err != nil || n < 8 || n > 500 || p.VolumeType == "" {
				t.Fatalf("CreateVolume parameters %+v", p)
			}
		}
	}
	for _, n := range []string{"Invoke", "RunInstances", "CreateVolume", "AssumeRole", "DescribeInstances", "GetObject", "ConsoleLogin"} {
		if names[n] == 0 {
			t.Errorf("no %s events", n)
		}
	}
	if names["Invoke"] < 10*names["RunInstances"] {
		t.Errorf("%d invokes vs %d RunInstances: Lambda should be far busier", names["Invoke"], names["RunInstances"])
	}
	if errs == 0 || errs > len(evs)/10 {
		t.Errorf("%d errors in %d events", errs, len(evs))
	}
	if fullARN == 0 || bare == 0 {
		t.Errorf("function names: %d full ARNs, %d bare names", fullARN, bare)
	}
	if types["AssumedRole"] == 0 || types["IAMUser"] == 0 || types["AWSService"] == 0 {
		t.Errorf("identity types %v", types)
	}
}

func TestIncidentsAreInjected(t *testing.T) {
	cfg := small()
	evs, truth := collect(t, cfg)
	if len(truth.Incidents) != 3 {
		t.Fatalf("%d incidents", len(truth.Incidents))
	}
	for _, inc := range truth.Incidents {
		if inc.Start.Before(cfg.withDefaults().Start) || inc.End.After(truth.End) || !inc.Start.Before(inc.End) {
			t.Errorf("%s: window %v..%v outside the workload", inc.Kind, inc.Start, inc.End)
		}
		if inc.Events == 0 || inc.Units < inc.Events || inc.Baseline <= 0 {
			t.Errorf("%s: events %d, units %d, baseline %g", inc.Kind, inc.Events, inc.Units, inc.Baseline)
		}
		in := func(e event) bool { return !e.t.Before(inc.Start) && e.t.Before(inc.End) }
		length := inc.End.Sub(inc.Start)
		before := func(e event) bool { return !e.t.Before(inc.Start.Add(-length)) && e.t.Before(inc.Start) }
		count := func(match func(event) bool, when func(event) bool) (n int) {
			for _, e := range evs {
				if e.account == inc.AccountID && match(e) && when(e) {
					n++
				}
			}
			return n
		}
		outside := func(e event) bool { return !in(e) }
		switch inc.Kind {
		case GPUMining:
			gpu := func(e event) bool {
				return e.rec.EventName == "RunInstances" && IsGPUInstanceType(e.rec.RequestParameters.InstanceType)
			}
			if n, out := count(gpu, in), count(gpu, outside); n != int(inc.Events) || out != 0 {
				t.Errorf("gpu_mining: %d GPU launches in the window (truth %d), %d outside", n, inc.Events, out)
			}
			regions := map[string]bool{}
			for _, e := range evs {
				if e.account == inc.AccountID && gpu(e) {
					regions[e.region] = true
				}
			}
			if len(regions) < 2 {
				t.Errorf("gpu_mining in %d regions", len(regions))
			}
		case LambdaLoop:
			fn := func(e event) bool {
				return e.rec.EventName == "Invoke" && catalog.NormalizeEntity(catalog.NormalizeLambdaFunction, e.rec.RequestParameters.FunctionName) == inc.Entity
			}
			// the loop grows: its last quarter is far busier than the same time before it began
			lastQuarter := func(e event) bool { return !e.t.Before(inc.End.Add(-length/4)) && e.t.Before(inc.End) }
			quarterBefore := func(e event) bool { return !e.t.Before(inc.Start.Add(-length/4)) && e.t.Before(inc.Start) }
			all := func(e event) bool { return e.rec.EventName == "Invoke" }
			if late, early := count(all, lastQuarter), count(all, quarterBefore); late < 5*early || late < 1000 {
				t.Errorf("lambda_loop: %d account invokes in the last quarter, %d before", late, early)
			}
			if n := count(fn, in); n < int(inc.Events) {
				t.Errorf("lambda_loop: %d invokes of %s in the window, truth %d", n, inc.Entity, inc.Events)
			}
		case VolumeBurst:
			vol := func(e event) bool { return e.rec.EventName == "CreateVolume" }
			if n, b := count(vol, in), count(vol, before); n < int(inc.Events) || n < 5*(b+1) {
				t.Errorf("volume_burst: %d CreateVolume in the window (truth %d), %d before", n, inc.Events, b)
			}
		}
	}
}

func TestDefaultIncidents(t *testing.T) {
	cfg := Config{}.withDefaults()
	incs := DefaultIncidents(Config{})
	kinds := map[string]bool{}
	accounts := map[string]bool{}
	for _, inc := range incs {
		kinds[inc.Kind], accounts[inc.AccountID] = true, true
		if d := inc.End.Sub(inc.Start); d < 20*time.Minute || d > 90*time.Minute {
			t.Errorf("%s lasts %v", inc.Kind, d)
		}
		if inc.Start.Before(cfg.Start.Add(24*time.Hour)) || inc.End.After(cfg.Start.Add(72*time.Hour)) {
			t.Errorf("%s at %v, not on day 2 or 3", inc.Kind, inc.Start)
		}
		if x := inc.Rate / inc.Baseline; x < 5 || x > 50 {
			t.Errorf("%s: rate %g is %.1fx its baseline", inc.Kind, inc.Rate, x)
		}
	}
	if len(kinds) != 3 || len(accounts) != 3 {
		t.Errorf("kinds %v in accounts %v", kinds, accounts)
	}
	if !slices.EqualFunc(incs, DefaultIncidents(Config{}), func(a, b Incident) bool { return a.AccountID == b.AccountID && a.Start.Equal(b.Start) }) {
		t.Error("DefaultIncidents is not deterministic")
	}
}

func TestExplicitIncidents(t *testing.T) {
	cfg := small()
	cfg.Incidents = []Incident{}
	without, truth := collect(t, cfg)
	if len(truth.Incidents) != 0 {
		t.Fatalf("incidents %v", truth.Incidents)
	}
	for _, e := range without {
		if IsGPUInstanceType(e.rec.RequestParameters.InstanceType) {
			t.Fatal("GPU launch without incidents")
		}
	}
	// The background does not change when incidents are added.
	with, truth := collect(t, small())
	ids := map[string]bool{}
	for _, e := range with {
		ids[e.rec.EventID] = true
	}
	for _, e := range without {
		if !ids[e.rec.EventID] {
			t.Fatalf("background event %s vanished when incidents were added", e.rec.EventID)
		}
	}
	var injected int64
	for _, inc := range truth.Incidents {
		injected += inc.Events
	}
	if extra := int64(len(with) - len(without)); extra < injected {
		t.Errorf("%d extra events for %d injected calls", extra, injected)
	}

	// An explicit incident takes its defaults; bad ones are refused.
	acct := truth.Accounts[2].ID
	start := truth.Config.Start.Add(time.Hour)
	cfg.Incidents = []Incident{{Kind: GPUMining, AccountID: acct, Start: start, End: start.Add(30 * time.Minute), Rate: 3, Regions: []string{"us-west-2"}}}
	evs, tr := collect(t, cfg)
	var gpu int
	for _, e := range evs {
		if IsGPUInstanceType(e.rec.RequestParameters.InstanceType) {
			gpu++
			if e.account != acct || e.region != "us-west-2" {
				t.Fatalf("GPU launch in %s %s", e.account, e.region)
			}
		}
	}
	if inc := tr.Incidents[0]; gpu == 0 || inc.API != "ec2:RunInstances" || int64(gpu) != inc.Events {
		t.Errorf("%d GPU launches for %+v", gpu, inc)
	}
	for _, bad := range []Incident{
		{Kind: "meteor", AccountID: acct, Start: start, End: start.Add(time.Hour)},
		{Kind: GPUMining, AccountID: "000000000000", Start: start, End: start.Add(time.Hour)},
		{Kind: GPUMining, AccountID: acct, Start: start, End: start},
		{Kind: GPUMining, AccountID: acct, Start: start, End: start.Add(24 * time.Hour)},
		{Kind: GPUMining, AccountID: acct, API: "lambda:Invoke", Start: start, End: start.Add(time.Hour)},
	} {
		cfg.Incidents = []Incident{bad}
		if _, err := Events(context.Background(), cfg, func(string, string, time.Time, []byte) error { return nil }); err == nil {
			t.Errorf("incident %+v accepted", bad)
		}
	}
}

// TestRhythm checks the diurnal cycle in each account's home time zone and quieter weekends.
func TestRhythm(t *testing.T) {
	// Friday to Sunday, at a tenth of the default rates to keep the test quick.
	cfg := Config{Seed: 3, Accounts: 3, Start: time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC), Duration: 72 * time.Hour, Scale: 0.1, Incidents: []Incident{}}
	evs, truth := collect(t, cfg)
	offset := map[string]int{}
	for _, a := range truth.Accounts {
		offset[a.ID] = a.UTCOffset
	}
	var day, night, friday, saturday int
	for _, e := range evs {
		local := e.t.Add(time.Duration(offset[e.account]) * time.Hour)
		if local.Day() == 6 { // Friday, local
			switch h := local.Hour(); {
			case h >= 11 && h < 17:
				day++
			case h < 6:
				night++
			}
			friday++
		}
		if local.Day() == 7 {
			saturday++
		}
	}
	t.Logf("Friday 11-17h %d events, 0-6h %d; Friday %d, Saturday %d", day, night, friday, saturday)
	if day < 2*night {
		t.Errorf("6 busy hours have %d events, 6 night hours %d: want a clear diurnal cycle", day, night)
	}
	if saturday > friday*8/10 {
		t.Errorf("Saturday %d events, Friday %d: want a quieter weekend", saturday, friday)
	}
}

func TestGenerateCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	begin := time.Now()
	_, err := Generate(ctx, Config{Seed: 1}, dir, func(files, _ int64) {
		if files > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Generate took %v to stop", d)
	}
	if _, err := os.Stat(filepath.Join(dir, "truth.json")); err == nil {
		t.Error("truth.json written by a cancelled run")
	}
	stop := errors.New("stop")
	n := 0
	_, err = Events(context.Background(), Config{Seed: 1}, func(string, string, time.Time, []byte) error {
		if n++; n == 100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 100 {
		t.Errorf("Events after the callback failed: err %v, %d calls", err, n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Accounts: -1},
		{Duration: time.Second},
		{FileMinutes: 90},
		{Regions: []string{"us-east-1", "us-east-1"}},
		{NoiseRate: -1},
	} {
		if _, err := Events(context.Background(), cfg, func(string, string, time.Time, []byte) error { return nil }); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// BenchmarkEvents measures generation without files: three accounts over a day.
func BenchmarkEvents(b *testing.B) {
	cfg := Config{Seed: 1, Accounts: 3, Duration: 24 * time.Hour}
	var n int64
	for b.Loop() {
		truth, err := Events(context.Background(), cfg, func(string, string, time.Time, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		n += truth.Events
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
