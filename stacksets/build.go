package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// Stack names (and so the template file names in cdk.out).
const (
	HubStackName       = "SpikewatchHub"
	MemberStackName    = "SpikewatchMember"
	ArtifactsStackName = "SpikewatchArtifacts"
)

// Stacks is what Build makes: the hub stack in the app, and the templates synthesized on their own
// (member, artifacts), which are not stacks of the app: `cdk deploy --all` deploys the hub only.
type Stacks struct {
	Hub       awscdk.Stack
	Member    map[string]any
	Artifacts map[string]any
}

// Build synthesizes the member stack from the catalog in an app of its own, embeds it in the hub
// stack's StackSet, and adds the hub stack to app.
func Build(app awscdk.App, cat *catalog.Catalog) (*Stacks, error) {
	var buildErr error
	member, err := synthDetached(func(a awscdk.App) awscdk.Stack {
		s, err := NewMemberStack(a, MemberStackName, &MemberStackProps{Catalog: cat})
		buildErr = err
		return s
	})
	if err == nil {
		err = buildErr
	}
	if err != nil {
		return nil, err
	}
	artifacts, err := synthDetached(func(a awscdk.App) awscdk.Stack { return NewArtifactsStack(a, ArtifactsStackName) })
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(member)
	if err != nil {
		return nil, err
	}
	hub, err := NewHubStack(app, HubStackName, &HubStackProps{MemberTemplate: string(body), Catalog: cat})
	if err != nil {
		return nil, err
	}
	return &Stacks{Hub: hub, Member: member, Artifacts: artifacts}, nil
}

// synthDetached synthesizes one stack in an app of its own (in a temporary directory) and returns
// its template.
func synthDetached(define func(awscdk.App) awscdk.Stack) (tmpl map[string]any, err error) {
	dir, err := os.MkdirTemp("", "spikewatch-synth-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), AnalyticsReporting: jsii.Bool(false)})
	stack := define(app)
	if stack == nil {
		return nil, fmt.Errorf("no stack")
	}
	return stackTemplate(app, stack)
}

// stackTemplate synthesizes app (once) and returns the template of stack.
func stackTemplate(app awscdk.App, stack awscdk.Stack) (map[string]any, error) {
	asm := app.Synth(nil)
	t := asm.GetStackArtifact(stack.ArtifactId()).Template()
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TemplateJSON is the canonical text of a template: keys sorted, one-space indent, final newline.
func TemplateJSON(t map[string]any) ([]byte, error) {
	b, err := json.MarshalIndent(t, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
