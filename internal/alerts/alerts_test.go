package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/notify"
)

type memStore struct{ saved map[string]Alert }

func (m *memStore) Save(_ context.Context, a *Alert) error {
	if m.saved == nil {
		m.saved = map[string]Alert{}
	}
	m.saved[a.ID] = *a
	return nil
}

func (m *memStore) Open(context.Context) ([]*Alert, error) {
	var out []*Alert
	for _, a := range m.saved {
		if a.State == StateOpen {
			cp := a
			out = append(out, &cp)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)

func sig(min int, grade float64) Signal {
	return Signal{Time: t0.Add(time.Duration(min) * time.Minute), AccountID: "111111111111", API: "ec2:RunInstances", Grade: grade, Confidence: 0.95, Actual: 40, Expected: 1, Source: "test"}
}

func TestDedupEscalateResolve(t *testing.T) {
	ctx := context.Background()
	rec := &notify.Recorder{}
	store := &memStore{}
	m, err := New(ctx, Config{ResolveAfter: 10 * time.Minute, NotifyResolved: true}, catalog.Default(), store, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		sig       *Signal
		tick      int
		wantMsgs  int
		wantState string
		wantSev   string
	}{
		{"below threshold: nothing", ptr(sig(0, 0.5)), -1, 0, "", ""},
		{"low confidence: nothing", &Signal{Time: t0, AccountID: "111111111111", API: "ec2:RunInstances", Grade: 0.95, Confidence: 0.1}, -1, 0, "", ""},
		{"opens medium", ptr(sig(1, 0.75)), -1, 1, StateOpen, SevMedium},
		{"repeat: no notification", ptr(sig(2, 0.8)), -1, 1, StateOpen, SevMedium},
		{"escalates to high", ptr(sig(3, 0.95)), -1, 2, StateOpen, SevHigh},
		{"high repeat: no notification", ptr(sig(4, 0.97)), -1, 2, StateOpen, SevHigh},
		{"quiet but not long enough", nil, 10, 2, StateOpen, SevHigh},
		{"resolves", nil, 15, 3, StateResolved, SevHigh},
		{"a new spike is a new alert", ptr(sig(40, 0.9)), -1, 4, StateOpen, SevHigh},
	}
	for _, st := range steps {
		if st.sig != nil {
			if err := m.Observe(ctx, *st.sig); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if st.tick >= 0 {
			if err := m.Tick(ctx, t0.Add(time.Duration(st.tick)*time.Minute)); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		msgs := rec.Messages()
		if len(msgs) != st.wantMsgs {
			t.Fatalf("%s: %d notifications, want %d", st.name, len(msgs), st.wantMsgs)
		}
		all := m.Alerts()
		if st.wantState == "" {
			if len(all) != 0 {
				t.Fatalf("%s: alerts %v", st.name, all)
			}
			continue
		}
		last := all[len(all)-1]
		if last.State != st.wantState || last.Severity != st.wantSev {
			t.Fatalf("%s: state %s severity %s, want %s %s", st.name, last.State, last.Severity, st.wantState, st.wantSev)
		}
	}
	msgs := rec.Messages()
	if !strings.HasPrefix(msgs[1].Subject, "Escalated: [HIGH]") || !strings.HasPrefix(msgs[2].Subject, "Resolved:") {
		t.Errorf("subjects: %q, %q", msgs[1].Subject, msgs[2].Subject)
	}
	for _, msg := range msgs {
		if msg.AccountID != "111111111111" || msg.API != "ec2:RunInstances" || msg.Severity == "" {
			t.Errorf("attributes: %+v", msg)
		}
		var body struct {
			Kind  string `json:"kind"`
			Alert Alert  `json:"alert"`
		}
		if err := json.Unmarshal(msg.JSON, &body); err != nil || body.Alert.ID == "" {
			t.Errorf("structured form: %v %s", err, msg.JSON)
		}
	}
	first := m.Alerts()[0]
	if !first.Start.Equal(t0.Add(time.Minute)) || !first.End.Equal(t0.Add(5*time.Minute)) || first.Grade != 0.97 {
		t.Errorf("window %s-%s grade %v", first.Start, first.End, first.Grade)
	}
	if len(first.Events) != 3 {
		t.Errorf("events %v", first.Events)
	}
}

func TestRestartKeepsDedup(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	rec := &notify.Recorder{}
	m1, _ := New(ctx, Config{}, catalog.Default(), store, rec, nil, nil)
	if err := m1.Observe(ctx, sig(1, 0.8)); err != nil {
		t.Fatal(err)
	}
	m2, err := New(ctx, Config{}, catalog.Default(), store, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Observe(ctx, sig(2, 0.8)); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Messages()); n != 1 {
		t.Fatalf("a restarted manager notified again: %d messages", n)
	}
}

func TestSeparateKeysSeparateAlerts(t *testing.T) {
	ctx := context.Background()
	rec := &notify.Recorder{}
	m, _ := New(ctx, Config{}, catalog.Default(), nil, rec, nil, nil)
	for _, s := range []Signal{
		{Time: t0, AccountID: "111111111111", API: "lambda:Invoke", Entity: "a", Grade: 0.9, Confidence: 0.9},
		{Time: t0, AccountID: "111111111111", API: "lambda:Invoke", Entity: "b", Grade: 0.9, Confidence: 0.9},
		{Time: t0, AccountID: "222222222222", API: "lambda:Invoke", Entity: "a", Grade: 0.9, Confidence: 0.9},
	} {
		if err := m.Observe(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(m.Alerts()); n != 3 {
		t.Fatalf("%d alerts, want 3", n)
	}
	if err := m.Observe(ctx, Signal{Time: t0, AccountID: "1", API: "nope:Nope", Grade: 1, Confidence: 1}); err == nil {
		t.Error("unknown api accepted")
	}
}

func ptr(s Signal) *Signal { return &s }
