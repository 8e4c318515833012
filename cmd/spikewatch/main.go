// Command spikewatch counts CloudTrail API calls per minute (count, agent), indexes them into
// OpenSearch (hub) and finds spikes in them.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: spikewatch <command> [flags]

commands:
  count PATH...   count CloudTrail files (a file or directory tree) and print the counts
  agent           read CloudTrail and stream counts to a hub
  hub             receive counts from agents and index them into OpenSearch
  generate        write a realistic multi-account CloudTrail workload
  version         print the version
`

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "version":
		fmt.Println(version)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "spikewatch: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
