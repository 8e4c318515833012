package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// paramSpec declares one CloudFormation parameter. The member stack's parameters are declared from
// memberParams; the hub stack declares the same spec for every member parameter it passes through to
// the StackSet unchanged, so the two can never disagree on a default or an allowed value.
type paramSpec struct {
	Name        string
	Type        string // "String", "Number", "CommaDelimitedList"
	Default     string // "" with NoDefault false means an empty-string default
	NoDefault   bool   // the parameter is required
	Description string
	Allowed     []string
	Pattern     string
	MinValue    float64
	MaxValue    float64
}

func (p paramSpec) declare(stack awscdk.Stack) awscdk.CfnParameter {
	props := &awscdk.CfnParameterProps{
		Type:        jsii.String(p.Type),
		Description: jsii.String(p.Description),
	}
	if !p.NoDefault {
		props.Default = jsii.String(p.Default)
	}
	if len(p.Allowed) > 0 {
		props.AllowedValues = jsii.Strings(p.Allowed...)
	}
	if p.Pattern != "" {
		props.AllowedPattern = jsii.String(p.Pattern)
	}
	if p.MinValue != 0 || p.MaxValue != 0 {
		props.MinValue = jsii.Number(p.MinValue)
		props.MaxValue = jsii.Number(p.MaxValue)
	}
	return awscdk.NewCfnParameter(stack, jsii.String(p.Name), props)
}

var boolValues = []string{"true", "false"}

var logRetentionValues = []string{"1", "3", "5", "7", "14", "30", "60", "90", "120", "150", "180", "365", "400", "545", "731", "1096", "1827", "2192", "2557", "2922", "3288", "3653"}

// Parameters of the member stack. The hub passes HubEndpoint, HubRoleArn, OrganizationId,
// AgentCodeBucketPrefix, EnrichmentRoleName and EnrichmentRoleRegion from its own resources and
// parameters (see hubComputed); every other member parameter is a hub parameter of the same name.
var memberParams = []paramSpec{
	{Name: "HubEndpoint", Type: "String", NoDefault: true, Pattern: `^[A-Za-z0-9.-]+:[0-9]+$`,
		Description: "host:port of the hub's gRPC endpoint (TLS), for example hub.spikewatch.example.com:443"},
	{Name: "HubRoleArn", Type: "String", NoDefault: true, Pattern: `^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$`,
		Description: "ARN of the hub's task role: the only principal allowed to assume the enrichment role"},
	{Name: "OrganizationId", Type: "String", NoDefault: true, Pattern: `^o-[a-z0-9]{10,32}$`,
		Description: "AWS Organizations id (o-...): the external id the hub presents when it assumes the enrichment role"},
	{Name: "AgentCodeBucketPrefix", Type: "String", NoDefault: true, Pattern: `^[a-z0-9][a-z0-9.-]{1,40}$`,
		Description: "The agent code is read from the bucket <prefix>-<region> of the region the stack runs in"},
	{Name: "AgentCodeKey", Type: "String", Default: "spikewatch/agent-lambda-arm64.zip",
		Description: "S3 key of the agent's zip (a linux/arm64 executable named bootstrap) in the artifact bucket"},
	{Name: "AgentMemorySize", Type: "Number", Default: "256", MinValue: 128, MaxValue: 10240,
		Description: "Memory of the agent Lambda function, in MB"},
	{Name: "AgentReservedConcurrency", Type: "Number", Default: "0", MinValue: 0, MaxValue: 1000,
		Description: "Reserved concurrency of the agent function; 0 reserves none (accounts with a concurrency limit of 10 cannot reserve any)"},
	{Name: "AgentMaxConcurrency", Type: "Number", Default: "2", MinValue: 2, MaxValue: 1000,
		Description: "Most concurrent agent invocations the SQS event source starts"},
	{Name: "AgentBatchSize", Type: "Number", Default: "1000", MinValue: 1, MaxValue: 10000,
		Description: "Most SQS messages (CloudTrail events) per agent invocation"},
	{Name: "AgentBatchingWindowSeconds", Type: "Number", Default: "10", MinValue: 1, MaxValue: 300,
		Description: "Seconds the SQS event source gathers messages before it invokes the agent"},
	{Name: "AgentLogLevel", Type: "String", Default: "info", Allowed: []string{"debug", "info", "warn", "error"},
		Description: "Log level of the agent"},
	{Name: "AgentLogRetentionDays", Type: "Number", Default: "30", Allowed: logRetentionValues,
		Description: "Retention of the agent's CloudWatch log group, in days"},
	{Name: "QueueMaxReceiveCount", Type: "Number", Default: "5", MinValue: 1, MaxValue: 1000,
		Description: "Receives of a message before SQS moves it to the dead-letter queue"},
	{Name: "EnableLambdaTrail", Type: "String", Default: "true", Allowed: boolValues,
		Description: "Create an account trail in this region that records Lambda Invoke data events (needed for lambda:Invoke counts)"},
	{Name: "TrailManagementEvents", Type: "String", Default: "true", Allowed: boolValues,
		Description: "Whether that trail also records write management events; set false when an organization trail already records them (a second copy is billed)"},
	{Name: "TrailRetentionDays", Type: "Number", Default: "7", MinValue: 1, MaxValue: 3650,
		Description: "Days the trail's log files are kept in its bucket"},
	{Name: "EnrichmentRoleName", Type: "String", Default: "spikewatch-enrichment", Pattern: `^[A-Za-z0-9+=,.@_-]{1,64}$`,
		Description: "Name of the read-only enrichment role (IAM is global: the role is created in EnrichmentRoleRegion only)"},
	{Name: "EnrichmentRoleRegion", Type: "String", Default: "us-east-1", Pattern: `^[a-z]{2}(-[a-z]+)+-[0-9]$`,
		Description: "The one region whose stack instance creates the enrichment role; it must be one of the StackSet's regions"},
}

// hubComputed lists the member parameters whose values the hub stack computes.
var hubComputed = map[string]bool{
	"HubEndpoint":           true,
	"HubRoleArn":            true,
	"OrganizationId":        true,
	"AgentCodeBucketPrefix": true,
	"EnrichmentRoleName":    true,
	"EnrichmentRoleRegion":  true,
}

func memberParam(name string) paramSpec {
	for _, p := range memberParams {
		if p.Name == name {
			return p
		}
	}
	panic("no member parameter " + name)
}
