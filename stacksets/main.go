// Command stacksets is the Spikewatch CDK app: the hub stack (OpenSearch, hub service, alert topic,
// artifact bucket, and the StackSet that rolls the member stack out to an organization) and the
// member stack, whose EventBridge pattern comes from the catalog.
//
//	go run . synth [--catalog PATH] [--outdir DIR]
//
// writes SpikewatchHub.template.json (in the CDK cloud assembly), SpikewatchMember.template.json and
// SpikewatchArtifacts.template.json to cdk.out. Run by the CDK CLI (cdk.json), it takes the catalog
// from the context value "catalog" (cdk deploy -c catalog=PATH).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "stacksets:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "synth" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("stacksets", flag.ContinueOnError)
	catalogPath := fs.String("catalog", "", "catalog file (default: the embedded catalog, or the context value \"catalog\")")
	outdir := fs.String("outdir", "", "output directory (default: $CDK_OUTDIR, else cdk.out)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (usage: go run . synth [--catalog PATH] [--outdir DIR])", fs.Args())
	}
	props := &awscdk.AppProps{AnalyticsReporting: jsii.Bool(false)}
	switch {
	case *outdir != "":
		props.Outdir = outdir
	case os.Getenv("CDK_OUTDIR") == "":
		// Run by hand rather than by the CDK CLI: the CLI's default directory, not a temporary one.
		props.Outdir = jsii.String("cdk.out")
	}
	app := awscdk.NewApp(props)
	path := *catalogPath
	if path == "" {
		if v, ok := app.Node().TryGetContext(jsii.String("catalog")).(string); ok {
			path = v
		}
	}
	cat, err := catalog.Load(path)
	if err != nil {
		return err
	}
	stacks, err := Build(app, cat)
	if err != nil {
		return err
	}
	app.Synth(nil)
	dir := *app.Outdir()
	for name, t := range map[string]map[string]any{MemberStackName: stacks.Member, ArtifactsStackName: stacks.Artifacts} {
		b, err := TemplateJSON(t)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".template.json"), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "stacksets: catalog %s (%d APIs): %s/{%s,%s,%s}.template.json\n",
		cat.Digest, len(cat.APIs), dir, HubStackName, MemberStackName, ArtifactsStackName)
	return nil
}
