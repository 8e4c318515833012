package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
)

func TestCollectorCountsRejections(t *testing.T) {
	cat := catalog.Default()
	in := strings.NewReader(`{"eventVersion":"1.08","eventTime":"2026-11-02T10:00:01Z","eventSource":"lambda.amazonaws.com","eventName":"Invoke","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{"functionName":"fn"}}
{"eventTime":"2026-11-02T10:00:01Z","eventSource":"lambda.amazonaws.com"
not json at all
{"eventVersion":"1.08","eventTime":"2026-11-02T10:00:02Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"123456789012","requestParameters":{"instancesSet":{"items":[{"maxCount":"many"}]}}}
`)
	src := &StreamSource{R: in, Name: "test", Catalog: cat}
	a, err := New(Config{Hub: "127.0.0.1:1", AgentID: "t"}, Settings{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	var units int
	err = src.Run(t.Context(), func(string) bool { return false }, func(_ context.Context, _ string, cs []counting.Count) error { units += len(cs); return nil })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(a, src))
	want := `
# HELP spikewatch_agent_events_rejected_total Events not counted, by reason.
# TYPE spikewatch_agent_events_rejected_total counter
spikewatch_agent_events_rejected_total{reason="bad_units"} 1
spikewatch_agent_events_rejected_total{reason="malformed_json"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "spikewatch_agent_events_rejected_total"); err != nil {
		t.Error(err)
	}
	if units != 1 {
		t.Errorf("%d counts emitted, want 1 (the Invoke)", units)
	}
}
