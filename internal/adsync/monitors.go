package adsync

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// Monitor is the desired state of one Alerting monitor.
type Monitor struct {
	Name       string
	API        string
	DetectorID string
	// Body is the exact JSON of POST _plugins/_alerting/monitors and of PUT .../{id}.
	Body map[string]any
	// Hash identifies the definition (the body without ui_metadata); ui_metadata carries it as
	// {"spikewatch":{"spec":<hash>}}, since monitors have no description.
	Hash string
}

// Names inside each monitor's search input, used by the trigger and by ParseMessage.
const (
	compositeAgg     = "composite_agg"
	aggMaxGrade      = "max_grade"
	aggMaxConfidence = "max_confidence"
	aggAnomalyStart  = "anomaly_start"
	aggAnomalyEnd    = "anomaly_end"
	// CompositeSize bounds the buckets of one page of a monitor's input; Alerting pages through
	// the rest with the composite after_key.
	CompositeSize = 500
)

// LookbackMinutes is how far back a monitor looks for real-time results: three detection
// intervals, so a result written late in one interval is still seen by the next run of the monitor
// (which runs once per interval) and a continuing anomaly stays one alert (DEDUPED) rather than
// flapping into COMPLETED and NEW.
func LookbackMinutes(a *catalog.API) int { return 3 * a.Detector.IntervalMinutes }

// entityValue is a composite terms source script: the value of one category field in a result's
// entity list. "entity" is a nested field in AD results, so a plain terms source on entity.value
// would neither work at the top level nor pair an account with its function; reading _source
// keeps the pair in one bucket. Only anomalous results (grade > 0) reach it, so the _source reads
// stay few.
const entityValue = "def es = params._source.entity; if (es != null) { for (def e : es) { if (e.name == params.field) { return e.value; } } } return null;"

func entitySource(field string) map[string]any {
	return map[string]any{field: map[string]any{"terms": map[string]any{"script": map[string]any{
		"source": entityValue, "lang": "painless", "params": map[string]any{"field": field},
	}}}}
}

// MonitorQuery is the search input of an API's monitor: the detector's real-time results of the
// last LookbackMinutes with a grade above 0, bucketed per account (and entity), with the max grade
// and confidence and the anomaly's data time span of each bucket. {{period_end}} is filled in by
// Alerting at each run (epoch milliseconds).
func MonitorQuery(a *catalog.API, detectorID string) map[string]any {
	var sources []any
	for _, f := range CategoryFields(a) {
		sources = append(sources, entitySource(f))
	}
	return map[string]any{
		"size": 0,
		"query": map[string]any{"bool": map[string]any{
			"filter": []any{
				map[string]any{"term": map[string]any{"detector_id": detectorID}},
				map[string]any{"range": map[string]any{"execution_end_time": map[string]any{
					"gte":    fmt.Sprintf("{{period_end}}||-%dm", LookbackMinutes(a)),
					"lte":    "{{period_end}}",
					"format": "epoch_millis",
				}}},
				map[string]any{"range": map[string]any{"anomaly_grade": map[string]any{"gt": 0}}},
			},
			// Historical analysis (backtests) writes results with a task_id; alert on real time only.
			"must_not": []any{map[string]any{"exists": map[string]any{"field": "task_id"}}},
		}},
		"aggregations": map[string]any{compositeAgg: map[string]any{
			"composite": map[string]any{"size": CompositeSize, "sources": sources},
			"aggregations": map[string]any{
				aggMaxGrade:      map[string]any{"max": map[string]any{"field": "anomaly_grade"}},
				aggMaxConfidence: map[string]any{"max": map[string]any{"field": "confidence"}},
				aggAnomalyStart:  map[string]any{"min": map[string]any{"field": "data_start_time"}},
				aggAnomalyEnd:    map[string]any{"max": map[string]any{"field": "data_end_time"}},
			},
		}},
	}
}

// TriggerScript is the bucket condition of an API's monitor.
func TriggerScript(a *catalog.API) string {
	return fmt.Sprintf("params.%s >= %s && params.%s >= %s", aggMaxGrade, num(a.Alert.MinGrade), aggMaxConfidence, num(a.Alert.MinConfidence))
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// MessageTemplate is the mustache source of an API's alert message: a JSON document the hub
// parses with ParseMessage. Alerting runs the action once per alert (per_alert scope), so exactly
// one of new_alerts and deduped_alerts holds one alert; if the number of alerts of a run exceeds
// plugins.alerting.max_actionable_alert_count, Alerting falls back to one message for the whole
// run, and the lists hold them all. Every list is written with toJson, which keeps the document
// valid JSON in both cases. results is the monitor's search response (the buckets, with grade and
// confidence; bucket_keys of an alert are the key values of its bucket joined with ',').
func MessageTemplate(a *catalog.API, name, detectorID string) string {
	fields, _ := json.Marshal(CategoryFields(a))
	var b strings.Builder
	b.WriteString(`{"spikewatch":1`)
	b.WriteString(`,"monitor":{"id":"{{ctx.monitor._id}}","name":"{{ctx.monitor.name}}"}`)
	fmt.Fprintf(&b, `,"api":%s,"detector":{"id":%s,"name":%s}`, jsonString(a.ID), jsonString(detectorID), jsonString(name))
	fmt.Fprintf(&b, `,"bucket_fields":%s`, fields)
	fmt.Fprintf(&b, `,"thresholds":{"min_grade":%s,"min_confidence":%s,"high_grade":%s}`,
		num(a.Alert.MinGrade), num(a.Alert.MinConfidence), num(a.Alert.HighGrade))
	b.WriteString(`,"trigger":{"id":"{{ctx.trigger.id}}","name":"{{ctx.trigger.name}}","severity":"{{ctx.trigger.severity}}"}`)
	b.WriteString(`,"period_start":"{{ctx.periodStart}}","period_end":"{{ctx.periodEnd}}"`)
	b.WriteString(`,"new_alerts":{{#toJson}}ctx.newAlerts{{/toJson}}`)
	b.WriteString(`,"deduped_alerts":{{#toJson}}ctx.dedupedAlerts{{/toJson}}`)
	b.WriteString(`,"results":{{#toJson}}ctx.results{{/toJson}}`)
	b.WriteString(`,"error":"{{ctx.error}}"}`)
	return b.String()
}

// DesiredMonitors returns one bucket-level monitor per catalog API whose detector exists.
// detectorIDs maps a catalog API id (ec2:RunInstances) to its detector's id; APIs without one are
// left out (their detector is not created yet).
func DesiredMonitors(cat *catalog.Catalog, s Settings, detectorIDs map[string]string) []Monitor {
	s = s.WithDefaults()
	var out []Monitor
	for i := range cat.APIs {
		a := &cat.APIs[i]
		id := detectorIDs[a.ID]
		if id == "" {
			continue
		}
		name := DetectorName(s, a.ID)
		action := map[string]any{
			"id":               name + "-hub",
			"name":             "hub webhook",
			"destination_id":   ChannelID(s),
			"subject_template": map[string]any{"source": "Spikewatch anomaly: {{ctx.monitor.name}}", "lang": "mustache"},
			"message_template": map[string]any{"source": MessageTemplate(a, name, id), "lang": "mustache"},
			"throttle_enabled": false,
			"action_execution_policy": map[string]any{"action_execution_scope": map[string]any{
				"per_alert": map[string]any{"actionable_alerts": []string{"DEDUPED", "NEW"}},
			}},
		}
		trigger := map[string]any{"bucket_level_trigger": map[string]any{
			// Fixed ids keep alerts (keyed by trigger and bucket) across updates of the monitor.
			"id":       name + "-anomaly",
			"name":     "anomaly grade and confidence",
			"severity": "1",
			"condition": map[string]any{
				"buckets_path":       map[string]any{aggMaxGrade: aggMaxGrade, aggMaxConfidence: aggMaxConfidence},
				"parent_bucket_path": compositeAgg,
				"script":             map[string]any{"source": TriggerScript(a), "lang": "painless"},
			},
			"actions": []any{action},
		}}
		body := map[string]any{
			"type":         "monitor",
			"monitor_type": "bucket_level_monitor",
			"name":         name,
			"enabled":      true,
			"schedule":     map[string]any{"period": map[string]any{"interval": a.Detector.IntervalMinutes, "unit": "MINUTES"}},
			"inputs": []any{map[string]any{"search": map[string]any{
				"indices": []string{s.ResultIndex + "*"},
				"query":   MonitorQuery(a, id),
			}}},
			"triggers": []any{trigger},
		}
		h := hashOf(body)
		body["ui_metadata"] = map[string]any{"spikewatch": map[string]any{"spec": h, "api": a.ID, "detector_id": id}}
		out = append(out, Monitor{Name: name, API: a.ID, DetectorID: id, Body: body, Hash: h})
	}
	return out
}
