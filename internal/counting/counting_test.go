package counting

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	runInstances = "RunInstances"
	createVolume = "CreateVolume"
	invoke       = "Invoke"
)

// event returns a monitored event of the default catalog with the given request parameters.
func event(name, params string) *cloudtrail.Event {
	src := "ec2.amazonaws.com"
	if name == invoke {
		src = "lambda.amazonaws.com"
	}
	ev := &cloudtrail.Event{
		EventTime:          t0.Add(17 * time.Second),
		EventSource:        src,
		EventName:          name,
		AWSRegion:          "us-east-1",
		RecipientAccountID: "111122223333",
		SourceIPAddress:    "198.51.100.7",
		UserAgent:          "aws-cli/2.15",
		UserIdentity:       cloudtrail.UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/alice"},
	}
	if params != "" {
		ev.RequestParameters = []byte(params)
	}
	return ev
}

// one counts a single event and returns its only count, or the error.
func one(t *testing.T, ev *cloudtrail.Event) (Count, error) {
	t.Helper()
	c := New(nil, Options{})
	matched, err := c.Add(ev)
	if !matched {
		t.Fatalf("event %s not matched", ev.EventName)
	}
	if err != nil {
		if c.Len() != 0 {
			t.Fatalf("rejected event left %d keys", c.Len())
		}
		return Count{}, err
	}
	got := c.Drain()
	if len(got) != 1 {
		t.Fatalf("Drain returned %d counts, want 1", len(got))
	}
	return got[0], nil
}

func reason(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func TestUnits(t *testing.T) {
	items := func(vs ...string) string {
		var parts []string
		for _, v := range vs {
			parts = append(parts, `{"imageId":"ami-1","minCount":1,"maxCount":`+v+`}`)
		}
		return `{"instanceType":"p5.48xlarge","instancesSet":{"items":[` + strings.Join(parts, ",") + `]},"userData":"<sensitiveDataRemoved>"}`
	}
	cases := []struct {
		name, api, params string
		units             int64
		reject            Reason
	}{
		{"one item", runInstances, items("4"), 4, ""},
		{"several items", runInstances, items("3", "5", "1"), 9, ""},
		{"numeric strings", runInstances, items(`"3"`, `" 7 "`), 10, ""},
		{"whole float", runInstances, items("2.0", "1e1"), 12, ""},
		{"zero", runInstances, items("0"), 0, ""},
		{"escaped key", runInstances, `{"instancesSet":{"items":[{"max\u0043ount":6}]}}`, 6, ""},
		{"missing maxCount", runInstances, `{"instancesSet":{"items":[{"minCount":2}]}}`, 1, ""},
		{"null maxCount", runInstances, items("null"), 1, ""},
		{"empty items", runInstances, `{"instancesSet":{"items":[]}}`, 1, ""},
		{"null instancesSet", runInstances, `{"instancesSet":null}`, 1, ""},
		{"no params", runInstances, ``, 1, ""},
		{"null params", runInstances, `null`, 1, ""},
		{"max allowed", runInstances, items("1000000"), 1_000_000, ""},
		{"negative", runInstances, items("-2"), 0, ReasonBadUnits},
		{"negative string", runInstances, items(`"-2"`), 0, ReasonBadUnits},
		{"garbage string", runInstances, items(`"lots"`), 0, ReasonBadUnits},
		{"empty string", runInstances, items(`""`), 0, ReasonBadUnits},
		{"NaN string", runInstances, items(`"NaN"`), 0, ReasonBadUnits},
		{"hex string", runInstances, items(`"0x10"`), 0, ReasonBadUnits},
		{"fraction", runInstances, items("2.5"), 0, ReasonBadUnits},
		{"huge", runInstances, items("1000001"), 0, ReasonBadUnits},
		{"overflow", runInstances, items("1e400"), 0, ReasonBadUnits},
		{"huge sum", runInstances, items("600000", "600000"), 0, ReasonBadUnits},
		{"bool", runInstances, items("true"), 0, ReasonBadUnits},
		{"object", runInstances, items(`{"n":1}`), 0, ReasonBadUnits},
		{"items not an array", runInstances, `{"instancesSet":{"items":{"maxCount":2}}}`, 0, ReasonBadUnits},
		{"instancesSet a string", runInstances, `{"instancesSet":"x"}`, 0, ReasonBadUnits},
		{"params not JSON", runInstances, `{"instancesSet":`, 0, ReasonBadRequestParameters},
		{"params an array", runInstances, `[1,2]`, 0, ReasonBadRequestParameters},
		{"volume size", createVolume, `{"size":500,"volumeType":"gp3","availabilityZone":"us-east-1a"}`, 500, ""},
		{"volume size string", createVolume, `{"size":"16384"}`, 16384, ""},
		{"volume from snapshot", createVolume, `{"snapshotId":"snap-1"}`, 0, ""},
		{"volume bad size", createVolume, `{"size":"big"}`, 0, ReasonBadUnits},
		{"invoke counts calls", invoke, `{"functionName":"f","payload":{"maxCount":99}}`, 1, ""},
		{"invoke without params", invoke, ``, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := one(t, event(tc.api, tc.params))
			if r := reason(err); r != tc.reject {
				t.Fatalf("reject reason = %q (%v), want %q", r, err, tc.reject)
			}
			if err == nil && (got.Units != tc.units || got.Calls != 1) {
				t.Errorf("units, calls = %d, %d; want %d, 1", got.Units, got.Calls, tc.units)
			}
		})
	}
}

func TestRejectErrorMessage(t *testing.T) {
	_, err := one(t, event(runInstances, `{"instancesSet":{"items":[{"maxCount":-3}]}}`))
	var re *RejectError
	if !errors.As(err, &re) || re.API != "ec2:RunInstances" || re.Reason != ReasonBadUnits {
		t.Fatalf("err = %#v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "ec2:RunInstances") || !strings.Contains(msg, "maxCount") || !strings.Contains(msg, "negative") {
		t.Errorf("message %q lacks the API, path or cause", msg)
	}
}

func TestEntity(t *testing.T) {
	cases := []struct {
		name, params, entity string
		reject               Reason
	}{
		{"name", `{"functionName":"resize-images"}`, "resize-images", ""},
		{"name with alias", `{"functionName":"resize-images:prod"}`, "resize-images", ""},
		{"partial ARN", `{"functionName":"111122223333:function:resize-images"}`, "resize-images", ""},
		{"full ARN", `{"functionName":"arn:aws:lambda:us-east-1:111122223333:function:resize-images"}`, "resize-images", ""},
		{"qualified ARN", `{"functionName":"arn:aws:lambda:us-east-1:111122223333:function:resize-images:7"}`, "resize-images", ""},
		{"escaped", `{"functionName":"resize\u002dimages"}`, "resize-images", ""},
		{"spaces", `{"functionName":"  resize-images "}`, "resize-images", ""},
		{"missing", `{"invocationType":"Event"}`, "", ""},
		{"null", `{"functionName":null}`, "", ""},
		{"no params", ``, "", ""},
		{"number", `{"functionName":42}`, "", ReasonBadEntity},
		{"object", `{"functionName":{"name":"f"}}`, "", ReasonBadEntity},
		{"duplicated", `{"functionName":"a","functionName":"b"}`, "", ReasonBadEntity},
		{"params a string", `"f"`, "", ReasonBadRequestParameters},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := one(t, event(invoke, tc.params))
			if r := reason(err); r != tc.reject {
				t.Fatalf("reject reason = %q (%v), want %q", r, err, tc.reject)
			}
			if err == nil && got.Entity != tc.entity {
				t.Errorf("entity = %q, want %q", got.Entity, tc.entity)
			}
		})
	}
	// Every spelling of one function lands on one key.
	c := New(nil, Options{})
	for _, fn := range []string{"f", "f:prod", "111122223333:function:f", "arn:aws:lambda:us-east-1:111122223333:function:f:3"} {
		c.Add(event(invoke, `{"functionName":"`+fn+`"}`))
	}
	if got := c.Drain(); len(got) != 1 || got[0].Calls != 4 || got[0].Entity != "f" {
		t.Errorf("counts = %+v, want one key f with 4 calls", got)
	}
}

func TestEntityTruncated(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got, err := one(t, event(invoke, `{"functionName":"`+long+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entity) > maxValueLen || !utf8.ValidString(got.Entity) || !strings.HasPrefix(long, got.Entity) {
		t.Errorf("entity of %d bytes, valid UTF-8 %v", len(got.Entity), utf8.ValidString(got.Entity))
	}
}

func TestContext(t *testing.T) {
	c := New(nil, Options{})
	add := func(ev *cloudtrail.Event) {
		t.Helper()
		if _, err := c.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		ev := event(runInstances, `{"instanceType":"p5.48xlarge","instancesSet":{"items":[{"maxCount":2}]}}`)
		if i%3 == 0 {
			ev.RequestParameters = []byte(`{"instanceType":"t3.micro"}`)
			ev.UserIdentity = cloudtrail.UserIdentity{Type: "AssumedRole", ARN: "", IssuerARN: "arn:aws:iam::111122223333:role/ci"}
			ev.SourceIPAddress = "203.0.113.9"
			ev.UserAgent = strings.Repeat("a", 1000)
			ev.ErrorCode = "Client.UnauthorizedOperation"
		}
		add(ev)
	}
	got := c.Drain()
	if len(got) != 1 {
		t.Fatalf("%d counts", len(got))
	}
	g := got[0]
	if g.Calls != 6 || g.Units != 2*4+1*2 || g.Errors != 2 {
		t.Errorf("calls, units, errors = %d, %d, %d; want 6, 10, 2", g.Calls, g.Units, g.Errors)
	}
	want := map[string][]TopValue{
		"principals":     {{"arn:aws:iam::111122223333:user/alice", 4}, {"arn:aws:iam::111122223333:role/ci", 2}},
		"source_ips":     {{"198.51.100.7", 4}, {"203.0.113.9", 2}},
		"user_agents":    {{"aws-cli/2.15", 4}, {strings.Repeat("a", maxValueLen), 2}},
		"error_codes":    {{"Client.UnauthorizedOperation", 2}},
		"instance_types": {{"p5.48xlarge", 4}, {"t3.micro", 2}},
	}
	have := map[string][]TopValue{
		"principals": g.Principals, "source_ips": g.SourceIPs, "user_agents": g.UserAgents,
		"error_codes": g.ErrorCodes, "instance_types": g.Extra["instance_types"],
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("context:\n got %v\nwant %v", have, want)
	}
	if len(g.Extra) != 1 {
		t.Errorf("Extra = %v, want instance_types only", g.Extra)
	}
}

func TestErrors(t *testing.T) {
	c := New(nil, Options{})
	codes := []string{"", "AccessDenied", "", "ThrottlingException", "AccessDenied", ""}
	for _, code := range codes {
		ev := event(createVolume, `{"size":10}`)
		ev.ErrorCode = code
		c.Add(ev)
	}
	g := c.Drain()[0]
	if g.Calls != 6 || g.Errors != 3 || g.Units != 60 {
		t.Errorf("calls, errors, units = %d, %d, %d; want 6, 3, 60", g.Calls, g.Errors, g.Units)
	}
	want := []TopValue{{"AccessDenied", 2}, {"ThrottlingException", 1}}
	if !reflect.DeepEqual(g.ErrorCodes, want) {
		t.Errorf("ErrorCodes = %v, want %v", g.ErrorCodes, want)
	}
}

func TestUnmatched(t *testing.T) {
	c := New(nil, Options{})
	for _, ev := range []*cloudtrail.Event{
		{EventSource: "ec2.amazonaws.com", EventName: "DescribeInstances", EventTime: t0},
		{EventSource: "s3.amazonaws.com", EventName: "Invoke", EventTime: t0},
		{EventSource: "lambda.amazonaws.com", EventName: "invoke", EventTime: t0},
		{EventSource: "ec2.amazonaws.com", EventName: "Describe", EventTime: t0, RequestParameters: []byte("{not json")},
		nil,
	} {
		matched, err := c.Add(ev)
		if matched || err != nil {
			t.Errorf("Add(%+v) = %v, %v; want false, nil", ev, matched, err)
		}
	}
	if c.Len() != 0 || len(c.Drain()) != 0 {
		t.Errorf("unmatched events made counts")
	}
}

func TestBadTime(t *testing.T) {
	ev := event(createVolume, `{"size":1}`)
	ev.EventTime = time.Time{}
	if _, err := one(t, ev); reason(err) != ReasonBadTime {
		t.Errorf("err = %v, want bad_time", err)
	}
}

func TestRejectChangesNothing(t *testing.T) {
	c := New(nil, Options{})
	c.Add(event(runInstances, `{"instancesSet":{"items":[{"maxCount":2}]}}`))
	before := c.Drain()
	c.Add(event(runInstances, `{"instancesSet":{"items":[{"maxCount":2}]}}`))
	bad := event(runInstances, `{"instanceType":"x9.huge","instancesSet":{"items":[{"maxCount":2},{"maxCount":-1}]}}`)
	bad.ErrorCode = "Boom"
	bad.UserIdentity.ARN = "arn:aws:iam::111122223333:user/mallory"
	if _, err := c.Add(bad); reason(err) != ReasonBadUnits {
		t.Fatalf("err = %v", err)
	}
	if after := c.Drain(); !reflect.DeepEqual(after, before) {
		t.Errorf("a rejected event changed the counts:\n%+v\n%+v", before, after)
	}
}

func TestMinuteTruncation(t *testing.T) {
	instant := time.Date(2026, 3, 1, 23, 59, 59, 999_999_999, time.UTC)
	want := time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("IST", 5*3600+30*60),
		time.FixedZone("NPT", 5*3600+45*60),
		time.FixedZone("NST", -(3*3600 + 30*60)),
		time.FixedZone("LMT", 17*60+30), // a historical offset with seconds
		time.FixedZone("odd", -1234),
	}
	c := New(nil, Options{})
	for _, z := range zones {
		ev := event(createVolume, `{"size":1}`)
		ev.EventTime = instant.In(z)
		c.Add(ev)
		ev = event(createVolume, `{"size":1}`)
		ev.EventTime = instant.Add(time.Nanosecond).In(z) // the next minute
		c.Add(ev)
	}
	got := c.Drain()
	if len(got) != 2 {
		t.Fatalf("%d counts, want 2: %+v", len(got), got)
	}
	for i, g := range got {
		w := want.Add(time.Duration(i) * time.Minute)
		if !g.Minute.Equal(w) || g.Minute.Location() != time.UTC || g.Minute != w || g.Calls != int64(len(zones)) {
			t.Errorf("count %d: minute %v (%v), calls %d; want %v, %d", i, g.Minute, g.Minute.Location(), g.Calls, w, len(zones))
		}
	}
}

// keyedEvent returns an event for key number i of a small grid of minutes, accounts, regions, APIs
// and functions.
func keyedEvent(r *rand.Rand) *cloudtrail.Event {
	var ev *cloudtrail.Event
	switch r.IntN(3) {
	case 0:
		ev = event(runInstances, fmt.Sprintf(`{"instanceType":"t%d.large","instancesSet":{"items":[{"maxCount":%d}]}}`, r.IntN(3), r.IntN(4)))
	case 1:
		ev = event(createVolume, fmt.Sprintf(`{"size":%d,"volumeType":"gp%d"}`, r.IntN(100), 2+r.IntN(2)))
	default:
		ev = event(invoke, fmt.Sprintf(`{"functionName":"fn-%d"}`, r.IntN(3)))
	}
	ev.EventTime = t0.Add(time.Duration(r.IntN(5*60)) * time.Second)
	ev.RecipientAccountID = fmt.Sprintf("%012d", r.IntN(3))
	ev.AWSRegion = []string{"us-east-1", "eu-west-1"}[r.IntN(2)]
	ev.UserIdentity.ARN = fmt.Sprintf("arn:aws:iam::1:user/u%d", r.IntN(4))
	ev.SourceIPAddress = fmt.Sprintf("10.0.0.%d", r.IntN(4))
	if r.IntN(5) == 0 {
		ev.ErrorCode = []string{"AccessDenied", "Throttling"}[r.IntN(2)]
	}
	return ev
}

func TestDeterministicOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var evs []*cloudtrail.Event
	for range 500 {
		evs = append(evs, keyedEvent(r))
	}
	var first []Count
	for round := range 3 {
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		c := New(nil, Options{})
		for _, ev := range evs {
			if _, err := c.Add(ev); err != nil {
				t.Fatal(err)
			}
		}
		n := c.Len()
		got := c.Drain()
		if len(got) != n || c.Len() != 0 || len(c.Drain()) != 0 {
			t.Fatalf("Drain returned %d of %d keys and left %d", len(got), n, c.Len())
		}
		for i := 1; i < len(got); i++ {
			if !Less(got[i-1].Key, got[i].Key) {
				t.Fatalf("counts %d and %d out of order: %+v, %+v", i-1, i, got[i-1].Key, got[i].Key)
			}
		}
		if round == 0 {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("round %d differs from round 0", round)
		}
	}
}

func TestLess(t *testing.T) {
	base := Key{Minute: t0, AccountID: "1", Region: "r", API: "a", Entity: "e"}
	later := []func(*Key){
		func(k *Key) { k.Minute = k.Minute.Add(time.Minute) },
		func(k *Key) { k.AccountID = "2" },
		func(k *Key) { k.Region = "s" },
		func(k *Key) { k.API = "b" },
		func(k *Key) { k.Entity = "f" },
	}
	for i, f := range later {
		k := base
		f(&k)
		if !Less(base, k) || Less(k, base) {
			t.Errorf("field %d does not order keys", i)
		}
	}
	if Less(base, base) {
		t.Error("Less(k, k)")
	}
	// Minute outranks every later field.
	k := Key{Minute: t0.Add(-time.Minute), AccountID: "9"}
	if !Less(k, base) {
		t.Error("an earlier minute should come first")
	}
}

func TestDrainBefore(t *testing.T) {
	c := New(nil, Options{})
	for m := range 5 {
		for _, acct := range []string{"2", "1"} {
			ev := event(createVolume, `{"size":3}`)
			ev.EventTime = t0.Add(time.Duration(m)*time.Minute + 30*time.Second)
			ev.RecipientAccountID = acct
			c.Add(ev)
		}
	}
	cut := t0.Add(2*time.Minute + 10*time.Second) // inside minute 2: minutes 0, 1 and 2 start before it
	got := c.DrainBefore(cut)
	if len(got) != 6 || c.Len() != 4 {
		t.Fatalf("drained %d, left %d; want 6, 4", len(got), c.Len())
	}
	for i, g := range got {
		if wantMin := t0.Add(time.Duration(i/2) * time.Minute); !g.Minute.Equal(wantMin) || g.AccountID != []string{"1", "2"}[i%2] {
			t.Errorf("count %d = %v %s", i, g.Minute, g.AccountID)
		}
	}
	if got := c.DrainBefore(t0.Add(3 * time.Minute)); len(got) != 0 {
		t.Errorf("minute 3 is not before 00:03: drained %d", len(got))
	}
	// A late event for a drained minute comes back on its own.
	late := event(createVolume, `{"size":3}`)
	late.EventTime = t0
	c.Add(late)
	if got := c.DrainBefore(t0.Add(time.Minute)); len(got) != 1 || got[0].Calls != 1 || !got[0].Minute.Equal(t0) {
		t.Errorf("late event: %+v", got)
	}
	if got := c.Drain(); len(got) != 4 || c.Len() != 0 {
		t.Errorf("final drain %d, left %d", len(got), c.Len())
	}
}

// TestTableMergeEqualsSingleCounter counts random events once with one Counter, and again split into
// random batches drained into a Table: the totals are the same, context included (the few distinct
// values per key stay within the candidates, where counting is exact).
func TestTableMergeEqualsSingleCounter(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	for trial := range 20 {
		evs := make([]*cloudtrail.Event, 200+r.IntN(2000))
		for i := range evs {
			evs[i] = keyedEvent(r)
		}
		whole := New(nil, Options{})
		for _, ev := range evs {
			whole.Add(ev)
		}
		want := whole.Drain()

		tab := NewTable(Options{})
		c := New(nil, Options{})
		for i, ev := range evs {
			c.Add(ev)
			if r.IntN(50) == 0 || i == len(evs)-1 {
				var batch []Count
				if r.IntN(2) == 0 {
					batch = c.Drain()
				} else {
					batch = c.DrainBefore(ev.EventTime.Add(-time.Duration(r.IntN(3)) * time.Minute))
				}
				for _, b := range batch {
					tab.Add(b)
				}
			}
		}
		for _, b := range c.Drain() {
			tab.Add(b)
		}
		got := tab.Counts()
		if tab.Len() != len(want) || !reflect.DeepEqual(got, want) {
			t.Fatalf("trial %d: table of %d keys differs from the single counter's %d", trial, tab.Len(), len(want))
		}
	}
}

func TestTableTruncatesAndNormalizes(t *testing.T) {
	tab := NewTable(Options{TopN: 2, Candidates: 3})
	ist := time.FixedZone("IST", 5*3600+30*60)
	k := Key{Minute: t0.Add(20 * time.Second).In(ist), AccountID: "1", Region: "r", API: "a"}
	tab.Add(Count{Key: k, Calls: 3, Principals: []TopValue{{"a", 2}, {"b", 1}}})
	k.Minute = t0
	tab.Add(Count{Key: k, Calls: 4, Principals: []TopValue{{"c", 2}, {"b", 2}}, Extra: map[string][]TopValue{"x": {{"v", 4}}}})
	got := tab.Counts()
	if len(got) != 1 {
		t.Fatalf("%d keys; minutes in other zones or seconds should merge", len(got))
	}
	g := got[0]
	want := []TopValue{{"b", 3}, {"a", 2}}
	if g.Calls != 7 || !g.Minute.Equal(t0) || g.Minute.Location() != time.UTC || !reflect.DeepEqual(g.Principals, want) {
		t.Errorf("got %+v, want 7 calls at %v, principals %v", g, t0, want)
	}
	if !reflect.DeepEqual(g.Extra, map[string][]TopValue{"x": {{"v", 4}}}) {
		t.Errorf("Extra = %v", g.Extra)
	}
	g.Principals[0].Count = 99 // the caller's copy
	if tab.Counts()[0].Principals[0].Count != 3 {
		t.Error("Counts shares memory with the table")
	}
}

func TestTopBounded(t *testing.T) {
	opts := Options{TopN: 5, Candidates: 32}
	c := New(nil, opts)
	const heavy = "arn:aws:iam::111122223333:user/leaked"
	r := rand.New(rand.NewPCG(3, 3))
	calls := 0
	for i := range 10_000 {
		ev := event(invoke, `{"functionName":"f"}`)
		ev.UserIdentity.ARN = fmt.Sprintf("arn:aws:iam::111122223333:user/u%05d", i)
		ev.SourceIPAddress = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
		c.Add(ev)
		calls++
		if r.IntN(10) == 0 { // ~1,000 calls from the heavy hitter, spread out
			ev.UserIdentity.ARN = heavy
			c.Add(ev)
			calls++
		}
	}
	for _, keys := range c.minutes {
		for _, a := range keys {
			for i, tk := range a.ctx {
				if len(tk.e) > opts.Candidates {
					t.Errorf("field %d holds %d candidates", i, len(tk.e))
				}
			}
		}
	}
	got := c.Drain()
	if len(got) != 1 || got[0].Calls != int64(calls) {
		t.Fatalf("counts %d, calls %d; want 1, %d (calls are exact)", len(got), got[0].Calls, calls)
	}
	p := got[0].Principals
	if len(p) != opts.TopN || p[0].Value != heavy || p[0].Count < 900 || p[0].Count > int64(calls-10_000) {
		t.Errorf("principals = %v; want %s first with about 1000 calls", p, heavy)
	}
	for _, v := range p[1:] {
		if v.Count != 1 { // reported counts are lower bounds: each other principal called once
			t.Errorf("principal %s reported %d calls, made 1", v.Value, v.Count)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want Options }{
		{Options{}, Options{TopN: 5, Candidates: 32}},
		{Options{TopN: -1, Candidates: -1}, Options{TopN: 5, Candidates: 32}},
		{Options{TopN: 50}, Options{TopN: 50, Candidates: 50}},
		{Options{TopN: 1, Candidates: 2}, Options{TopN: 1, Candidates: 2}},
	} {
		if got := tc.in.withDefaults(); got != tc.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCustomCatalogPaths(t *testing.T) {
	cat, err := catalog.Parse([]byte(`version: 1
apis:
  - id: s3:PutObject
    event_source: s3.amazonaws.com
    event_name: PutObject
    units:
      name: bytes
      field: requestParameters.parts[].sizes[]
    entity: {name: bucket, field: requestParameters.bucketName}
    context:
      parts: requestParameters.parts
      storage: requestParameters.storage.class
      tier: requestParameters.storage.tier
      outside: responseElements.x
`))
	if err != nil {
		t.Fatal(err)
	}
	c := New(cat, Options{})
	ev := &cloudtrail.Event{
		EventSource: "s3.amazonaws.com", EventName: "PutObject", EventTime: t0,
		RequestParameters: []byte(`{"bucketName":"logs","parts":[{"sizes":[1,2]},{"sizes":["3"]},{"sizes":null}],` +
			`"storage":{"class":"GLACIER","tier":3},"x":"y"}`),
	}
	if _, err := c.Add(ev); err != nil {
		t.Fatal(err)
	}
	g := c.Drain()[0]
	wantExtra := map[string][]TopValue{"storage": {{"GLACIER", 1}}, "tier": {{"3", 1}}}
	if g.Units != 6 || g.Entity != "logs" || !reflect.DeepEqual(g.Extra, wantExtra) {
		t.Errorf("units %d, entity %q, extra %v; want 6, logs, %v", g.Units, g.Entity, g.Extra, wantExtra)
	}
}

func TestWalkerNeverStalls(t *testing.T) {
	// The walker is fed only valid JSON, but must still end on anything.
	root := &node{}
	root.add(strings.Split("requestParameters.a[].b.c", "."), 0)
	for _, in := range []string{"{", "[", `{"a":[}`, `{"a":[,,]`, `{"a":]}`, `{"a":[{"b":}]}`, `{"a"`, `"`, `{"a":["\`, `{]`, `[}`} {
		walkEvent(root, []byte(in), nopVisitor{})
	}
}

type nopVisitor struct{}

func (nopVisitor) leaf(int, []byte) {}
func (nopVisitor) mismatch(int)     {}

func TestEntityCacheBounded(t *testing.T) {
	c := New(nil, Options{})
	n := entityCacheSize + 100
	for i := range n {
		c.Add(event(invoke, fmt.Sprintf(`{"functionName":"arn:aws:lambda:us-east-1:1:function:f%d:1"}`, i)))
		c.Add(event(invoke, fmt.Sprintf(`{"functionName":"f%d"}`, i)))
	}
	c.Add(event(invoke, `{"functionName":"`+strings.Repeat("x", 3*maxValueLen)+`"}`))
	for _, p := range c.byID {
		if len(p.entities) > entityCacheSize {
			t.Errorf("%s remembers %d entities", p.id, len(p.entities))
		}
	}
	got := c.Drain()
	if len(got) != n+1 {
		t.Fatalf("%d keys, want %d", len(got), n+1)
	}
	for _, g := range got {
		if g.Calls != 2 && len(g.Entity) != maxValueLen {
			t.Errorf("entity %.20q: %d calls", g.Entity, g.Calls)
		}
	}
}
