package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// newArtifactBucket adds the bucket <prefix>-<account>-<region> that holds the agent's Lambda code:
// encrypted, never public, TLS only, readable (s3:GetObject) by every principal of the organization
// and nobody else. Lambda requires the code in the function's region, so there is one per region:
// the hub stack has the hub region's, and the artifacts template (cdk.out/SpikewatchArtifacts.template.json)
// makes the others.
func newArtifactBucket(stack awscdk.Stack, prefix, orgID *string) awss3.CfnBucket {
	bucket := awss3.NewCfnBucket(stack, jsii.String("ArtifactBucket"), &awss3.CfnBucketProps{
		BucketName: join("-", prefix, awscdk.Aws_ACCOUNT_ID(), awscdk.Aws_REGION()),
		BucketEncryption: &awss3.CfnBucket_BucketEncryptionProperty{
			ServerSideEncryptionConfiguration: &[]any{&awss3.CfnBucket_ServerSideEncryptionRuleProperty{
				ServerSideEncryptionByDefault: &awss3.CfnBucket_ServerSideEncryptionByDefaultProperty{SseAlgorithm: jsii.String("AES256")},
			}},
		},
		PublicAccessBlockConfiguration: blockPublicAccess(),
		OwnershipControls: &awss3.CfnBucket_OwnershipControlsProperty{Rules: &[]any{
			&awss3.CfnBucket_OwnershipControlsRuleProperty{ObjectOwnership: jsii.String("BucketOwnerEnforced")},
		}},
		VersioningConfiguration: &awss3.CfnBucket_VersioningConfigurationProperty{Status: jsii.String("Enabled")},
	})
	bucket.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil) // holds the code every member's Lambda was created from
	objects := join("", bucket.AttrArn(), jsii.String("/*"))
	awss3.NewCfnBucketPolicy(stack, jsii.String("ArtifactBucketPolicy"), &awss3.CfnBucketPolicyProps{
		Bucket: bucket.Ref(),
		PolicyDocument: policyDoc(
			stmt{
				"Sid":       "OrganizationRead",
				"Effect":    "Allow",
				"Principal": map[string]any{"AWS": "*"},
				"Action":    "s3:GetObject",
				"Resource":  objects,
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": orgID}},
			},
			denyInsecureTransport("s3:*", bucket.AttrArn(), objects),
		),
	})
	return bucket
}

var artifactBucketPrefix = paramSpec{
	Name: "ArtifactBucketPrefix", Type: "String", Default: "spikewatch-artifacts", Pattern: `^[a-z0-9][a-z0-9-]{1,26}$`,
	Description: "The artifact bucket is named <prefix>-<hub account id>-<region>",
}

// NewArtifactsStack is the artifact bucket alone, deployed (with the same parameters) in every
// region of the StackSet other than the hub's.
func NewArtifactsStack(scope constructs.Construct, id string) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
		Synthesizer:        awscdk.NewBootstraplessSynthesizer(&awscdk.BootstraplessSynthesizerProps{}),
		AnalyticsReporting: jsii.Bool(false),
		Description:        jsii.String("Spikewatch: the agent's artifact bucket of one region, readable by the organization"),
	})
	prefix := artifactBucketPrefix.declare(stack)
	org := memberParam("OrganizationId").declare(stack)
	bucket := newArtifactBucket(stack, prefix.ValueAsString(), org.ValueAsString())
	output(stack, "ArtifactBucketName", "Upload the agent zip here", bucket.Ref(), nil)
	return stack
}
