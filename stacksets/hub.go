package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudformation"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscognito"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsopensearchservice"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// HubStackProps configures the hub stack.
type HubStackProps struct {
	awscdk.StackProps
	// MemberTemplate is the member stack's template (JSON), the StackSet's template body.
	MemberTemplate string
	Catalog        *catalog.Catalog
}

// Fixed settings of the hub.
const (
	hubGrpcPort      = 9090 // the hub's gRPC listener (plain h2c; the NLB terminates TLS)
	hubHTTPPort      = 8080 // the hub's HTTP listener: alert webhook from the domain (via the internal NLB), /healthz, /metrics
	hubTaskCPU       = 512
	hubTaskMemoryMiB = 1024
	hubTasks         = 2
	vpcCidr          = "10.64.0.0/16"
	engineVersion    = "OpenSearch_2.19"
	hubContainerName = "hub"
)

// Parameters of the hub stack; the member parameters it passes through unchanged are added to these.
var hubParams = []paramSpec{
	memberParam("OrganizationId"),
	{Name: "TargetOrganizationalUnitIds", Type: "CommaDelimitedList", NoDefault: true,
		Description: "OUs (ou-... or the root r-...) whose accounts, present and future, get the member stack"},
	{Name: "TargetRegions", Type: "CommaDelimitedList", NoDefault: true,
		Description: "Regions the member stack is deployed to in every target account"},
	{Name: "DeployMembers", Type: "String", Default: "false", Allowed: boolValues,
		Description: "Create the StackSet; set true once the agent zip is in the artifact bucket of every target region"},
	{Name: "StackSetName", Type: "String", Default: "spikewatch-member", Pattern: `^[a-zA-Z][-a-zA-Z0-9]{0,127}$`,
		Description: "Name of the StackSet"},
	{Name: "CallAs", Type: "String", Default: "SELF", Allowed: []string{"SELF", "DELEGATED_ADMIN"},
		Description: "SELF in the management account; DELEGATED_ADMIN in a delegated administrator account for StackSets"},
	{Name: "RetainStacksOnAccountRemoval", Type: "String", Default: "false", Allowed: boolValues,
		Description: "Keep the member stack in an account that leaves the target OUs"},
	{Name: "FailureTolerancePercentage", Type: "Number", Default: "10", MinValue: 0, MaxValue: 100,
		Description: "Percentage of accounts per region that may fail before the StackSet stops the operation"},
	{Name: "MaxConcurrentPercentage", Type: "Number", Default: "25", MinValue: 1, MaxValue: 100,
		Description: "Percentage of accounts per region deployed at the same time"},
	{Name: "HubImage", Type: "String", NoDefault: true,
		Description: "Container image of the hub (its entrypoint the spikewatch binary), for example <account>.dkr.ecr.<region>.amazonaws.com/spikewatch:v1"},
	{Name: "HubCpuArchitecture", Type: "String", Default: "ARM64", Allowed: []string{"ARM64", "X86_64"},
		Description: "CPU architecture of the hub image"},
	{Name: "HubDomainName", Type: "String", NoDefault: true, Pattern: `^[A-Za-z0-9.-]+$`,
		Description: "DNS name agents dial (port 443); it must be a name of HubCertificateArn and a CNAME or alias of the load balancer"},
	{Name: "HubCertificateArn", Type: "String", NoDefault: true, Pattern: `^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$`,
		Description: "ACM certificate of HubDomainName for the load balancer's TLS listener"},
	{Name: "AgentIngressCidr", Type: "String", Default: "0.0.0.0/0", Pattern: `^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$`,
		Description: "Addresses allowed to reach the hub's TLS listener (agents in Lambda have no fixed address)"},
	{Name: "HubLogRetentionDays", Type: "Number", Default: "30", Allowed: logRetentionValues,
		Description: "Retention of the hub's log group, in days"},
	artifactBucketPrefix,
	{Name: "DomainName", Type: "String", Default: "spikewatch", Pattern: `^[a-z][a-z0-9-]{2,27}$`,
		Description: "Name of the OpenSearch domain"},
	{Name: "DomainInstanceType", Type: "String", Default: "m6g.large.search",
		Description: "Instance type of the domain's data nodes"},
	{Name: "DomainInstanceCount", Type: "Number", Default: "2", MinValue: 2, MaxValue: 80,
		Description: "Number of data nodes (even: the domain spans two Availability Zones)"},
	{Name: "DomainVolumeSize", Type: "Number", Default: "100", MinValue: 10, MaxValue: 16384,
		Description: "gp3 EBS volume per data node, in GiB"},
	{Name: "DedicatedMasterType", Type: "String", Default: "",
		Description: "Instance type of three dedicated master nodes; empty for none"},
	{Name: "ExistingDomainArn", Type: "String", Default: "", Pattern: `^(arn:aws[a-z-]*:es:[a-z0-9-]+:[0-9]{12}:domain/[a-z][a-z0-9-]{2,27})?$`,
		Description: "ARN of an existing OpenSearch domain to use instead of creating one; empty creates the domain and its Cognito login"},
	{Name: "ExistingDomainEndpoint", Type: "String", Default: "",
		Description: "Endpoint (host name, without https://) of that existing domain"},
	{Name: "ExistingDomainSecurityGroupId", Type: "String", Default: "", Pattern: `^(sg-[0-9a-f]{8,17})?$`,
		Description: "Security group of that existing (VPC) domain, allowed to call the hub's webhook port"},
	{Name: "CognitoDomainPrefix", Type: "String", Default: "spikewatch", Pattern: `^[a-z0-9][a-z0-9-]{0,48}$`,
		Description: "Prefix of the Cognito hosted login domain, <prefix>-<account id>"},
	memberParam("EnrichmentRoleName"),
	memberParam("EnrichmentRoleRegion"),
}

// NewHubStack defines the hub stack: OpenSearch domain with Cognito login, the hub service on
// Fargate behind a TLS Network Load Balancer, the alert topic, the artifact bucket and the StackSet.
func NewHubStack(scope constructs.Construct, id string, props *HubStackProps) (awscdk.Stack, error) {
	if props == nil || props.MemberTemplate == "" || props.Catalog == nil {
		return nil, fmt.Errorf("hub stack: no member template or catalog")
	}
	if len(props.MemberTemplate) > maxTemplateBody {
		return nil, fmt.Errorf("member template is %d bytes; a StackSet's template body holds at most %d", len(props.MemberTemplate), maxTemplateBody)
	}
	sprops := props.StackProps
	sprops.AnalyticsReporting = jsii.Bool(false)
	sprops.Description = jsii.String("Spikewatch hub: OpenSearch, hub service, alert topic, artifact bucket and the member StackSet (catalog " + props.Catalog.Digest + ")")
	stack := awscdk.NewStack(scope, jsii.String(id), &sprops)

	p := map[string]awscdk.CfnParameter{}
	for _, spec := range hubParams {
		p[spec.Name] = spec.declare(stack)
	}
	var passThrough []string
	for _, spec := range memberParams {
		if !hubComputed[spec.Name] {
			p[spec.Name] = spec.declare(stack)
			passThrough = append(passThrough, spec.Name)
		}
	}
	str := func(name string) *string { return p[name].ValueAsString() }

	createDomain := condition(stack, "CreateDomain", awscdk.Fn_ConditionEquals(str("ExistingDomainArn"), jsii.String("")))
	dedicatedMaster := condition(stack, "HasDedicatedMaster", awscdk.Fn_ConditionNot(
		awscdk.Fn_ConditionEquals(str("DedicatedMasterType"), jsii.String(""))))
	existingDomainSG := condition(stack, "HasExistingDomainSecurityGroup", awscdk.Fn_ConditionAnd(
		awscdk.Fn_ConditionNot(createDomain),
		awscdk.Fn_ConditionNot(awscdk.Fn_ConditionEquals(str("ExistingDomainSecurityGroupId"), jsii.String("")))))
	retainStacks := condition(stack, "RetainStacks", isTrue(p["RetainStacksOnAccountRemoval"]))
	deployMembers := condition(stack, "CreateStackSet", isTrue(p["DeployMembers"]))

	// Network: two AZs, public subnets for the load balancer and the NAT gateway, private subnets
	// for the hub tasks and the domain.
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses:                  awsec2.IpAddresses_Cidr(jsii.String(vpcCidr)),
		MaxAzs:                       jsii.Number(2),
		NatGateways:                  jsii.Number(1),
		RestrictDefaultSecurityGroup: jsii.Bool(false), // true would add a custom resource, an asset
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(22)},
		},
	})
	private := vpc.PrivateSubnets()
	privateIDs := []*string{(*private)[0].SubnetId(), (*private)[1].SubnetId()}

	nlbSG := awsec2.NewSecurityGroup(stack, jsii.String("LoadBalancerSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(false), Description: jsii.String("Spikewatch hub load balancer: TLS from the agents"),
	})
	awsec2.NewCfnSecurityGroupIngress(stack, jsii.String("LoadBalancerIngress"), &awsec2.CfnSecurityGroupIngressProps{
		GroupId: nlbSG.SecurityGroupId(), IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
		CidrIp: str("AgentIngressCidr"), Description: jsii.String("agents, gRPC over TLS"),
	})
	hubSG := awsec2.NewSecurityGroup(stack, jsii.String("HubSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(true), Description: jsii.String("Spikewatch hub tasks"),
	})
	hubSG.Connections().AllowFrom(nlbSG, awsec2.Port_Tcp(jsii.Number(hubGrpcPort)), jsii.String("gRPC from the load balancer"))
	// The alert webhook: the domain calls the hub's HTTP port through an internal load balancer (a
	// stable name in front of the tasks) that admits the domain's security group and nothing else.
	webhookSG := awsec2.NewSecurityGroup(stack, jsii.String("WebhookLoadBalancerSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: vpc, AllowAllOutbound: jsii.Bool(false), Description: jsii.String("Spikewatch hub webhook load balancer: from the OpenSearch domain only"),
	})
	hubSG.Connections().AllowFrom(webhookSG, awsec2.Port_Tcp(jsii.Number(hubHTTPPort)), jsii.String("webhook and health checks from the internal load balancer"))
	domainSG := awsec2.NewCfnSecurityGroup(stack, jsii.String("DomainSecurityGroup"), &awsec2.CfnSecurityGroupProps{
		VpcId:            vpc.VpcId(),
		GroupDescription: jsii.String("Spikewatch OpenSearch domain: HTTPS from the hub, webhooks to the hub"),
		SecurityGroupIngress: &[]any{&awsec2.CfnSecurityGroup_IngressProperty{
			IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
			SourceSecurityGroupId: hubSG.SecurityGroupId(), Description: jsii.String("HTTPS from the hub"),
		}},
		SecurityGroupEgress: &[]any{&awsec2.CfnSecurityGroup_EgressProperty{
			IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(hubHTTPPort), ToPort: jsii.Number(hubHTTPPort),
			DestinationSecurityGroupId: webhookSG.SecurityGroupId(), Description: jsii.String("alert webhook to the hub"),
		}},
	})
	domainSG.CfnOptions().SetCondition(createDomain)
	for _, w := range []struct {
		id     string
		source *string
		cond   awscdk.CfnCondition
	}{
		{"WebhookIngress", domainSG.AttrGroupId(), createDomain},
		{"WebhookIngressFromExistingDomain", str("ExistingDomainSecurityGroupId"), existingDomainSG},
	} {
		ingress := awsec2.NewCfnSecurityGroupIngress(stack, jsii.String(w.id), &awsec2.CfnSecurityGroupIngressProps{
			GroupId: webhookSG.SecurityGroupId(), IpProtocol: jsii.String("tcp"),
			FromPort: jsii.Number(hubHTTPPort), ToPort: jsii.Number(hubHTTPPort),
			SourceSecurityGroupId: w.source,
			Description:           jsii.String("alert webhook from the OpenSearch domain only"),
		})
		ingress.CfnOptions().SetCondition(w.cond)
	}

	// The alert topic, encrypted with its own key.
	key := awskms.NewCfnKey(stack, jsii.String("AlertKey"), &awskms.CfnKeyProps{
		Description:         jsii.String("Spikewatch alert topic"),
		EnableKeyRotation:   jsii.Bool(true),
		PendingWindowInDays: jsii.Number(7),
		KeyPolicy: policyDoc(
			stmt{
				"Sid": "KeyAdministration", "Effect": "Allow",
				"Principal": map[string]any{"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
				"Action": []string{"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
					"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
					"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"},
				"Resource": "*",
			},
			stmt{
				"Sid": "KeyUseThroughIAM", "Effect": "Allow",
				"Principal": map[string]any{"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
				"Action":    []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"},
				"Resource":  "*",
			},
		),
	})
	topic := awssns.NewCfnTopic(stack, jsii.String("AlertTopic"), &awssns.CfnTopicProps{
		DisplayName:    jsii.String("Spikewatch alerts"),
		KmsMasterKeyId: key.AttrArn(),
	})
	awssns.NewCfnTopicPolicy(stack, jsii.String("AlertTopicPolicy"), &awssns.CfnTopicPolicyProps{
		Topics:         jsii.Strings(*topic.Ref()),
		PolicyDocument: policyDoc(denyInsecureTransport("sns:Publish", topic.Ref())),
	})

	artifacts := newArtifactBucket(stack, str("ArtifactBucketPrefix"), str("OrganizationId"))

	// The hub's task role. Its policy is a separate resource so that the domain's access policy can
	// name the role while the policy names the domain.
	hubRole := awsiam.NewCfnRole(stack, jsii.String("HubTaskRole"), &awsiam.CfnRoleProps{
		Description: jsii.String("Spikewatch hub tasks"),
		AssumeRolePolicyDocument: serviceTrust("ecs-tasks.amazonaws.com", map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
		}),
	})
	domainArn := awscdk.Token_AsString(ifCond(createDomain,
		sub("arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/${DomainName}"), str("ExistingDomainArn")), nil)
	awsiam.NewCfnPolicy(stack, jsii.String("HubTaskPolicy"), &awsiam.CfnPolicyProps{
		PolicyName: jsii.String("spikewatch-hub"),
		Roles:      jsii.Strings(*hubRole.Ref()),
		PolicyDocument: policyDoc(
			withSid("OpenSearch", allow([]string{"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"},
				domainArn, join("", domainArn, jsii.String("/*")))),
			// Organizations supports no resource-level permissions for these read calls that
			// enrich an alert with the account's name, OU path and tags.
			withSid("OrganizationsRead", allow([]string{"organizations:DescribeAccount", "organizations:DescribeOrganization",
				"organizations:DescribeOrganizationalUnit", "organizations:ListAccounts", "organizations:ListParents",
				"organizations:ListTagsForResource"}, "*")),
			withSid("PublishAlerts", allow([]string{"sns:Publish"}, topic.Ref())),
			withSid("AlertTopicKey", allow([]string{"kms:GenerateDataKey", "kms:Decrypt"}, key.AttrArn())),
			stmt{
				"Sid": "AssumeEnrichmentRole", "Effect": "Allow", "Action": "sts:AssumeRole",
				"Resource":  sub("arn:${AWS::Partition}:iam::*:role/${EnrichmentRoleName}"),
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": str("OrganizationId")}},
			},
		),
	})

	// Dashboards login: Cognito user pool (admins create users), identity pool, the admin group
	// mapped to the security role (the domain's fine-grained access control master), and the role
	// OpenSearch uses to configure Cognito.
	userPool := awscognito.NewCfnUserPool(stack, jsii.String("UserPool"), &awscognito.CfnUserPoolProps{
		UserPoolName:           sub("${DomainName}-dashboards"),
		AdminCreateUserConfig:  &awscognito.CfnUserPool_AdminCreateUserConfigProperty{AllowAdminCreateUserOnly: jsii.Bool(true)},
		UsernameAttributes:     jsii.Strings("email"),
		AutoVerifiedAttributes: jsii.Strings("email"),
		MfaConfiguration:       jsii.String("OPTIONAL"),
		EnabledMfas:            jsii.Strings("SOFTWARE_TOKEN_MFA"),
		Policies: &awscognito.CfnUserPool_PoliciesProperty{PasswordPolicy: &awscognito.CfnUserPool_PasswordPolicyProperty{
			MinimumLength: jsii.Number(12), RequireLowercase: jsii.Bool(true), RequireUppercase: jsii.Bool(true),
			RequireNumbers: jsii.Bool(true), RequireSymbols: jsii.Bool(true), TemporaryPasswordValidityDays: jsii.Number(3),
		}},
		AccountRecoverySetting: &awscognito.CfnUserPool_AccountRecoverySettingProperty{RecoveryMechanisms: &[]any{
			&awscognito.CfnUserPool_RecoveryOptionProperty{Name: jsii.String("verified_email"), Priority: jsii.Number(1)},
		}},
	})
	userPoolDomain := awscognito.NewCfnUserPoolDomain(stack, jsii.String("UserPoolDomain"), &awscognito.CfnUserPoolDomainProps{
		UserPoolId: userPool.Ref(),
		Domain:     join("-", str("CognitoDomainPrefix"), awscdk.Aws_ACCOUNT_ID()),
	})
	identityPool := awscognito.NewCfnIdentityPool(stack, jsii.String("IdentityPool"), &awscognito.CfnIdentityPoolProps{
		IdentityPoolName:               jsii.String("spikewatch_dashboards"),
		AllowUnauthenticatedIdentities: jsii.Bool(false),
	})
	cognitoTrust := policyDoc(stmt{
		"Effect":    "Allow",
		"Principal": map[string]any{"Federated": "cognito-identity.amazonaws.com"},
		"Action":    "sts:AssumeRoleWithWebIdentity",
		"Condition": map[string]any{
			"StringEquals":           map[string]any{"cognito-identity.amazonaws.com:aud": identityPool.Ref()},
			"ForAnyValue:StringLike": map[string]any{"cognito-identity.amazonaws.com:amr": "authenticated"},
		},
	})
	authRole := awsiam.NewCfnRole(stack, jsii.String("DashboardsUserRole"), &awsiam.CfnRoleProps{
		Description:              jsii.String("Spikewatch Dashboards users (no AWS permissions; access is set by fine-grained access control)"),
		AssumeRolePolicyDocument: cognitoTrust,
	})
	adminRole := awsiam.NewCfnRole(stack, jsii.String("SecurityAdminRole"), &awsiam.CfnRoleProps{
		Description:              jsii.String("Spikewatch security administrators: master user of the domain's fine-grained access control"),
		AssumeRolePolicyDocument: cognitoTrust,
	})
	adminGroup := awscognito.NewCfnUserPoolGroup(stack, jsii.String("AdminGroup"), &awscognito.CfnUserPoolGroupProps{
		UserPoolId: userPool.Ref(), GroupName: jsii.String("admin"), Precedence: jsii.Number(0),
		RoleArn: adminRole.AttrArn(), Description: jsii.String("Security administrators (mapped to SecurityAdminRole)"),
	})
	roleAttachment := awscognito.NewCfnIdentityPoolRoleAttachment(stack, jsii.String("IdentityPoolRoles"), &awscognito.CfnIdentityPoolRoleAttachmentProps{
		IdentityPoolId: identityPool.Ref(),
		Roles:          map[string]any{"authenticated": authRole.AttrArn()},
	})
	cognitoAccess := awsiam.NewCfnRole(stack, jsii.String("OpenSearchCognitoRole"), &awsiam.CfnRoleProps{
		Description:              jsii.String("Lets OpenSearch configure the Cognito login of the domain"),
		AssumeRolePolicyDocument: serviceTrust("opensearchservice.amazonaws.com", nil),
		ManagedPolicyArns:        &[]any{sub("arn:${AWS::Partition}:iam::aws:policy/AmazonOpenSearchServiceCognitoAccess")},
	})

	domain := awsopensearchservice.NewCfnDomain(stack, jsii.String("Domain"), &awsopensearchservice.CfnDomainProps{
		DomainName:    str("DomainName"),
		EngineVersion: jsii.String(engineVersion),
		ClusterConfig: &awsopensearchservice.CfnDomain_ClusterConfigProperty{
			InstanceType:           str("DomainInstanceType"),
			InstanceCount:          p["DomainInstanceCount"].ValueAsNumber(),
			ZoneAwarenessEnabled:   jsii.Bool(true),
			ZoneAwarenessConfig:    &awsopensearchservice.CfnDomain_ZoneAwarenessConfigProperty{AvailabilityZoneCount: jsii.Number(2)},
			DedicatedMasterEnabled: ifCond(dedicatedMaster, true, false),
			DedicatedMasterType:    awscdk.Token_AsString(ifCond(dedicatedMaster, str("DedicatedMasterType"), awscdk.Aws_NO_VALUE()), nil),
			DedicatedMasterCount:   awscdk.Token_AsNumber(ifCond(dedicatedMaster, 3, awscdk.Aws_NO_VALUE())),
		},
		EbsOptions: &awsopensearchservice.CfnDomain_EBSOptionsProperty{
			EbsEnabled: jsii.Bool(true), VolumeType: jsii.String("gp3"), VolumeSize: p["DomainVolumeSize"].ValueAsNumber(),
		},
		EncryptionAtRestOptions:     &awsopensearchservice.CfnDomain_EncryptionAtRestOptionsProperty{Enabled: jsii.Bool(true)},
		NodeToNodeEncryptionOptions: &awsopensearchservice.CfnDomain_NodeToNodeEncryptionOptionsProperty{Enabled: jsii.Bool(true)},
		DomainEndpointOptions: &awsopensearchservice.CfnDomain_DomainEndpointOptionsProperty{
			EnforceHttps:      jsii.Bool(true),
			TlsSecurityPolicy: jsii.String("Policy-Min-TLS-1-2-PFS-2023-10"),
		},
		AdvancedSecurityOptions: &awsopensearchservice.CfnDomain_AdvancedSecurityOptionsInputProperty{
			Enabled:                     jsii.Bool(true),
			InternalUserDatabaseEnabled: jsii.Bool(false),
			AnonymousAuthEnabled:        jsii.Bool(false),
			MasterUserOptions:           &awsopensearchservice.CfnDomain_MasterUserOptionsProperty{MasterUserArn: adminRole.AttrArn()},
		},
		CognitoOptions: &awsopensearchservice.CfnDomain_CognitoOptionsProperty{
			Enabled: jsii.Bool(true), UserPoolId: userPool.Ref(), IdentityPoolId: identityPool.Ref(), RoleArn: cognitoAccess.AttrArn(),
		},
		VpcOptions: &awsopensearchservice.CfnDomain_VPCOptionsProperty{
			SubnetIds:        &privateIDs,
			SecurityGroupIds: &[]*string{domainSG.AttrGroupId()},
		},
		AccessPolicies: policyDoc(stmt{
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": []any{hubRole.AttrArn(), adminRole.AttrArn(), authRole.AttrArn()}},
			"Action":    []string{"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"},
			"Resource":  sub("arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/${DomainName}/*"),
		}),
	})
	domain.AddResourceDependency(userPoolDomain, nil)
	// The data and the users outlive the stack.
	domain.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	userPool.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	roleMapping := dashboardsRoleMapping(stack, userPool, identityPool, authRole, adminRole)
	roleMapping.AddResourceDependency(domain, nil)
	roleMapping.AddResourceDependency(roleAttachment, nil)
	roleMapping.AddResourceDependency(adminGroup, nil)
	for _, r := range []awscdk.CfnResource{domainSG, userPool, userPoolDomain, identityPool, authRole, adminRole, adminGroup,
		roleAttachment, cognitoAccess, domain} {
		r.CfnOptions().SetCondition(createDomain)
	}
	domainEndpoint := awscdk.Token_AsString(ifCond(createDomain, domain.AttrDomainEndpoint(), str("ExistingDomainEndpoint")), nil)

	// The hub service: two Fargate tasks in the private subnets of two AZs.
	cluster := awsecs.NewCluster(stack, jsii.String("Cluster"), &awsecs.ClusterProps{Vpc: vpc})
	taskRole := awsiam.Role_FromRoleArn(stack, jsii.String("HubTaskRoleRef"), hubRole.AttrArn(), &awsiam.FromRoleArnOptions{Mutable: jsii.Bool(false)})
	task := awsecs.NewFargateTaskDefinition(stack, jsii.String("HubTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(hubTaskCPU),
		MemoryLimitMiB: jsii.Number(hubTaskMemoryMiB),
		TaskRole:       taskRole,
		RuntimePlatform: &awsecs.RuntimePlatform{
			CpuArchitecture:       awsecs.CpuArchitecture_Of(str("HubCpuArchitecture")),
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
		},
	})
	hubLogs := awslogs.NewCfnLogGroup(stack, jsii.String("HubLogGroup"), &awslogs.CfnLogGroupProps{
		RetentionInDays: p["HubLogRetentionDays"].ValueAsNumber(),
	})
	container := task.AddContainer(jsii.String(hubContainerName), &awsecs.ContainerDefinitionOptions{
		Image:                  awsecs.ContainerImage_FromRegistry(str("HubImage"), nil),
		Essential:              jsii.Bool(true),
		Command:                jsii.Strings("hub"),
		ReadonlyRootFilesystem: jsii.Bool(true),
		PortMappings: &[]*awsecs.PortMapping{
			{ContainerPort: jsii.Number(hubGrpcPort), Name: jsii.String("grpc")},
			{ContainerPort: jsii.Number(hubHTTPPort), Name: jsii.String("http")},
		},
		Environment: &map[string]*string{
			"SPIKEWATCH_LISTEN":               jsii.String(fmt.Sprintf(":%d", hubGrpcPort)),
			"SPIKEWATCH_HTTP_LISTEN":          jsii.String(fmt.Sprintf(":%d", hubHTTPPort)),
			"SPIKEWATCH_AUTH":                 jsii.String("aws"),
			"SPIKEWATCH_OPENSEARCH_URL":       join("", jsii.String("https://"), domainEndpoint),
			"SPIKEWATCH_SNS_TOPIC_ARN":        topic.Ref(),
			"SPIKEWATCH_ENRICHMENT_ROLE_NAME": str("EnrichmentRoleName"),
			"SPIKEWATCH_ORGANIZATION_ID":      str("OrganizationId"),
			"SPIKEWATCH_CATALOG_DIGEST":       jsii.String(props.Catalog.Digest),
		},
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     awslogs.LogGroup_FromLogGroupName(stack, jsii.String("HubLogGroupRef"), hubLogs.Ref()),
			StreamPrefix: jsii.String("hub"),
		}),
	})
	// Pulling a private ECR image: the token call has no resource-level permissions; the layers
	// come from this account's repositories only.
	task.AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("EcrToken"), Actions: jsii.Strings("ecr:GetAuthorizationToken"), Resources: jsii.Strings("*"),
	}))
	task.AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("EcrPull"),
		Actions:   jsii.Strings("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"),
		Resources: &[]*string{sub("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*")},
	}))
	service := awsecs.NewFargateService(stack, jsii.String("HubService"), &awsecs.FargateServiceProps{
		Cluster:                cluster,
		TaskDefinition:         task,
		DesiredCount:           jsii.Number(hubTasks),
		AssignPublicIp:         jsii.Bool(false),
		VpcSubnets:             &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		SecurityGroups:         &[]awsec2.ISecurityGroup{hubSG},
		MinHealthyPercent:      jsii.Number(50),
		MaxHealthyPercent:      jsii.Number(200),
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
		HealthCheckGracePeriod: awscdk.Duration_Seconds(jsii.Number(60)),
	})

	// The agents' way in: an internet-facing NLB terminating TLS, gRPC to the tasks.
	nlb := elbv2.NewNetworkLoadBalancer(stack, jsii.String("HubLoadBalancer"), &elbv2.NetworkLoadBalancerProps{
		Vpc:              vpc,
		InternetFacing:   jsii.Bool(true),
		CrossZoneEnabled: jsii.Bool(true),
		VpcSubnets:       &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		SecurityGroups:   &[]awsec2.ISecurityGroup{nlbSG},
	})
	listener := nlb.AddListener(jsii.String("Grpc"), &elbv2.BaseNetworkListenerProps{
		Port:         jsii.Number(443),
		Protocol:     elbv2.Protocol_TLS,
		Certificates: &[]elbv2.IListenerCertificate{elbv2.ListenerCertificate_FromArn(str("HubCertificateArn"))},
		SslPolicy:    elbv2.SslPolicy_RECOMMENDED_TLS,
		AlpnPolicy:   elbv2.AlpnPolicy_HTTP2_PREFERRED,
	})
	listener.AddTargets(jsii.String("Hub"), &elbv2.AddNetworkTargetsProps{
		Port:     jsii.Number(hubGrpcPort),
		Protocol: elbv2.Protocol_TCP,
		Targets: &[]elbv2.INetworkLoadBalancerTarget{service.LoadBalancerTarget(&awsecs.LoadBalancerTargetOptions{
			ContainerName: jsii.String(hubContainerName), ContainerPort: jsii.Number(hubGrpcPort),
		})},
		HealthCheck: &elbv2.HealthCheck{
			Protocol: elbv2.Protocol_TCP, Interval: awscdk.Duration_Seconds(jsii.Number(10)),
			HealthyThresholdCount: jsii.Number(2), UnhealthyThresholdCount: jsii.Number(2),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(30)),
	})

	webhookLB := elbv2.NewNetworkLoadBalancer(stack, jsii.String("WebhookLoadBalancer"), &elbv2.NetworkLoadBalancerProps{
		Vpc:              vpc,
		InternetFacing:   jsii.Bool(false),
		CrossZoneEnabled: jsii.Bool(true),
		VpcSubnets:       &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		SecurityGroups:   &[]awsec2.ISecurityGroup{webhookSG},
	})
	webhookListener := webhookLB.AddListener(jsii.String("Webhook"), &elbv2.BaseNetworkListenerProps{
		Port: jsii.Number(hubHTTPPort), Protocol: elbv2.Protocol_TCP,
	})
	webhookListener.AddTargets(jsii.String("Hub"), &elbv2.AddNetworkTargetsProps{
		Port:     jsii.Number(hubHTTPPort),
		Protocol: elbv2.Protocol_TCP,
		Targets: &[]elbv2.INetworkLoadBalancerTarget{service.LoadBalancerTarget(&awsecs.LoadBalancerTargetOptions{
			ContainerName: jsii.String(hubContainerName), ContainerPort: jsii.Number(hubHTTPPort),
		})},
		HealthCheck: &elbv2.HealthCheck{
			Protocol: elbv2.Protocol_HTTP, Path: jsii.String("/healthz"), Interval: awscdk.Duration_Seconds(jsii.Number(10)),
			HealthyThresholdCount: jsii.Number(2), UnhealthyThresholdCount: jsii.Number(2),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(30)),
	})
	webhookURL := join("", jsii.String("http://"), webhookLB.LoadBalancerDnsName(), jsii.String(fmt.Sprintf(":%d", hubHTTPPort)))
	container.AddEnvironment(jsii.String("SPIKEWATCH_WEBHOOK_URL"), webhookURL)

	// Readable logical ids for the main L2 resources (the golden template and the tests name them).
	for id, c := range map[string]constructs.IConstruct{
		"HubSecurityGroup": hubSG, "LoadBalancerSecurityGroup": nlbSG, "WebhookLoadBalancerSecurityGroup": webhookSG,
		"HubLoadBalancer": nlb, "WebhookLoadBalancer": webhookLB, "HubService": service, "HubTaskDefinition": task, "Cluster": cluster,
	} {
		c.Node().DefaultChild().(awscdk.CfnResource).OverrideLogicalId(jsii.String(id))
	}

	// The StackSet: the member template into every account of the target OUs and regions, and
	// into accounts that join them later.
	params := []any{
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("HubEndpoint"), ParameterValue: join(":", str("HubDomainName"), jsii.String("443"))},
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("HubRoleArn"), ParameterValue: hubRole.AttrArn()},
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("OrganizationId"), ParameterValue: str("OrganizationId")},
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("AgentCodeBucketPrefix"), ParameterValue: join("-", str("ArtifactBucketPrefix"), awscdk.Aws_ACCOUNT_ID())},
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("EnrichmentRoleName"), ParameterValue: str("EnrichmentRoleName")},
		&awscloudformation.CfnStackSet_ParameterProperty{ParameterKey: jsii.String("EnrichmentRoleRegion"), ParameterValue: str("EnrichmentRoleRegion")},
	}
	for _, name := range passThrough {
		params = append(params, &awscloudformation.CfnStackSet_ParameterProperty{
			ParameterKey: jsii.String(name), ParameterValue: awscdk.Token_AsString(p[name].Value(), nil),
		})
	}
	stackSet := awscloudformation.NewCfnStackSet(stack, jsii.String("MemberStackSet"), &awscloudformation.CfnStackSetProps{
		StackSetName:    str("StackSetName"),
		Description:     jsii.String("Spikewatch member stack: agent, queue and EventBridge rule of the catalog " + props.Catalog.Digest),
		PermissionModel: jsii.String("SERVICE_MANAGED"),
		CallAs:          str("CallAs"),
		Capabilities:    jsii.Strings("CAPABILITY_NAMED_IAM"),
		AutoDeployment: &awscloudformation.CfnStackSet_AutoDeploymentProperty{
			Enabled:                      jsii.Bool(true),
			RetainStacksOnAccountRemoval: ifCond(retainStacks, true, false),
		},
		ManagedExecution: map[string]any{"Active": true}, // typed Json in the L1: written as CloudFormation spells it
		OperationPreferences: &awscloudformation.CfnStackSet_OperationPreferencesProperty{
			FailureTolerancePercentage: p["FailureTolerancePercentage"].ValueAsNumber(),
			MaxConcurrentPercentage:    p["MaxConcurrentPercentage"].ValueAsNumber(),
			RegionConcurrencyType:      jsii.String("PARALLEL"),
			// Soft: MaxConcurrentPercentage holds even when it exceeds the failure tolerance
			// (strict mode would cap the concurrency at the tolerance plus one account).
			ConcurrencyMode: jsii.String("SOFT_FAILURE_TOLERANCE"),
		},
		StackInstancesGroup: &[]any{&awscloudformation.CfnStackSet_StackInstancesProperty{
			DeploymentTargets: &awscloudformation.CfnStackSet_DeploymentTargetsProperty{
				OrganizationalUnitIds: p["TargetOrganizationalUnitIds"].ValueAsList(),
			},
			Regions: p["TargetRegions"].ValueAsList(),
		}},
		Parameters:   &params,
		TemplateBody: jsii.String(props.MemberTemplate),
	})
	stackSet.CfnOptions().SetCondition(deployMembers)
	// Members need the artifact bucket (their trust policy names the hub's role, a reference already).
	stackSet.AddResourceDependency(artifacts, nil)

	output(stack, "HubLoadBalancerDnsName", "Point HubDomainName (CNAME or alias) here", nlb.LoadBalancerDnsName(), nil)
	output(stack, "HubRoleArn", "The hub's task role (members trust it for enrichment)", hubRole.AttrArn(), nil)
	output(stack, "HubSecurityGroupId", "Allow it on 443 in an existing domain's security group", hubSG.SecurityGroupId(), nil)
	output(stack, "WebhookUrl", "The hub's alert webhook, reachable from the domain only (the hub configures the notification channel with it)", webhookURL, nil)
	output(stack, "AlertTopicArn", "The central alert topic", topic.Ref(), nil)
	output(stack, "ArtifactBucketName", "Upload the agent zip here (AgentCodeKey)", artifacts.Ref(), nil)
	// The endpoint is an Fn::If on CreateDomain whose true branch names the conditional domain:
	// that is sound, but the synth-time validator cannot see it.
	awscdk.Annotations_Of(stack).AcknowledgeWarning(jsii.String("CloudFormation-Validate::W1001"), jsii.String("Fn::If on CreateDomain guards the reference"))
	output(stack, "DomainEndpoint", "The OpenSearch domain (reachable from the VPC)", domainEndpoint, nil)
	output(stack, "DashboardsUrl", "OpenSearch Dashboards (Cognito login, from the VPC)",
		join("", jsii.String("https://"), domain.AttrDomainEndpoint(), jsii.String("/_dashboards/")), createDomain)
	output(stack, "UserPoolId", "Create Dashboards users here; add administrators to the admin group", userPool.Ref(), createDomain)
	output(stack, "StackSetId", "The member StackSet", stackSet.AttrStackSetId(), deployMembers)
	return stack, nil
}

// maxTemplateBody is CloudFormation's limit on an inline template body.
const maxTemplateBody = 51200

// dashboardsRolePython maps the user pool's app client (created by OpenSearch when it enables the
// Cognito login, so unknown to CloudFormation) to "Token" role resolution in the identity pool:
// members of the admin group then get SecurityAdminRole, other users DashboardsUserRole. Inline
// code (ZipFile), not an asset; cfnresponse is provided to inline Python functions.
const dashboardsRolePython = `import boto3
import cfnresponse


def handler(event, context):
    try:
        if event["RequestType"] in ("Create", "Update"):
            p = event["ResourceProperties"]
            idp = boto3.client("cognito-idp")
            identity = boto3.client("cognito-identity")
            clients = idp.list_user_pool_clients(UserPoolId=p["UserPoolId"], MaxResults=60)["UserPoolClients"]
            if not clients:
                raise RuntimeError("user pool %s has no app client; is the domain's Cognito login enabled?" % p["UserPoolId"])
            roles = identity.get_identity_pool_roles(IdentityPoolId=p["IdentityPoolId"]).get("Roles", {})
            roles["authenticated"] = p["AuthenticatedRoleArn"]
            mappings = {}
            for c in clients[:10]:
                provider = "cognito-idp.%s.amazonaws.com/%s:%s" % (p["Region"], p["UserPoolId"], c["ClientId"])
                mappings[provider] = {"Type": "Token", "AmbiguousRoleResolution": "AuthenticatedRole"}
            identity.set_identity_pool_roles(IdentityPoolId=p["IdentityPoolId"], Roles=roles, RoleMappings=mappings)
        cfnresponse.send(event, context, cfnresponse.SUCCESS, {})
    except Exception as e:
        cfnresponse.send(event, context, cfnresponse.FAILED, {}, reason=str(e)[:500])
`

func dashboardsRoleMapping(stack awscdk.Stack, userPool awscognito.CfnUserPool, identityPool awscognito.CfnIdentityPool,
	authRole, adminRole awsiam.CfnRole) awscdk.CfnResource {
	createDomain := "CreateDomain"
	logs := awslogs.NewCfnLogGroup(stack, jsii.String("RoleMappingLogGroup"), &awslogs.CfnLogGroupProps{RetentionInDays: jsii.Number(30)})
	identityPoolArn := join("", sub("arn:${AWS::Partition}:cognito-identity:${AWS::Region}:${AWS::AccountId}:identitypool/"), identityPool.Ref())
	role := awsiam.NewCfnRole(stack, jsii.String("RoleMappingFunctionRole"), &awsiam.CfnRoleProps{
		Description: jsii.String("Maps the Dashboards login's app client to token-based roles"),
		AssumeRolePolicyDocument: serviceTrust("lambda.amazonaws.com", map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
		}),
		Policies: &[]any{&awsiam.CfnRole_PolicyProperty{
			PolicyName: jsii.String("role-mapping"),
			PolicyDocument: policyDoc(
				withSid("UserPoolClients", allow([]string{"cognito-idp:ListUserPoolClients"}, userPool.AttrArn())),
				withSid("IdentityPoolRoles", allow([]string{"cognito-identity:GetIdentityPoolRoles", "cognito-identity:SetIdentityPoolRoles"}, identityPoolArn)),
				withSid("PassRoles", allow([]string{"iam:PassRole"}, authRole.AttrArn(), adminRole.AttrArn())),
				withSid("Logs", allow([]string{"logs:CreateLogStream", "logs:PutLogEvents"}, logs.AttrArn())),
			),
		}},
	})
	fn := awslambda.NewCfnFunction(stack, jsii.String("RoleMappingFunction"), &awslambda.CfnFunctionProps{
		Description:   jsii.String("Spikewatch: maps the Dashboards app client to token-based roles (custom resource)"),
		Runtime:       jsii.String("python3.13"),
		Architectures: jsii.Strings("arm64"),
		Handler:       jsii.String("index.handler"),
		Timeout:       jsii.Number(60),
		Role:          role.AttrArn(),
		Code:          &awslambda.CfnFunction_CodeProperty{ZipFile: jsii.String(dashboardsRolePython)},
		LoggingConfig: &awslambda.CfnFunction_LoggingConfigProperty{LogGroup: logs.Ref()},
	})
	cr := awscdk.NewCfnResource(stack, jsii.String("DashboardsRoleMapping"), &awscdk.CfnResourceProps{
		Type: jsii.String("Custom::DashboardsRoleMapping"),
		Properties: &map[string]any{
			"ServiceToken":         fn.AttrArn(),
			"UserPoolId":           userPool.Ref(),
			"IdentityPoolId":       identityPool.Ref(),
			"AuthenticatedRoleArn": authRole.AttrArn(),
			"Region":               awscdk.Aws_REGION(),
		},
	})
	for _, r := range []awscdk.CfnResource{logs, role, fn, cr} {
		r.CfnOptions().SetCondition(stack.Node().FindChild(jsii.String(createDomain)).(awscdk.CfnCondition))
	}
	return cr
}
