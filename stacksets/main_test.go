package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden templates in testdata/")

// The stacks are synthesized once per test binary: synthesis goes through jsii and takes seconds.
var (
	stacks    *Stacks
	hubT      assertions.Template // from the hub stack (Template_FromStack)
	memberT   assertions.Template
	hubJSON   map[string]any
	templates map[string]map[string]any // golden name -> template
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The machine's Node may be older than jsii likes; the warning is noise in test logs.
	os.Setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
	os.Setenv("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "18,20")
	os.Setenv("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "synthesis failed:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setup() error {
	dir, err := os.MkdirTemp("", "spikewatch-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), AnalyticsReporting: jsii.Bool(false)})
	stacks, err = Build(app, catalog.Default())
	if err != nil {
		return err
	}
	hubT = assertions.Template_FromStack(stacks.Hub, nil)
	hubJSON, err = roundTrip(hubT.ToJSON())
	if err != nil {
		return err
	}
	memberT = assertions.Template_FromJSON(&stacks.Member, nil)
	templates = map[string]map[string]any{"hub": hubJSON, "member": stacks.Member, "artifacts": stacks.Artifacts}
	return nil
}

// roundTrip turns a jsii value into plain JSON types.
func roundTrip(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

// must runs an assertion of the CDK library, which panics on a mismatch, as a test error.
func must(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func resources(tmpl map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	rs, _ := tmpl["Resources"].(map[string]any)
	for id, r := range rs {
		out[id] = r.(map[string]any)
	}
	return out
}

func resourcesOfType(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range resources(tmpl) {
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else {
				b, _ := json.Marshal(e)
				out = append(out, string(b))
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	_ = json.Unmarshal(ja, &x)
	_ = json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}
