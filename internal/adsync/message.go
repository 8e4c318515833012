package adsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is the alert document a monitor posts to the hub (see MessageTemplate).
type Message struct {
	Version int `json:"spikewatch"`
	Monitor struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"monitor"`
	API      string `json:"api"`
	Detector struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"detector"`
	BucketFields []string `json:"bucket_fields"`
	Thresholds   struct {
		MinGrade      float64 `json:"min_grade"`
		MinConfidence float64 `json:"min_confidence"`
		HighGrade     float64 `json:"high_grade"`
	} `json:"thresholds"`
	Trigger struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Severity string `json:"severity"`
	} `json:"trigger"`
	PeriodStart   string         `json:"period_start"`
	PeriodEnd     string         `json:"period_end"`
	NewAlerts     []MessageAlert `json:"new_alerts"`
	DedupedAlerts []MessageAlert `json:"deduped_alerts"`
	Results       []struct {
		Aggregations map[string]json.RawMessage `json:"aggregations"`
	} `json:"results"`
	Error string `json:"error"`
}

// MessageAlert is one Alerting alert as its template arguments render it.
type MessageAlert struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Severity   string `json:"severity"`
	StartTime  int64  `json:"start_time"` // epoch ms
	BucketKeys string `json:"bucket_keys"`
}

// MessageBucket is one composite bucket of a monitor's search response.
type MessageBucket struct {
	Key           map[string]any `json:"key"`
	DocCount      int64          `json:"doc_count"`
	MaxGrade      metricValue    `json:"max_grade"`
	MaxConfidence metricValue    `json:"max_confidence"`
	AnomalyStart  metricValue    `json:"anomaly_start"`
	AnomalyEnd    metricValue    `json:"anomaly_end"`
}

type metricValue struct {
	Value *float64 `json:"value"`
}

// Anomaly is one account (and entity) whose real-time results crossed the alert thresholds.
type Anomaly struct {
	API        string
	AccountID  string
	Entity     string // "" for APIs without an entity
	Grade      float64
	Confidence float64
	// Start and End span the anomalous results' data in the lookback (zero if unknown).
	Start, End time.Time
}

// BucketAlert is one alert of a message with its bucket's values.
type BucketAlert struct {
	Category string // NEW or DEDUPED
	AlertID  string
	Anomaly
	// Found is false when no bucket of the results matched the alert's keys (a later page of the
	// composite aggregation); Grade, Confidence, Start and End are then unknown.
	Found bool
}

// ParseMessage decodes an alert message.
func ParseMessage(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("adsync: alert message: %w", err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("adsync: alert message version %d, want 1", m.Version)
	}
	if m.API == "" || len(m.BucketFields) == 0 {
		return nil, errors.New("adsync: alert message without api or bucket fields")
	}
	return &m, nil
}

// Buckets returns the composite buckets of the message's search results.
func (m *Message) Buckets() ([]MessageBucket, error) {
	var out []MessageBucket
	for _, r := range m.Results {
		raw, ok := r.Aggregations[compositeAgg]
		if !ok {
			continue
		}
		var agg struct {
			Buckets []MessageBucket `json:"buckets"`
		}
		if err := json.Unmarshal(raw, &agg); err != nil {
			return nil, fmt.Errorf("adsync: alert message buckets: %w", err)
		}
		out = append(out, agg.Buckets...)
	}
	return out, nil
}

// keyString joins a bucket's key values in bucket field order, as Alerting does for bucket_keys.
func (b MessageBucket) keyString(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprint(b.Key[f])
	}
	return strings.Join(parts, ",")
}

// Alerts returns the message's alerts (new first), each with its bucket's account, entity, grade
// and confidence.
func (m *Message) Alerts() ([]BucketAlert, error) {
	buckets, err := m.Buckets()
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]MessageBucket, len(buckets))
	for _, b := range buckets {
		byKey[b.keyString(m.BucketFields)] = b
	}
	var out []BucketAlert
	add := func(category string, alerts []MessageAlert) {
		for _, a := range alerts {
			ba := BucketAlert{Category: category, AlertID: a.ID, Anomaly: Anomaly{API: m.API}}
			b, ok := byKey[a.BucketKeys]
			if ok {
				ba.Found = true
				ba.Anomaly = b.anomaly(m.API)
			} else {
				// Without the bucket, the keys still name the account (and entity).
				keys := strings.SplitN(a.BucketKeys, ",", len(m.BucketFields))
				for i, f := range m.BucketFields {
					if i < len(keys) {
						switch f {
						case "account_id":
							ba.AccountID = keys[i]
						case "entity":
							ba.Entity = keys[i]
						}
					}
				}
			}
			out = append(out, ba)
		}
	}
	add("NEW", m.NewAlerts)
	add("DEDUPED", m.DedupedAlerts)
	return out, nil
}

// anomaly returns the bucket's account, entity and values.
func (b MessageBucket) anomaly(api string) Anomaly {
	a := Anomaly{API: api, AccountID: fmt.Sprint(b.Key["account_id"]),
		Grade: b.MaxGrade.float(), Confidence: b.MaxConfidence.float(),
		Start: b.AnomalyStart.time(), End: b.AnomalyEnd.time()}
	if e, ok := b.Key["entity"]; ok {
		a.Entity = fmt.Sprint(e)
	}
	return a
}

func (v metricValue) float() float64 {
	if v.Value == nil {
		return 0
	}
	return *v.Value
}

func (v metricValue) time() time.Time {
	if v.Value == nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(*v.Value)).UTC()
}
