package pricing

import (
	"math"
	"testing"
)

func TestSpike(t *testing.T) {
	tb := Default()
	cases := []struct {
		name   string
		model  string
		excess float64
		mins   float64
		types  []Share
		want   float64
	}{
		{"gpu instances", "ec2_instances", 10, 30, []Share{{"p3.2xlarge", 10}}, 30.6},
		{"mixed types", "ec2_instances", 4, 10, []Share{{"t3.micro", 1}, {"g5.xlarge", 1}}, 4 * (0.0104 + 1.006) / 2},
		{"unknown type uses default", "ec2_instances", 2, 10, []Share{{"zz.huge", 3}}, 0.2},
		{"volumes", "ebs_gib_month", 7300, 20, []Share{{"gp3", 5}}, 0.8},
		{"lambda", "lambda_requests", 600000, 60, nil, 600000 * (0.0000002 + 0.0125*0.0000166667)},
		{"no excess", "ec2_instances", 0, 10, nil, 0},
		{"unknown model", "s3_gets", 10, 10, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tb.Spike(tc.model, tc.excess, tc.mins, tc.types)
			if math.Abs(got.PerHour-tc.want) > 1e-6*math.Max(1, tc.want) {
				t.Errorf("PerHour = %v, want %v (%s)", got.PerHour, tc.want, got.Basis)
			}
			if got.Basis == "" {
				t.Error("no basis")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"{", `{"ec2_default_hourly":0,"ebs_default_gib_month":1}`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
