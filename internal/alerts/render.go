package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/internal/notify"
)

// Render builds the readable and structured forms of an alert for publishing.
func Render(a *Alert, kind string) (notify.Message, error) {
	body, err := json.Marshal(struct {
		Kind  string `json:"kind"`
		Alert *Alert `json:"alert"`
	}{kind, a})
	if err != nil {
		return notify.Message{}, fmt.Errorf("render: %w", err)
	}
	return notify.Message{
		Subject:   subject(a, kind),
		Text:      Text(a, kind),
		JSON:      body,
		AccountID: a.AccountID, API: a.API, Severity: a.Severity, Entity: a.Entity,
	}, nil
}

func subject(a *Alert, kind string) string {
	who := a.AccountID
	if a.Enrichment != nil && a.Enrichment.AccountName != "" {
		who = a.Enrichment.AccountName + " " + a.AccountID
	}
	s := fmt.Sprintf("[%s] %s spike in %s", strings.ToUpper(a.Severity), a.API, who)
	switch kind {
	case "escalated":
		s = "Escalated: " + s
	case "resolved":
		s = "Resolved: " + s
	}
	if a.Entity != "" {
		s += " (" + a.Entity + ")"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// Text is the readable form of an alert.
func Text(a *Alert, kind string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", subject(a, kind))
	e := a.Enrichment
	if e != nil && e.OUPath != "" {
		fmt.Fprintf(&b, "Account: %s (%s), %s", e.AccountName, a.AccountID, e.OUPath)
		if len(e.Tags) > 0 {
			fmt.Fprintf(&b, ", tags %v", e.Tags)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Window: %s - %s UTC (%s), grade %.2f, confidence %.2f, source %s\n",
		a.Start.UTC().Format("2006-01-02 15:04"), a.End.UTC().Format("15:04"), a.End.Sub(a.Start).Round(time.Minute), a.Grade, a.Confidence, a.Source)
	if e == nil {
		fmt.Fprintf(&b, "Peak: %.0f in one interval, expected %.1f\n", a.PeakActual, a.Expected)
		return b.String()
	}
	unit := e.UnitsName
	fmt.Fprintf(&b, "Units (%s): %d in the window; same window yesterday %d, last week %d, 7-day median %d (%.0fx)\n",
		unit, e.During.Units, e.DayBefore.Units, e.WeekBefore.Units, e.Median7d.Units, e.Ratio)
	fmt.Fprintf(&b, "Calls: %d (errors %d); yesterday %d, last week %d, median %d\n", e.During.Calls, e.During.Errors, e.DayBefore.Calls, e.WeekBefore.Calls, e.Median7d.Calls)
	line := func(label string, vs []TopValue) {
		if len(vs) == 0 {
			return
		}
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%s (%d)", v.Value, v.Count)
		}
		fmt.Fprintf(&b, "%s: %s\n", label, strings.Join(parts, ", "))
	}
	line("Who", e.Principals)
	line("From", e.SourceIPs)
	line("User agents", e.UserAgents)
	line("Types", e.Types)
	line("Regions", e.Regions)
	line("Errors", e.ErrorCodes)
	if e.CostBasis != "" {
		fmt.Fprintf(&b, "Estimated cost: $%.2f per hour (%s)\n", e.CostPerHour, e.CostBasis)
	}
	if e.Links.Discover != "" {
		fmt.Fprintf(&b, "Discover: %s\n", e.Links.Discover)
	}
	if e.Links.CloudTrail != "" {
		fmt.Fprintf(&b, "CloudTrail: %s\n", e.Links.CloudTrail)
	}
	return b.String()
}
