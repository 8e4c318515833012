package cli

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spikewatch/spikewatch/dashboards"
)

const dashboardsUsage = `usage: spikewatch dashboards <export|import> [flags]

  export   write the saved objects (index patterns, visualizations, dashboards) as NDJSON to stdout
  import   import them into OpenSearch Dashboards through its saved objects API

Run 'spikewatch dashboards <export|import> -h' for the flags.
`

// Dashboards implements `spikewatch dashboards export|import`: the OpenSearch Dashboards saved
// objects Spikewatch ships (Organization and Account dashboards).
func Dashboards(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dashboardsUsage)
		return 2
	}
	switch args[0] {
	case "export":
		return dashboardsExport(args[1:], stdout, stderr)
	case "import":
		return dashboardsImport(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, dashboardsUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "spikewatch dashboards: unknown subcommand %q\n\n%s", args[0], dashboardsUsage)
		return 2
	}
}

func dashboardsExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboards export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix := fs.String("index-prefix", dashboards.DefaultPrefix, "index name prefix the index patterns point at")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *prefix == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "spikewatch dashboards export: takes --index-prefix (not empty) and no arguments")
		return 2
	}
	if _, err := stdout.Write(dashboards.ForPrefix(*prefix)); err != nil {
		fmt.Fprintln(stderr, "spikewatch dashboards export:", err)
		return 1
	}
	return 0
}

func dashboardsImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboards import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dashURL := fs.String("url", envOr("SPIKEWATCH_DASHBOARDS_URL", ""), "OpenSearch Dashboards base URL, e.g. https://domain/_dashboards (env SPIKEWATCH_DASHBOARDS_URL)")
	user := fs.String("user", envOr("SPIKEWATCH_DASHBOARDS_USER", ""), "basic auth user (env SPIKEWATCH_DASHBOARDS_USER)")
	pass := fs.String("password", envOr("SPIKEWATCH_DASHBOARDS_PASSWORD", ""), "basic auth password (env SPIKEWATCH_DASHBOARDS_PASSWORD, preferred)")
	prefix := fs.String("index-prefix", dashboards.DefaultPrefix, "index name prefix the index patterns point at")
	overwrite := fs.Bool("overwrite", true, "replace objects that already exist")
	ca := fs.String("ca", "", "PEM file of the CA that signed the Dashboards certificate (default: system roots)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dashURL == "" || *prefix == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "spikewatch dashboards import: --url is required, --index-prefix must not be empty, no arguments")
		return 2
	}
	client := &http.Client{Timeout: time.Minute}
	if *ca != "" {
		pool, err := loadPool(*ca)
		if err != nil {
			fmt.Fprintln(stderr, "spikewatch dashboards import: --ca:", err)
			return 2
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.Transport = tr
	}
	res, err := dashboards.ImportNDJSON(ctx, *dashURL, client, *user, *pass, *overwrite, dashboards.ForPrefix(*prefix))
	if err != nil {
		fmt.Fprintln(stderr, "spikewatch dashboards import:", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d saved objects into %s (index prefix %s)\n", res.SuccessCount, *dashURL, *prefix)
	return 0
}
