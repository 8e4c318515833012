package adsync

import (
	"fmt"
	"slices"
)

// Kind is the kind of object an action changes.
type Kind string

// Kinds of objects.
const (
	KindSetting  Kind = "setting"
	KindChannel  Kind = "channel"
	KindDetector Kind = "detector"
	KindMonitor  Kind = "monitor"
)

// Op is what an action does.
type Op string

// Operations. OpConflict changes nothing: the name is taken by an object Spikewatch does not own.
const (
	OpCreate   Op = "create"
	OpUpdate   Op = "update"
	OpStart    Op = "start"
	OpStop     Op = "stop"
	OpDelete   Op = "delete"
	OpConflict Op = "conflict"
)

// Action is one step of a plan.
type Action struct {
	Op   Op
	Kind Kind
	Name string
	// ID is the existing object's id. It is empty for a create, and for the start of a detector
	// created earlier in the same plan (the executor resolves it by Name).
	ID string
	// Body is the document of a create or update.
	Body   map[string]any
	Reason string
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s %s", a.Op, a.Kind, a.Name)
	if a.ID != "" {
		s += " (" + a.ID + ")"
	}
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	return s
}

// CurrentDetector is a detector as the cluster reports it.
type CurrentDetector struct {
	ID             string
	Name           string
	Description    string
	CategoryFields []string
	ResultIndex    string
	Running        bool // its real-time job is enabled
}

// Hash is the spec hash in the description ("" when it has none).
func (d CurrentDetector) Hash() string { return specHash(d.Description) }

// CurrentMonitor is a monitor as the cluster reports it.
type CurrentMonitor struct {
	ID   string
	Name string
	Hash string // ui_metadata.spikewatch.spec; "" when the monitor is not Spikewatch's
}

// CurrentChannel is the hub channel as the cluster reports it.
type CurrentChannel struct {
	ID     string
	Config ChannelConfig
}

// Desired is what the cluster should hold.
type Desired struct {
	Channel   Channel
	Detectors []Detector
	Monitors  []Monitor
}

// Current is what the cluster holds: every detector and monitor whose name has the prefix (owned
// or not), and the channel if it exists.
type Current struct {
	Channel   *CurrentChannel
	Detectors []CurrentDetector
	Monitors  []CurrentMonitor
}

// Plan returns the actions that bring the cluster from current to desired: the channel, then the
// detectors, then the monitors. It is pure.
func Plan(s Settings, d Desired, c Current) []Action {
	var out []Action
	out = append(out, PlanChannel(d.Channel, c.Channel)...)
	out = append(out, PlanDetectors(s, d.Detectors, c.Detectors)...)
	out = append(out, PlanMonitors(s, d.Monitors, c.Monitors)...)
	return out
}

// PlanChannel creates the channel when it is missing and updates it when its config differs.
func PlanChannel(d Channel, c *CurrentChannel) []Action {
	switch {
	case c == nil:
		return []Action{{Op: OpCreate, Kind: KindChannel, Name: d.ID, Body: d.Body}}
	case !c.Config.equal(d.config()):
		return []Action{{Op: OpUpdate, Kind: KindChannel, Name: d.ID, ID: c.ID,
			Body: map[string]any{"config": d.Body["config"]}, Reason: "config differs"}}
	}
	return nil
}

func ownedDetector(s Settings, d CurrentDetector) bool {
	return ownedName(s.WithDefaults(), d.Name) && d.Hash() != ""
}

// PlanDetectors deletes owned detectors that are no longer desired (stopping them first), creates
// missing ones, updates changed ones (stop, update, start: the plugin refuses to update a running
// detector), replaces those whose category fields or result index changed (the plugin refuses to
// change either), and then starts every desired detector that is not running. A detector whose name is
// taken by one Spikewatch does not own is a conflict; foreign detectors are never touched.
func PlanDetectors(s Settings, desired []Detector, current []CurrentDetector) []Action {
	want := map[string]bool{}
	for _, d := range desired {
		want[d.Name] = true
	}
	byName := map[string]CurrentDetector{}
	var out, starts []Action
	// Deletions first: they free high-cardinality detector slots for the creations.
	for _, c := range current {
		byName[c.Name] = c
		if !want[c.Name] && ownedDetector(s, c) {
			out = append(out, stopIfRunning(c, "no longer in the catalog")...)
			out = append(out, Action{Op: OpDelete, Kind: KindDetector, Name: c.Name, ID: c.ID, Reason: "no longer in the catalog"})
		}
	}
	for _, d := range desired {
		c, exists := byName[d.Name]
		switch {
		case !exists:
			out = append(out, Action{Op: OpCreate, Kind: KindDetector, Name: d.Name, Body: d.Body})
			starts = append(starts, Action{Op: OpStart, Kind: KindDetector, Name: d.Name, Reason: "new"})
		case !ownedDetector(s, c):
			out = append(out, Action{Op: OpConflict, Kind: KindDetector, Name: d.Name, ID: c.ID,
				Reason: "the name is taken by a detector not managed by spikewatch"})
		case c.Hash() == d.Hash:
			if !c.Running {
				starts = append(starts, Action{Op: OpStart, Kind: KindDetector, Name: d.Name, ID: c.ID, Reason: "not running"})
			}
		case !slices.Equal(sorted(c.CategoryFields), sorted(bodyStrings(d.Body, "category_field"))) ||
			c.ResultIndex != d.Body["result_index"]:
			why := "category fields or result index changed (the plugin cannot update them)"
			out = append(out, stopIfRunning(c, why)...)
			out = append(out,
				Action{Op: OpDelete, Kind: KindDetector, Name: d.Name, ID: c.ID, Reason: why},
				Action{Op: OpCreate, Kind: KindDetector, Name: d.Name, Body: d.Body, Reason: why})
			starts = append(starts, Action{Op: OpStart, Kind: KindDetector, Name: d.Name, Reason: why})
		default:
			why := fmt.Sprintf("definition changed (%s -> %s)", c.Hash(), d.Hash)
			out = append(out, stopIfRunning(c, why)...)
			out = append(out, Action{Op: OpUpdate, Kind: KindDetector, Name: d.Name, ID: c.ID, Body: d.Body, Reason: why})
			starts = append(starts, Action{Op: OpStart, Kind: KindDetector, Name: d.Name, ID: c.ID, Reason: why})
		}
	}
	// Starts last: real-time detection begins once every definition is in place.
	return append(out, starts...)
}

func stopIfRunning(c CurrentDetector, why string) []Action {
	if !c.Running {
		return nil
	}
	return []Action{{Op: OpStop, Kind: KindDetector, Name: c.Name, ID: c.ID, Reason: why}}
}

func bodyStrings(body map[string]any, key string) []string {
	switch v := body[key].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

func sorted(xs []string) []string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}

func ownedMonitor(s Settings, m CurrentMonitor) bool {
	return ownedName(s.WithDefaults(), m.Name) && m.Hash != ""
}

// PlanMonitors creates missing monitors, updates changed ones and deletes owned monitors that are
// no longer desired, including duplicates of a desired one. Monitor names need not be unique, so a
// foreign monitor of the same name is no conflict: it is simply left alone.
func PlanMonitors(s Settings, desired []Monitor, current []CurrentMonitor) []Action {
	owned := map[string][]CurrentMonitor{}
	for _, c := range current {
		if ownedMonitor(s, c) {
			owned[c.Name] = append(owned[c.Name], c)
		}
	}
	want := map[string]bool{}
	var out []Action
	for _, d := range desired {
		want[d.Name] = true
		cs := owned[d.Name]
		if len(cs) == 0 {
			out = append(out, Action{Op: OpCreate, Kind: KindMonitor, Name: d.Name, Body: d.Body})
			continue
		}
		// Keep an up-to-date copy if there is one, else update the first; delete the others.
		keep := 0
		for i, c := range cs {
			if c.Hash == d.Hash {
				keep = i
				break
			}
		}
		if cs[keep].Hash != d.Hash {
			out = append(out, Action{Op: OpUpdate, Kind: KindMonitor, Name: d.Name, ID: cs[keep].ID, Body: d.Body,
				Reason: fmt.Sprintf("definition changed (%s -> %s)", cs[keep].Hash, d.Hash)})
		}
		for i, c := range cs {
			if i != keep {
				out = append(out, Action{Op: OpDelete, Kind: KindMonitor, Name: c.Name, ID: c.ID, Reason: "duplicate"})
			}
		}
	}
	for _, c := range current {
		if ownedMonitor(s, c) && !want[c.Name] {
			out = append(out, Action{Op: OpDelete, Kind: KindMonitor, Name: c.Name, ID: c.ID, Reason: "no longer in the catalog"})
		}
	}
	return out
}
