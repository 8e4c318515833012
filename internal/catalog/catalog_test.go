package catalog

import (
	"errors"
	"testing"
)

func TestDefaultCatalog(t *testing.T) {
	c := Default()
	for _, id := range []string{"ec2:RunInstances", "ec2:CreateVolume", "lambda:Invoke"} {
		if _, ok := c.ByID(id); !ok {
			t.Errorf("default catalog lacks %s", id)
		}
	}
	a, ok := c.Lookup("lambda.amazonaws.com", "Invoke")
	if !ok || a.Entity == nil || a.Entity.Normalize != NormalizeLambdaFunction {
		t.Fatalf("lambda:Invoke lookup = %+v, %v", a, ok)
	}
	if _, ok := c.Lookup("ec2.amazonaws.com", "DescribeInstances"); ok {
		t.Error("DescribeInstances should not be monitored")
	}
	if c.Digest == "" {
		t.Error("no digest")
	}
	if got := c.EventSources(); len(got) != 2 || got[0] != "ec2.amazonaws.com" {
		t.Errorf("EventSources = %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct{ name, yaml string }{
		{"unknown field", "version: 1\napis:\n  - id: ec2:RunInstances\n    event_source: ec2.amazonaws.com\n    event_name: RunInstances\n    bogus: 1\n"},
		{"bad version", "version: 2\napis:\n  - id: ec2:RunInstances\n    event_source: ec2.amazonaws.com\n    event_name: RunInstances\n"},
		{"no apis", "version: 1\napis: []\n"},
		{"bad id", "version: 1\napis:\n  - id: RunInstances\n    event_source: ec2.amazonaws.com\n    event_name: RunInstances\n"},
		{"duplicate event", "version: 1\napis:\n  - id: ec2:A\n    event_source: ec2.amazonaws.com\n    event_name: A\n  - id: ec2:B\n    event_source: ec2.amazonaws.com\n    event_name: A\n"},
		{"bad field", "version: 1\napis:\n  - id: ec2:A\n    event_source: ec2.amazonaws.com\n    event_name: A\n    units: {name: x, field: 'a..b'}\n"},
		{"bad normalizer", "version: 1\napis:\n  - id: ec2:A\n    event_source: ec2.amazonaws.com\n    event_name: A\n    entity: {name: f, field: a.b, normalize: upper}\n"},
		{"bad feature", "version: 1\napis:\n  - id: ec2:A\n    event_source: ec2.amazonaws.com\n    event_name: A\n    detector: {feature: max}\n"},
		{"not yaml", "{{{"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestAddingAnAPIIsOneEntry(t *testing.T) {
	c, err := Parse([]byte("version: 1\napis:\n  - id: s3:DeleteObject\n    event_source: s3.amazonaws.com\n    event_name: DeleteObject\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := c.Lookup("s3.amazonaws.com", "DeleteObject")
	if !ok || a.Units.Name != "calls" || a.Detector.IntervalMinutes != 1 || a.Detector.ShingleSize != 8 || a.Alert.MinGrade != 0.7 {
		t.Fatalf("defaults not filled: %+v", a)
	}
}

func TestNormalizeEntity(t *testing.T) {
	cases := []struct{ in, want string }{
		{"my-function", "my-function"},
		{"my-function:prod", "my-function"},
		{"123456789012:function:my-function", "my-function"},
		{"arn:aws:lambda:us-east-1:123456789012:function:my-function", "my-function"},
		{"arn:aws:lambda:us-east-1:123456789012:function:my-function:7", "my-function"},
		{" spaced ", "spaced"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := NormalizeEntity(NormalizeLambdaFunction, tc.in); got != tc.want {
			t.Errorf("NormalizeEntity(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
