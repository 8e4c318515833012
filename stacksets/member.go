package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudtrail"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// MemberStackProps configures the member stack.
type MemberStackProps struct {
	awscdk.StackProps
	// Catalog gives the EventBridge pattern (its eventSources and eventNames).
	Catalog *catalog.Catalog
}

// Fixed settings of the member stack (not parameters: changing them needs a code review anyway).
const (
	agentTimeoutSeconds   = 60
	queueVisibilitySecs   = 6 * agentTimeoutSeconds // AWS's advice for SQS event sources
	queueRetentionSeconds = 14 * 24 * 3600          // SQS's maximum: the agent's buffer while the hub is away
	trailName             = "spikewatch-agent"
)

// NewMemberStack defines the stack the StackSet deploys into every member account and region. It is
// environment-agnostic, takes only CloudFormation parameters and has no assets, as StackSets require.
func NewMemberStack(scope constructs.Construct, id string, props *MemberStackProps) (awscdk.Stack, error) {
	if props == nil || props.Catalog == nil {
		return nil, fmt.Errorf("member stack: no catalog")
	}
	pattern, err := EventPattern(props.Catalog)
	if err != nil {
		return nil, err
	}
	sprops := props.StackProps
	sprops.Synthesizer = awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{})
	sprops.AnalyticsReporting = jsii.Bool(false)
	sprops.Description = jsii.String(fmt.Sprintf(
		"Spikewatch member: EventBridge rule, queue and agent for the catalog %s (%d APIs)", props.Catalog.Digest, len(props.Catalog.APIs)))
	stack := awscdk.NewStack(scope, jsii.String(id), &sprops)

	p := map[string]awscdk.CfnParameter{}
	for _, spec := range memberParams {
		p[spec.Name] = spec.declare(stack)
	}

	trailEnabled := condition(stack, "TrailEnabled", isTrue(p["EnableLambdaTrail"]))
	trailManagement := condition(stack, "IncludeManagementEvents", isTrue(p["TrailManagementEvents"]))
	reserved := condition(stack, "HasReservedConcurrency", awscdk.Fn_ConditionNot(
		awscdk.Fn_ConditionEquals(p["AgentReservedConcurrency"].ValueAsString(), jsii.String("0"))))
	enrichmentRegion := condition(stack, "IsEnrichmentRoleRegion",
		awscdk.Fn_ConditionEquals(awscdk.Aws_REGION(), p["EnrichmentRoleRegion"].ValueAsString()))

	// The queue between EventBridge and the agent, and its dead-letter queue.
	dlq := awssqs.NewCfnQueue(stack, jsii.String("DeadLetterQueue"), &awssqs.CfnQueueProps{
		SqsManagedSseEnabled:   jsii.Bool(true),
		MessageRetentionPeriod: jsii.Number(queueRetentionSeconds),
	})
	queue := awssqs.NewCfnQueue(stack, jsii.String("Queue"), &awssqs.CfnQueueProps{
		SqsManagedSseEnabled:   jsii.Bool(true),
		MessageRetentionPeriod: jsii.Number(queueRetentionSeconds),
		VisibilityTimeout:      jsii.Number(queueVisibilitySecs),
		RedrivePolicy: map[string]any{
			"deadLetterTargetArn": dlq.AttrArn(),
			"maxReceiveCount":     p["QueueMaxReceiveCount"].ValueAsNumber(),
		},
	})

	// The rule: CloudTrail API calls of the catalog's APIs, to the queue; what cannot be delivered
	// goes to the dead-letter queue.
	rule := awsevents.NewCfnRule(stack, jsii.String("Rule"), &awsevents.CfnRuleProps{
		Description:  jsii.String("CloudTrail API calls of the Spikewatch catalog " + props.Catalog.Digest),
		EventBusName: jsii.String("default"),
		EventPattern: pattern,
		State:        jsii.String("ENABLED"),
		Targets: &[]any{&awsevents.CfnRule_TargetProperty{
			Id:               jsii.String("agent-queue"),
			Arn:              queue.AttrArn(),
			DeadLetterConfig: &awsevents.CfnRule_DeadLetterConfigProperty{Arn: dlq.AttrArn()},
			RetryPolicy: &awsevents.CfnRule_RetryPolicyProperty{
				MaximumEventAgeInSeconds: jsii.Number(86400),
				MaximumRetryAttempts:     jsii.Number(185),
			},
		}},
	})
	for _, q := range []struct {
		id string
		q  awssqs.CfnQueue
	}{{"QueuePolicy", queue}, {"DeadLetterQueuePolicy", dlq}} {
		awssqs.NewCfnQueuePolicy(stack, jsii.String(q.id), &awssqs.CfnQueuePolicyProps{
			Queues: jsii.Strings(*q.q.Ref()),
			PolicyDocument: policyDoc(
				stmt{
					"Sid":       "EventBridgeRule",
					"Effect":    "Allow",
					"Principal": map[string]any{"Service": "events.amazonaws.com"},
					"Action":    "sqs:SendMessage",
					"Resource":  q.q.AttrArn(),
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": rule.AttrArn()}},
				},
				denyInsecureTransport("sqs:*", q.q.AttrArn()),
			),
		})
	}

	// The agent: its log group, its role (its queue and its logs, nothing else), the function and
	// the SQS event source.
	logGroup := awslogs.NewCfnLogGroup(stack, jsii.String("AgentLogGroup"), &awslogs.CfnLogGroupProps{
		RetentionInDays: p["AgentLogRetentionDays"].ValueAsNumber(),
	})
	role := awsiam.NewCfnRole(stack, jsii.String("AgentRole"), &awsiam.CfnRoleProps{
		Description: jsii.String("Spikewatch agent: reads its queue and writes its logs"),
		AssumeRolePolicyDocument: serviceTrust("lambda.amazonaws.com", map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
		}),
		Policies: &[]any{&awsiam.CfnRole_PolicyProperty{
			PolicyName: jsii.String("agent"),
			PolicyDocument: policyDoc(
				withSid("Queue", allow([]string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}, queue.AttrArn())),
				withSid("Logs", allow([]string{"logs:CreateLogStream", "logs:PutLogEvents"}, logGroup.AttrArn())),
			),
		}},
	})
	fn := awslambda.NewCfnFunction(stack, jsii.String("AgentFunction"), &awslambda.CfnFunctionProps{
		Description:   jsii.String("Spikewatch agent: counts the catalog's CloudTrail events and streams the counts to the hub"),
		Architectures: jsii.Strings("arm64"),
		Runtime:       jsii.String("provided.al2023"),
		Handler:       jsii.String("bootstrap"),
		Code: &awslambda.CfnFunction_CodeProperty{
			S3Bucket: join("-", p["AgentCodeBucketPrefix"].ValueAsString(), awscdk.Aws_REGION()),
			S3Key:    p["AgentCodeKey"].ValueAsString(),
		},
		Role:       role.AttrArn(),
		MemorySize: p["AgentMemorySize"].ValueAsNumber(),
		Timeout:    jsii.Number(agentTimeoutSeconds),
		ReservedConcurrentExecutions: awscdk.Token_AsNumber(ifCond(reserved,
			p["AgentReservedConcurrency"].ValueAsNumber(), awscdk.Aws_NO_VALUE())),
		Environment: &awslambda.CfnFunction_EnvironmentProperty{Variables: &map[string]*string{
			"HUB_ENDPOINT":              p["HubEndpoint"].ValueAsString(),
			"SPIKEWATCH_LOG_LEVEL":      p["AgentLogLevel"].ValueAsString(),
			"SPIKEWATCH_CATALOG_DIGEST": jsii.String(props.Catalog.Digest),
		}},
		LoggingConfig: &awslambda.CfnFunction_LoggingConfigProperty{
			LogGroup:  logGroup.Ref(),
			LogFormat: jsii.String("JSON"),
		},
	})
	awslambda.NewCfnEventSourceMapping(stack, jsii.String("AgentEventSource"), &awslambda.CfnEventSourceMappingProps{
		FunctionName:                   fn.Ref(),
		EventSourceArn:                 queue.AttrArn(),
		Enabled:                        jsii.Bool(true),
		BatchSize:                      p["AgentBatchSize"].ValueAsNumber(),
		MaximumBatchingWindowInSeconds: p["AgentBatchingWindowSeconds"].ValueAsNumber(),
		FunctionResponseTypes:          jsii.Strings("ReportBatchItemFailures"),
		ScalingConfig: &awslambda.CfnEventSourceMapping_ScalingConfigProperty{
			MaximumConcurrency: p["AgentMaxConcurrency"].ValueAsNumber(),
		},
	})

	// The optional account trail: EventBridge only sees what a trail records. Lambda data events
	// of every function but the agent's own (whose invocations would otherwise feed themselves),
	// and write management events unless an organization trail already records them.
	trailBucket := awss3.NewCfnBucket(stack, jsii.String("TrailBucket"), &awss3.CfnBucketProps{
		BucketEncryption: &awss3.CfnBucket_BucketEncryptionProperty{
			ServerSideEncryptionConfiguration: &[]any{&awss3.CfnBucket_ServerSideEncryptionRuleProperty{
				ServerSideEncryptionByDefault: &awss3.CfnBucket_ServerSideEncryptionByDefaultProperty{SseAlgorithm: jsii.String("AES256")},
			}},
		},
		PublicAccessBlockConfiguration: blockPublicAccess(),
		OwnershipControls: &awss3.CfnBucket_OwnershipControlsProperty{Rules: &[]any{
			&awss3.CfnBucket_OwnershipControlsRuleProperty{ObjectOwnership: jsii.String("BucketOwnerEnforced")},
		}},
		LifecycleConfiguration: &awss3.CfnBucket_LifecycleConfigurationProperty{Rules: &[]any{
			&awss3.CfnBucket_RuleProperty{
				Id:               jsii.String("expire-trail-logs"),
				Status:           jsii.String("Enabled"),
				ExpirationInDays: p["TrailRetentionDays"].ValueAsNumber(),
			},
		}},
	})
	trailBucket.CfnOptions().SetCondition(trailEnabled)
	// Kept when the stack goes (an account leaving the OUs): a bucket with log files cannot be
	// deleted by CloudFormation, and the logs are evidence.
	trailBucket.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	trailArn := sub("arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/" + trailName)
	trailSource := map[string]any{"StringEquals": map[string]any{"aws:SourceArn": trailArn}}
	trailBucketPolicy := awss3.NewCfnBucketPolicy(stack, jsii.String("TrailBucketPolicy"), &awss3.CfnBucketPolicyProps{
		Bucket: trailBucket.Ref(),
		PolicyDocument: policyDoc(
			stmt{
				"Sid": "CloudTrailAclCheck", "Effect": "Allow",
				"Principal": map[string]any{"Service": "cloudtrail.amazonaws.com"},
				"Action":    "s3:GetBucketAcl", "Resource": trailBucket.AttrArn(), "Condition": trailSource,
			},
			stmt{
				"Sid": "CloudTrailWrite", "Effect": "Allow",
				"Principal": map[string]any{"Service": "cloudtrail.amazonaws.com"},
				"Action":    "s3:PutObject",
				"Resource":  join("", trailBucket.AttrArn(), jsii.String("/AWSLogs/"), awscdk.Aws_ACCOUNT_ID(), jsii.String("/*")),
				"Condition": trailSource,
			},
			denyInsecureTransport("s3:*", trailBucket.AttrArn(), join("", trailBucket.AttrArn(), jsii.String("/*"))),
		),
	})
	trailBucketPolicy.CfnOptions().SetCondition(trailEnabled)
	lambdaSelector := map[string]any{
		"Name": "Lambda invocations except the Spikewatch agent's own",
		"FieldSelectors": []any{
			map[string]any{"Field": "eventCategory", "Equals": []string{"Data"}},
			map[string]any{"Field": "resources.type", "Equals": []string{"AWS::Lambda::Function"}},
			map[string]any{"Field": "resources.ARN", "NotStartsWith": []any{fn.AttrArn()}},
		},
	}
	managementSelector := map[string]any{
		"Name": "Write management events",
		"FieldSelectors": []any{
			map[string]any{"Field": "eventCategory", "Equals": []string{"Management"}},
			map[string]any{"Field": "readOnly", "Equals": []string{"false"}},
		},
	}
	trail := awscloudtrail.NewCfnTrail(stack, jsii.String("Trail"), &awscloudtrail.CfnTrailProps{
		TrailName:                  jsii.String(trailName),
		IsLogging:                  jsii.Bool(true),
		S3BucketName:               trailBucket.Ref(),
		IsMultiRegionTrail:         jsii.Bool(false),
		IncludeGlobalServiceEvents: jsii.Bool(false),
		EnableLogFileValidation:    jsii.Bool(true),
		AdvancedEventSelectors: ifCond(trailManagement,
			[]any{managementSelector, lambdaSelector}, []any{lambdaSelector}),
	})
	trail.CfnOptions().SetCondition(trailEnabled)
	trail.AddResourceDependency(trailBucketPolicy, nil)

	// The read-only enrichment role, assumable by the hub's role alone, with the organization id
	// as external id. IAM is global, so only one region's stack instance creates it.
	enrichment := awsiam.NewCfnRole(stack, jsii.String("EnrichmentRole"), &awsiam.CfnRoleProps{
		RoleName:           p["EnrichmentRoleName"].ValueAsString(),
		Description:        jsii.String("Spikewatch hub: read-only look-ups that enrich an alert"),
		MaxSessionDuration: jsii.Number(3600),
		AssumeRolePolicyDocument: policyDoc(stmt{
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": p["HubRoleArn"].ValueAsString()},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": p["OrganizationId"].ValueAsString()}},
		}),
		Policies: &[]any{&awsiam.CfnRole_PolicyProperty{
			PolicyName: jsii.String("enrichment-read-only"),
			PolicyDocument: policyDoc(
				// These four actions support no resource-level permissions.
				withSid("Describe", allow([]string{"ec2:DescribeInstances", "ec2:DescribeVolumes", "cloudtrail:LookupEvents", "tag:GetResources"}, "*")),
				withSid("Functions", allow([]string{"lambda:GetFunction"}, sub("arn:${AWS::Partition}:lambda:*:${AWS::AccountId}:function:*"))),
			),
		}},
	})
	enrichment.CfnOptions().SetCondition(enrichmentRegion)

	output(stack, "AgentFunctionArn", "The agent function", fn.AttrArn(), nil)
	output(stack, "QueueUrl", "The agent's queue", queue.Ref(), nil)
	output(stack, "DeadLetterQueueUrl", "Events the agent or EventBridge could not handle", dlq.Ref(), nil)
	output(stack, "EnrichmentRoleArn", "The role the hub assumes for enrichment", enrichment.AttrArn(), enrichmentRegion)
	return stack, nil
}

func withSid(sid string, s stmt) stmt {
	s["Sid"] = sid
	return s
}

func blockPublicAccess() *awss3.CfnBucket_PublicAccessBlockConfigurationProperty {
	return &awss3.CfnBucket_PublicAccessBlockConfigurationProperty{
		BlockPublicAcls:       jsii.Bool(true),
		BlockPublicPolicy:     jsii.Bool(true),
		IgnorePublicAcls:      jsii.Bool(true),
		RestrictPublicBuckets: jsii.Bool(true),
	}
}
