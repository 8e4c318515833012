package adsync

import (
	"strings"
	"testing"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// inSync is the cluster state that desired describes, with every detector running.
func inSync(d Desired) Current {
	c := Current{Channel: &CurrentChannel{ID: d.Channel.ID, Config: d.Channel.config()}}
	for _, x := range d.Detectors {
		c.Detectors = append(c.Detectors, CurrentDetector{
			ID: "id-" + x.Name, Name: x.Name, Description: x.Body["description"].(string),
			CategoryFields: bodyStrings(x.Body, "category_field"), ResultIndex: x.Body["result_index"].(string), Running: true,
		})
	}
	for _, m := range d.Monitors {
		c.Monitors = append(c.Monitors, CurrentMonitor{ID: "mon-" + m.Name, Name: m.Name, Hash: m.Hash})
	}
	return c
}

func desiredFor(cat *catalog.Catalog) Desired {
	s := testSettings()
	return Desired{
		Channel:   DesiredChannel(s),
		Detectors: DesiredDetectors(cat, s),
		Monitors:  DesiredMonitors(cat, s, fakeDetectorIDs(cat)),
	}
}

func summary(as []Action) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, string(a.Op)+" "+string(a.Kind)+" "+a.Name)
	}
	return strings.Join(parts, "\n")
}

func TestPlan(t *testing.T) {
	def := desiredFor(catalog.Default())

	shingle := catalog.Default()
	shingle.APIs[0].Detector.ShingleSize = 4 // ec2:RunInstances 8 -> 4

	removed := catalog.Default()
	removed.APIs = removed.APIs[:2] // lambda:Invoke leaves the catalog

	foreign := []CurrentDetector{
		{ID: "f1", Name: "cpu-per-host", Description: "the platform team's", CategoryFields: []string{"host"}, Running: true},
		{ID: "f2", Name: "spikewatch-by-hand", Description: "made in Dashboards, no spec", CategoryFields: []string{"account_id"}, Running: true},
		{ID: "f3", Name: "spikewatch-old", Description: "spikewatch-spec:zz (not a hash)", Running: false},
	}
	foreignMonitors := []CurrentMonitor{
		{ID: "fm1", Name: "cpu-alerts"},
		{ID: "fm2", Name: "spikewatch-by-hand"},
		{ID: "fm3", Name: "spikewatch-lambda-invoke"}, // same name as ours, no spec: not ours
	}

	tests := []struct {
		name    string
		desired Desired
		current func() Current
		want    string
	}{
		{
			name:    "nothing exists: create everything, start detectors after creating them",
			desired: def,
			current: func() Current { return Current{} },
			want: `create channel spikewatch-hub
create detector spikewatch-ec2-runinstances
create detector spikewatch-ec2-createvolume
create detector spikewatch-lambda-invoke
start detector spikewatch-ec2-runinstances
start detector spikewatch-ec2-createvolume
start detector spikewatch-lambda-invoke
create monitor spikewatch-ec2-runinstances
create monitor spikewatch-ec2-createvolume
create monitor spikewatch-lambda-invoke`,
		},
		{
			name:    "all equal: nothing to do",
			desired: def,
			current: func() Current { return inSync(def) },
			want:    ``,
		},
		{
			name:    "changed shingle: stop, update and restart that detector only",
			desired: desiredFor(shingle),
			current: func() Current { return inSync(def) },
			want: `stop detector spikewatch-ec2-runinstances
update detector spikewatch-ec2-runinstances
start detector spikewatch-ec2-runinstances`,
		},
		{
			name:    "changed shingle of a stopped detector: no stop",
			desired: desiredFor(shingle),
			current: func() Current {
				c := inSync(def)
				for i := range c.Detectors {
					c.Detectors[i].Running = false
				}
				return c
			},
			want: `update detector spikewatch-ec2-runinstances
start detector spikewatch-ec2-runinstances
start detector spikewatch-ec2-createvolume
start detector spikewatch-lambda-invoke`,
		},
		{
			name:    "API removed from the catalog: stop and delete its detector, delete its monitor",
			desired: desiredFor(removed),
			current: func() Current { return inSync(def) },
			want: `stop detector spikewatch-lambda-invoke
delete detector spikewatch-lambda-invoke
delete monitor spikewatch-lambda-invoke`,
		},
		{
			name:    "foreign detectors and monitors are never touched",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Detectors = append(c.Detectors, foreign...)
				c.Monitors = append(c.Monitors, foreignMonitors...)
				return c
			},
			want: ``,
		},
		{
			name:    "foreign objects survive an empty catalog; owned ones go",
			desired: Desired{Channel: def.Channel},
			current: func() Current {
				c := inSync(def)
				c.Detectors = append(foreign, c.Detectors...)
				c.Monitors = append(foreignMonitors, c.Monitors...)
				return c
			},
			want: `stop detector spikewatch-ec2-runinstances
delete detector spikewatch-ec2-runinstances
stop detector spikewatch-ec2-createvolume
delete detector spikewatch-ec2-createvolume
stop detector spikewatch-lambda-invoke
delete detector spikewatch-lambda-invoke
delete monitor spikewatch-ec2-runinstances
delete monitor spikewatch-ec2-createvolume
delete monitor spikewatch-lambda-invoke`,
		},
		{
			name:    "our name taken by a foreign detector: conflict, no change to it",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Detectors[2] = CurrentDetector{ID: "theirs", Name: "spikewatch-lambda-invoke", Description: "someone else's", Running: true}
				return c
			},
			want: `conflict detector spikewatch-lambda-invoke`,
		},
		{
			name:    "a detector not running is started",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Detectors[1].Running = false
				return c
			},
			want: `start detector spikewatch-ec2-createvolume`,
		},
		{
			name:    "category fields changed: replace (the plugin cannot update them)",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Detectors[2].CategoryFields = []string{"account_id"}
				c.Detectors[2].Description = "Spikewatch old. spikewatch-spec:0123456789abcdef"
				return c
			},
			want: `stop detector spikewatch-lambda-invoke
delete detector spikewatch-lambda-invoke
create detector spikewatch-lambda-invoke
start detector spikewatch-lambda-invoke`,
		},
		{
			name:    "channel changed (new secret): update it",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Channel.Config.Webhook.HeaderParams = map[string]string{SecretHeader: "old", "Content-Type": "application/json"}
				return c
			},
			want: `update channel spikewatch-hub`,
		},
		{
			name:    "monitor changed and duplicated: update one, delete the copy",
			desired: def,
			current: func() Current {
				c := inSync(def)
				c.Monitors[0].Hash = "0000000000000000"
				c.Monitors = append(c.Monitors, CurrentMonitor{ID: "dup", Name: c.Monitors[0].Name, Hash: "1111111111111111"})
				return c
			},
			want: `update monitor spikewatch-ec2-runinstances
delete monitor spikewatch-ec2-runinstances`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(testSettings(), tt.desired, tt.current())
			if s := summary(got); s != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", s, tt.want)
			}
			for _, a := range got {
				if a.Op != OpConflict && (strings.HasPrefix(a.ID, "f") || a.ID == "theirs") {
					t.Errorf("%s touches a foreign object", a)
				}
				if (a.Op == OpCreate || a.Op == OpUpdate) && a.Body == nil {
					t.Errorf("%s without a body", a)
				}
				if (a.Op == OpUpdate || a.Op == OpDelete || a.Op == OpStop) && a.ID == "" {
					t.Errorf("%s without an id", a)
				}
			}
		})
	}
}

func TestPlanUpdatesCarryTheNewBody(t *testing.T) {
	shingle := catalog.Default()
	shingle.APIs[0].Detector.ShingleSize = 4
	for _, a := range Plan(testSettings(), desiredFor(shingle), inSync(desiredFor(catalog.Default()))) {
		if a.Op == OpUpdate && a.Body["shingle_size"] != 4 {
			t.Errorf("update body shingle %v", a.Body["shingle_size"])
		}
	}
}
