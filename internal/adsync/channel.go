package adsync

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Channel is the desired Notifications webhook channel to the hub.
type Channel struct {
	ID string // config_id
	// Body is the exact JSON of POST _plugins/_notifications/configs; PUT .../configs/{id} takes
	// {"config": Body["config"]}.
	Body map[string]any
}

// ChannelConfig is the "config" object of a Notifications channel, as compared with the cluster's copy.
type ChannelConfig struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	ConfigType  string         `json:"config_type"`
	IsEnabled   bool           `json:"is_enabled"`
	Webhook     *WebhookConfig `json:"webhook"`
}

// WebhookConfig is the webhook part of a ChannelConfig.
type WebhookConfig struct {
	URL          string            `json:"url"`
	HeaderParams map[string]string `json:"header_params"`
	Method       string            `json:"method"`
}

// DesiredChannel returns the webhook channel to the hub's alert endpoint. The secret travels in
// the X-Spikewatch-Secret header. Content-Type is set explicitly: the Notifications plugin sets
// application/json itself only when a webhook has no headers at all.
func DesiredChannel(s Settings) Channel {
	s = s.WithDefaults()
	id := ChannelID(s)
	return Channel{ID: id, Body: map[string]any{
		"config_id": id,
		"config": map[string]any{
			"name":        id,
			"description": "Spikewatch: anomaly alerts to the hub. Managed by spikewatch; edits are overwritten.",
			"config_type": "webhook",
			"is_enabled":  true,
			"webhook": map[string]any{
				"url":    s.WebhookURL,
				"method": "POST",
				"header_params": map[string]any{
					"Content-Type": "application/json",
					SecretHeader:   s.WebhookSecret,
				},
			},
		},
	}}
}

// config returns the desired channel's config in comparable form.
func (c Channel) config() ChannelConfig {
	var cc ChannelConfig
	b, err := json.Marshal(c.Body["config"])
	if err == nil {
		err = json.Unmarshal(b, &cc)
	}
	if err != nil {
		// Body is built by DesiredChannel from strings and maps; this cannot fail.
		panic(fmt.Sprintf("adsync: channel config: %v", err))
	}
	return cc
}

func (a ChannelConfig) equal(b ChannelConfig) bool {
	norm := func(c ChannelConfig) ChannelConfig {
		if c.Webhook != nil && len(c.Webhook.HeaderParams) == 0 {
			w := *c.Webhook
			w.HeaderParams = nil
			c.Webhook = &w
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
