package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The organization: accounts built from templates (the first ones make a small, realistic org; more
// are sandboxes), each with rates, regions, functions and principals drawn from the seed.

type template struct {
	name, ou, env, team string
	activity            float64 // relative busyness; 1 is a busy production account
}

var templates = []template{
	{"prod-payments", "Root/Workloads/Prod", "prod", "payments", 1.0},
	{"prod-web", "Root/Workloads/Prod", "prod", "web", 1.2},
	{"dev-sandbox-1", "Root/Sandbox", "sandbox", "platform", 0.05},
	{"prod-data-platform", "Root/Workloads/Prod", "prod", "data", 0.8},
	{"staging-payments", "Root/Workloads/NonProd", "staging", "payments", 0.3},
	{"shared-services", "Root/Infrastructure", "shared", "platform", 0.25},
	{"prod-orders", "Root/Workloads/Prod", "prod", "orders", 0.9},
	{"dev-web", "Root/Workloads/NonProd", "dev", "web", 0.15},
	{"security-tooling", "Root/Security", "security", "security", 0.2},
	{"dev-sandbox-2", "Root/Sandbox", "sandbox", "data", 0.05},
	{"staging-web", "Root/Workloads/NonProd", "staging", "web", 0.3},
	{"log-archive", "Root/Security", "security", "security", 0.05},
	{"prod-analytics", "Root/Workloads/Prod", "prod", "analytics", 0.6},
	{"dev-data", "Root/Workloads/NonProd", "dev", "data", 0.15},
	{"network-hub", "Root/Infrastructure", "shared", "network", 0.1},
}

var functionNames = map[string][]string{
	"payments":  {"payments-api", "payment-webhook-handler", "ledger-writer", "fraud-score", "refund-processor", "settlement-batch", "card-tokenizer"},
	"web":       {"web-ssr-renderer", "image-resize", "session-authorizer", "contact-form", "sitemap-builder", "search-suggest"},
	"data":      {"ingest-kinesis-consumer", "etl-orchestrator", "parquet-compactor", "glue-job-trigger", "s3-object-indexer", "schema-validator"},
	"orders":    {"order-events-consumer", "order-api", "inventory-sync", "shipping-notifier", "cart-expiry", "invoice-renderer"},
	"analytics": {"events-aggregator", "report-generator", "dashboard-api", "athena-query-runner"},
	"platform":  {"log-forwarder", "ami-cleanup", "tag-enforcer", "cost-reporter"},
	"security":  {"guardduty-forwarder", "config-rule-evaluator", "securityhub-triage"},
	"network":   {"route-table-sync", "flowlog-parser"},
}

var people = []string{"alice.nguyen", "bram.devries", "chen.wei", "dana.okafor", "emma.schmidt", "farid.haddad",
	"grace.kim", "hugo.martin", "isla.murphy", "jonas.berg", "kavya.rao", "liam.obrien", "maya.cohen", "noah.silva"}

// utcOffsets gives each region's home time zone (standard time; a demo needs no DST).
var utcOffsets = map[string]int{
	"us-east-1": -5, "us-east-2": -5, "us-west-1": -8, "us-west-2": -8, "ca-central-1": -5, "sa-east-1": -3,
	"eu-west-1": 0, "eu-west-2": 0, "eu-central-1": 1, "eu-north-1": 1, "eu-south-1": 1, "eu-west-3": 1,
	"ap-southeast-1": 8, "ap-southeast-2": 10, "ap-northeast-1": 9, "ap-northeast-2": 9, "ap-south-1": 5,
}

type principalKind int

const (
	kindUser    principalKind = iota // IAM user with a long-term key
	kindRole                         // assumed role
	kindService                      // AWS service (userIdentity type AWSService)
)

// principal is a caller in an account.
type principal struct {
	kind      principalKind
	name      string // user or role name; service principal for kindService
	path      string // role path, "" or "aws-service-role/autoscaling.amazonaws.com/"
	id        string // AIDA.../AROA... unique id
	key       string // long-term access key of a user
	sessions  []string
	invokedBy string
	agents    []string
	ips       []string // source IPs; "" means the invoking service's host name
	mfa       bool
}

// function is a Lambda function and how it is invoked.
type function struct {
	name, region, arn string
	rate              float64 // calls per minute at the busiest hour
	source            string  // apigateway, events, s3 or sdk
	alias             string  // qualifier used by API Gateway callers, "" if none
	version           int
	sourceArn         string     // the API, rule or bucket that triggers it
	caller            *principal // for sdk callers
	execRole          *principal
}

type account struct {
	Account
	idx          int
	tmpl         template
	regionShare  map[string]float64 // share of the account's regional traffic
	runRate      float64            // RunInstances per minute at the busiest hour
	volRate      float64            // CreateVolume per minute at the busiest hour
	noiseRate    float64            // non-catalog calls per minute at the busiest hour
	functions    []*function
	humans       *principal
	ci, legacy   *principal
	app, ebsCSI  *principal
	autoscaling  *principal
	configSvc    *principal
	natIPs       []string
	buckets      []string
	amis         []string
	subnetPrefix string
	kmsKey       string
}

// lambdaRate is the account's Invoke rate at its busiest hour, over all functions.
func (a *account) lambdaRate() float64 {
	var s float64
	for _, f := range a.functions {
		s += f.rate
	}
	return s
}

func (a *account) function(name string) *function {
	for _, f := range a.functions {
		if f.name == name {
			return f
		}
	}
	return nil
}

var (
	corporateCIDRs = []string{"203.0.113.", "198.51.100.", "192.0.2."}
	consoleAgents  = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
		"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
	}
	cliAgents = []string{
		"aws-cli/2.18.4 md/awscrt#0.22.0 ua/2.0 os/macos#24.0.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off",
		"aws-cli/2.17.50 md/awscrt#0.21.2 ua/2.0 os/linux#6.8.0-47-generic md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off",
	}
	terraformAgent = "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.75.1 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.4 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64"
	javaAgent      = "aws-sdk-java/2.28.16 Linux/5.10.227-219.884.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS Java/21.0.5 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy"
	boto3Agent     = "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#5.10.226-214.880.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54"
	nodeAgent      = "aws-sdk-js/3.682.0 ua/2.1 os/linux#5.10.227-239.884.amzn2.x86_64 lang/js md/nodejs#20.18.0 exec-env/AWS_Lambda_nodejs20.x api/lambda#3.682.0"
	csiAgent       = "aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.187.0 ebs-csi-driver/v1.36.0"
)

// buildOrg builds the accounts of cfg (with defaults set).
func buildOrg(cfg Config) []*account {
	r := newRand(cfg.Seed, streamOrg)
	ids := map[string]bool{}
	ssoSuffix := randString(r, hexLow, 16)
	accounts := make([]*account, cfg.Accounts)
	for i := range accounts {
		t := templateFor(i)
		a := &account{idx: i, tmpl: t}
		for a.ID == "" || ids[a.ID] {
			a.ID = fmt.Sprintf("%012d", 100000000000+r.Int64N(900000000000))
		}
		ids[a.ID] = true
		a.Name, a.OU = t.name, t.ou
		a.Tags = map[string]string{
			"environment": t.env,
			"team":        t.team,
			"cost-center": fmt.Sprintf("CC-%04d", 1000+r.IntN(9000)),
			"owner":       t.team + "-team@example.com",
		}
		a.setRegions(r, cfg.Regions)
		activity := t.activity * lognormal(r, 0.25)
		a.runRate = (0.01 + 0.05*activity) * lognormal(r, 0.3) * cfg.Scale
		a.volRate = (0.008 + 0.05*activity) * lognormal(r, 0.3) * cfg.Scale
		a.noiseRate = (0.4 + 9*activity) * cfg.NoiseRate * cfg.Scale
		a.kmsKey = uuid(r)
		for j := range 2 + r.IntN(3) {
			a.buckets = append(a.buckets, fmt.Sprintf("%s-%s-%d", t.team, pick(r, []string{"assets", "exports", "uploads", "artifacts", "reports", "raw"}), j+1)+"-"+a.ID[8:])
		}
		a.buildPrincipals(r, ssoSuffix)
		a.buildFunctions(r, activity*cfg.Scale)
		for range 3 {
			a.amis = append(a.amis, "ami-0"+randString(r, hexLow, 16))
		}
		a.subnetPrefix = "subnet-0" + randString(r, hexLow, 12)
		accounts[i] = a
	}
	return accounts
}

func templateFor(i int) template {
	if i < len(templates) {
		return templates[i]
	}
	n := i - len(templates) + 3 // dev-sandbox-1 and -2 are templates
	return template{fmt.Sprintf("dev-sandbox-%d", n), "Root/Sandbox", "sandbox", "platform", 0.05}
}

func (a *account) setRegions(r *rand.Rand, regions []string) {
	order := slices.Clone(regions)
	// The home region is mostly the first; some accounts live elsewhere.
	if len(order) > 1 && r.Float64() < 0.35 {
		j := 1 + r.IntN(len(order)-1)
		order[0], order[j] = order[j], order[0]
	}
	n := 1
	if len(order) > 1 {
		extra := 1
		if a.tmpl.env == "prod" || a.tmpl.env == "shared" {
			extra = 2
		}
		n += r.IntN(min(extra, len(order)-1) + 1)
	}
	a.HomeRegion, a.Regions = order[0], order[:n]
	a.UTCOffset = utcOffsets[a.HomeRegion]
	a.regionShare = map[string]float64{a.HomeRegion: 1}
	total := 1.0
	for _, reg := range a.Regions[1:] {
		s := 0.15 + 0.25*r.Float64()
		a.regionShare[reg] = s
		total += s
	}
	for reg := range a.regionShare {
		a.regionShare[reg] /= total
	}
	for range 2 {
		a.natIPs = append(a.natIPs, fmt.Sprintf("%s.%d.%d.%d", pick(r, []string{"3", "18", "34", "52", "54"}), r.IntN(256), r.IntN(256), 1+r.IntN(254)))
	}
}

func newRole(r *rand.Rand, name, path string) *principal {
	return &principal{kind: kindRole, name: name, path: path, id: "AROA" + randString(r, upperID, 17)}
}

func (a *account) buildPrincipals(r *rand.Rand, ssoSuffix string) {
	corp := func() []string {
		var ips []string
		for range 3 {
			ips = append(ips, pick(r, corporateCIDRs)+fmt.Sprint(10+r.IntN(240)))
		}
		return ips
	}
	permission := "AdministratorAccess"
	if a.tmpl.env == "prod" || a.tmpl.env == "security" {
		permission = "PowerUserAccess"
	}
	a.humans = newRole(r, "AWSReservedSSO_"+permission+"_"+ssoSuffix, "aws-reserved/sso.amazonaws.com/")
	a.humans.mfa = true
	start := r.IntN(len(people))
	for i := range 2 + r.IntN(4) {
		a.humans.sessions = append(a.humans.sessions, people[(start+i)%len(people)]+"@example.com")
	}
	a.humans.agents = append(slices.Clone(consoleAgents), cliAgents...)
	a.humans.ips = corp()

	a.ci = newRole(r, "github-actions-deploy", "")
	a.ci.sessions = []string{"GitHubActions"}
	a.ci.agents = []string{terraformAgent}
	for range 4 {
		a.ci.ips = append(a.ci.ips, fmt.Sprintf("20.%d.%d.%d", 20+r.IntN(200), r.IntN(256), 1+r.IntN(254)))
	}

	a.legacy = &principal{kind: kindUser, name: "svc-" + a.tmpl.team + "-legacy", id: "AIDA" + randString(r, upperID, 17),
		key: "AKIA" + randString(r, upperID, 16), agents: []string{boto3Agent}, ips: corp()}

	a.app = newRole(r, a.tmpl.team+"-app-task-role", "")
	for range 4 {
		a.app.sessions = append(a.app.sessions, randString(r, hexLow, 32))
	}
	a.app.agents = []string{javaAgent}
	a.app.ips = a.natIPs

	a.ebsCSI = newRole(r, "eks-ebs-csi-controller", "")
	a.ebsCSI.sessions = []string{fmt.Sprint(1730000000000000000 + r.Int64N(1e15))}
	a.ebsCSI.agents = []string{csiAgent}
	a.ebsCSI.ips = a.natIPs

	a.autoscaling = newRole(r, "AWSServiceRoleForAutoScaling", "aws-service-role/autoscaling.amazonaws.com/")
	a.autoscaling.sessions = []string{"AutoScaling"}
	a.autoscaling.invokedBy = "autoscaling.amazonaws.com"
	a.autoscaling.agents = []string{"autoscaling.amazonaws.com"}
	a.autoscaling.ips = []string{""}

	a.configSvc = newRole(r, "AWSServiceRoleForConfig", "aws-service-role/config.amazonaws.com/")
	a.configSvc.sessions = []string{"AWSConfig-Describe"}
	a.configSvc.invokedBy = "config.amazonaws.com"
	a.configSvc.agents = []string{"config.amazonaws.com"}
	a.configSvc.ips = []string{""}
}

func (a *account) buildFunctions(r *rand.Rand, activity float64) {
	names := slices.Clone(functionNames[a.tmpl.team])
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	n := 1 + r.IntN(2)
	switch a.tmpl.env {
	case "prod":
		n = 4 + r.IntN(3)
	case "staging", "shared", "security":
		n = 2 + r.IntN(2)
	}
	n = min(n, len(names))
	for _, name := range names[:n] {
		f := &function{name: name, rate: 5 * activity * lognormal(r, 0.5), version: 1 + r.IntN(40)}
		f.region = a.HomeRegion
		if len(a.Regions) > 1 && r.Float64() < 0.25 {
			f.region = pick(r, a.Regions[1:])
		}
		f.arn = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", f.region, a.ID, name)
		f.source = pick(r, []string{"apigateway", "apigateway", "events", "s3", "sdk", "sdk"})
		switch f.source {
		case "apigateway":
			if r.IntN(2) == 0 {
				f.alias = "live"
			}
			f.sourceArn = fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/prod/POST/%s", f.region, a.ID, strings.ToLower(randString(r, alnum[:36], 10)), name)
		case "events":
			f.sourceArn = fmt.Sprintf("arn:aws:events:%s:%s:rule/%s-schedule", f.region, a.ID, name)
		case "s3":
			f.sourceArn = "arn:aws:s3:::" + pick(r, a.buckets)
		}
		f.execRole = newRole(r, name+"-role-"+strings.ToLower(randString(r, upperID, 8)), "service-role/")
		f.execRole.sessions = []string{name}
		f.execRole.agents = []string{nodeAgent}
		f.execRole.ips = a.natIPs
		if f.source == "sdk" {
			f.caller = a.app
		}
		a.functions = append(a.functions, f)
		a.Functions = append(a.Functions, name)
	}
}
