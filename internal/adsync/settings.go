// Package adsync keeps the OpenSearch Anomaly Detection, Alerting and Notifications plugins in line
// with the catalog: one high-cardinality detector per API over the counts indices, one bucket-level
// monitor per detector over the anomaly results, and one webhook channel back to the hub.
//
// It is built in three layers:
//   - desired state: pure functions from the catalog and Settings to the exact JSON documents the
//     plugin APIs take (DesiredDetectors, DesiredMonitors, DesiredChannel);
//   - a pure plan: what the cluster reports, diffed against the desired state, as a list of actions
//     (Plan, PlanDetectors, PlanMonitors, PlanChannel);
//   - a thin executor over search.Client (Reconciler), the only part that talks to OpenSearch.
//
// Ownership: a detector is Spikewatch's when its name starts with "<NamePrefix>-" and its
// description carries "spikewatch-spec:<hash>"; a monitor when its name has the prefix and its
// ui_metadata carries {"spikewatch":{"spec":<hash>}}. Nothing else is ever changed or deleted.
package adsync

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Defaults of Settings.
const (
	DefaultIndexPrefix = "spikewatch"
	DefaultNamePrefix  = "spikewatch"
	// ResultIndexPrefix is the prefix the AD plugin requires of custom result indices.
	ResultIndexPrefix  = "opensearch-ad-plugin-result-"
	DefaultResultIndex = ResultIndexPrefix + "spikewatch"
	// SecretHeader carries the webhook secret from the Notifications channel to the hub.
	SecretHeader = "X-Spikewatch-Secret"
)

// Settings says where the counts are, where alerts go and how owned objects are named.
type Settings struct {
	IndexPrefix   string // counts index prefix: counts live in <IndexPrefix>-counts-YYYY.MM.DD
	WebhookURL    string // the hub's alert endpoint
	WebhookSecret string // sent in the X-Spikewatch-Secret header of every alert
	// ResultIndex is the custom AD result index (an alias the plugin creates); it must start with
	// "opensearch-ad-plugin-result-". Default opensearch-ad-plugin-result-spikewatch.
	ResultIndex string
	// NamePrefix names every detector, monitor and the channel. Default "spikewatch".
	NamePrefix string
}

// WithDefaults fills the empty fields.
func (s Settings) WithDefaults() Settings {
	if s.IndexPrefix == "" {
		s.IndexPrefix = DefaultIndexPrefix
	}
	if s.NamePrefix == "" {
		s.NamePrefix = DefaultNamePrefix
	}
	if s.ResultIndex == "" {
		s.ResultIndex = DefaultResultIndex
	}
	return s
}

var (
	// The AD plugin's rules: names [a-zA-Z0-9._-]+ up to 64 characters; result index names
	// [a-z0-9_-]+ up to 255.
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	indexPattern = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

// Validate checks the settings (after WithDefaults) against what the plugins accept.
func (s Settings) Validate() error {
	var errs []error
	if !namePattern.MatchString(s.NamePrefix) {
		errs = append(errs, fmt.Errorf("name prefix %q: want lower-case letters, digits, '.', '_' or '-'", s.NamePrefix))
	}
	if s.IndexPrefix == "" || strings.ContainsAny(s.IndexPrefix, "*, \"\\/?#") {
		errs = append(errs, fmt.Errorf("index prefix %q is not a usable index name prefix", s.IndexPrefix))
	}
	if !strings.HasPrefix(s.ResultIndex, ResultIndexPrefix) || !indexPattern.MatchString(s.ResultIndex) || len(s.ResultIndex) > 255 {
		errs = append(errs, fmt.Errorf("result index %q: must start with %q and use only [a-z0-9_-]", s.ResultIndex, ResultIndexPrefix))
	}
	if s.WebhookURL == "" {
		errs = append(errs, errors.New("no webhook URL for the hub's alert endpoint"))
	} else if !strings.HasPrefix(s.WebhookURL, "https://") && !strings.HasPrefix(s.WebhookURL, "http://") {
		errs = append(errs, fmt.Errorf("webhook URL %q: want http(s)://", s.WebhookURL))
	}
	if s.WebhookSecret == "" {
		errs = append(errs, errors.New("no webhook secret: the hub rejects unauthenticated alerts"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("adsync settings: %w", err)
	}
	return nil
}

// DetectorName is the detector (and monitor) name of an API: "<prefix>-<api with ':' as '-'>",
// lower case, e.g. spikewatch-ec2-runinstances.
func DetectorName(s Settings, apiID string) string {
	return strings.ToLower(s.NamePrefix + "-" + strings.ReplaceAll(apiID, ":", "-"))
}

// ChannelID is the Notifications config id of the hub's webhook: "<prefix>-hub".
func ChannelID(s Settings) string { return s.NamePrefix + "-hub" }

// owned reports whether a name belongs to the settings' namespace.
func ownedName(s Settings, name string) bool { return strings.HasPrefix(name, s.NamePrefix+"-") }
