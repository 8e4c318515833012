package main

import (
	"encoding/json"
	"fmt"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// DetailType is the EventBridge detail-type of CloudTrail API calls.
const DetailType = "AWS API Call via CloudTrail"

// maxPatternBytes is EventBridge's limit on the size of an event pattern.
const maxPatternBytes = 4096

// EventPattern returns the EventBridge pattern that selects the catalog's APIs: every eventSource
// and every eventName of the catalog (the agent drops the few cross-product combinations that no
// catalog entry names).
func EventPattern(cat *catalog.Catalog) (map[string]any, error) {
	p := map[string]any{
		"detail-type": []string{DetailType},
		"detail": map[string]any{
			"eventSource": cat.EventSources(),
			"eventName":   cat.EventNames(),
		},
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > maxPatternBytes {
		return nil, fmt.Errorf("event pattern of catalog %s is %d bytes, more than EventBridge's %d", cat.Digest, len(b), maxPatternBytes)
	}
	return p, nil
}
