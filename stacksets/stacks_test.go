package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

func TestDomainEncryptedHTTPSOnlyWithFineGrainedAccessAndCognito(t *testing.T) {
	must(t, "one domain", func() { hubT.ResourceCountIs(jsii.String("AWS::OpenSearchService::Domain"), jsii.Number(1)) })
	must(t, "domain settings", func() {
		hubT.HasResourceProperties(jsii.String("AWS::OpenSearchService::Domain"), map[string]any{
			"EngineVersion":               "OpenSearch_2.19",
			"EncryptionAtRestOptions":     map[string]any{"Enabled": true},
			"NodeToNodeEncryptionOptions": map[string]any{"Enabled": true},
			"DomainEndpointOptions":       map[string]any{"EnforceHTTPS": true, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
			"AdvancedSecurityOptions": map[string]any{
				"Enabled":                     true,
				"InternalUserDatabaseEnabled": false,
				"MasterUserOptions":           map[string]any{"MasterUserARN": getAtt("SecurityAdminRole", "Arn")},
			},
			"CognitoOptions": map[string]any{
				"Enabled":        true,
				"UserPoolId":     ref("UserPool"),
				"IdentityPoolId": ref("IdentityPool"),
				"RoleArn":        getAtt("OpenSearchCognitoRole", "Arn"),
			},
			"ClusterConfig": map[string]any{"ZoneAwarenessEnabled": true, "InstanceType": ref("DomainInstanceType")},
			"EBSOptions":    map[string]any{"EBSEnabled": true, "VolumeType": "gp3"},
			"VPCOptions":    map[string]any{"SecurityGroupIds": []any{getAtt("DomainSecurityGroup", "GroupId")}},
		})
	})
	must(t, "admin group mapped to the security role", func() {
		hubT.HasResourceProperties(jsii.String("AWS::Cognito::UserPoolGroup"), map[string]any{
			"GroupName": "admin", "RoleArn": getAtt("SecurityAdminRole", "Arn"), "UserPoolId": ref("UserPool"),
		})
	})
	must(t, "only administrators create users", func() {
		hubT.HasResourceProperties(jsii.String("AWS::Cognito::UserPool"), map[string]any{
			"AdminCreateUserConfig": map[string]any{"AllowAdminCreateUserOnly": true},
		})
	})
	must(t, "no unauthenticated identities", func() {
		hubT.HasResourceProperties(jsii.String("AWS::Cognito::IdentityPool"), map[string]any{"AllowUnauthenticatedIdentities": false})
	})
	must(t, "the role mapping custom resource", func() {
		hubT.HasResourceProperties(jsii.String("Custom::DashboardsRoleMapping"), map[string]any{
			"UserPoolId": ref("UserPool"), "IdentityPoolId": ref("IdentityPool"),
		})
	})
	// Every resource of the domain and its login is skipped when an existing domain is given.
	for _, id := range []string{"Domain", "UserPool", "IdentityPool", "AdminGroup", "SecurityAdminRole", "DashboardsRoleMapping", "DomainSecurityGroup"} {
		if c := resources(hubJSON)[id]["Condition"]; c != "CreateDomain" {
			t.Errorf("%s has condition %v, want CreateDomain", id, c)
		}
	}
}

func TestArtifactBucketReadableByTheOrganizationOnly(t *testing.T) {
	for name, tmpl := range map[string]map[string]any{"hub": hubJSON, "artifacts": stacks.Artifacts} {
		buckets := resourcesOfType(tmpl, "AWS::S3::Bucket")
		b, ok := buckets["ArtifactBucket"]
		if !ok {
			t.Fatalf("%s: no ArtifactBucket", name)
		}
		bp := props(b)
		if !equalJSON(bp["PublicAccessBlockConfiguration"], map[string]any{
			"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}) {
			t.Errorf("%s: public access block %v", name, bp["PublicAccessBlockConfiguration"])
		}
		if !strings.Contains(mustJSON(bp["BucketEncryption"]), "AES256") {
			t.Errorf("%s: bucket encryption %v", name, bp["BucketEncryption"])
		}
		pol := props(resourcesOfType(tmpl, "AWS::S3::BucketPolicy")["ArtifactBucketPolicy"])
		if !equalJSON(pol["Bucket"], ref("ArtifactBucket")) {
			t.Errorf("%s: policy on %v", name, pol["Bucket"])
		}
		var allows []map[string]any
		for _, s := range statements(pol["PolicyDocument"]) {
			switch s["Effect"] {
			case "Allow":
				allows = append(allows, s)
			case "Deny":
				if !strings.Contains(mustJSON(s["Condition"]), `"aws:SecureTransport":"false"`) {
					t.Errorf("%s: a Deny other than TLS-only: %v", name, s)
				}
			}
		}
		if len(allows) != 1 {
			t.Fatalf("%s: %d Allow statements, want exactly one: %v", name, len(allows), allows)
		}
		a := allows[0]
		if !slices.Equal(toStrings(a["Action"]), []string{"s3:GetObject"}) {
			t.Errorf("%s: allowed actions %v, want s3:GetObject only", name, a["Action"])
		}
		if !equalJSON(a["Principal"], map[string]any{"AWS": "*"}) {
			t.Errorf("%s: principal %v", name, a["Principal"])
		}
		if !equalJSON(a["Condition"], map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": ref("OrganizationId")}}) {
			t.Errorf("%s: condition %v, want aws:PrincipalOrgID = the OrganizationId parameter and nothing else", name, a["Condition"])
		}
	}
	// Through the CDK assertions as well.
	must(t, "bucket policy", func() {
		hubT.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), map[string]any{
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Effect": "Allow", "Action": "s3:GetObject",
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": ref("OrganizationId")}},
			})})},
		})
	})
}

func TestStackSetServiceManagedWithAutoDeployment(t *testing.T) {
	must(t, "stack set", func() {
		hubT.HasResourceProperties(jsii.String("AWS::CloudFormation::StackSet"), map[string]any{
			"PermissionModel": "SERVICE_MANAGED",
			"AutoDeployment": map[string]any{
				"Enabled":                      true,
				"RetainStacksOnAccountRemoval": map[string]any{"Fn::If": []any{"RetainStacks", true, false}},
			},
			"CallAs":       ref("CallAs"),
			"Capabilities": []any{"CAPABILITY_NAMED_IAM"},
			"OperationPreferences": map[string]any{
				"FailureTolerancePercentage": ref("FailureTolerancePercentage"),
				"MaxConcurrentPercentage":    ref("MaxConcurrentPercentage"),
				"RegionConcurrencyType":      "PARALLEL",
				"ConcurrencyMode":            "SOFT_FAILURE_TOLERANCE",
			},
			"StackInstancesGroup": []any{map[string]any{
				"DeploymentTargets": map[string]any{"OrganizationalUnitIds": ref("TargetOrganizationalUnitIds")},
				"Regions":           ref("TargetRegions"),
			}},
		})
	})
	ss := resourcesOfType(hubJSON, "AWS::CloudFormation::StackSet")["MemberStackSet"]
	body, _ := props(ss)["TemplateBody"].(string)
	if len(body) == 0 || len(body) > maxTemplateBody {
		t.Fatalf("template body of %d bytes", len(body))
	}
	var embedded map[string]any
	if err := json.Unmarshal([]byte(body), &embedded); err != nil {
		t.Fatalf("template body: %v", err)
	}
	if !equalJSON(embedded, stacks.Member) {
		t.Error("the StackSet's template body is not the member template")
	}
	// Every member parameter without a default gets a value from the hub.
	given := map[string]bool{}
	for _, p := range props(ss)["Parameters"].([]any) {
		given[p.(map[string]any)["ParameterKey"].(string)] = true
	}
	for _, p := range memberParams {
		if !given[p.Name] {
			t.Errorf("the StackSet does not set the member parameter %s", p.Name)
		}
	}
}

func TestEventPatternIsTheCatalog(t *testing.T) {
	cat := catalog.Default()
	must(t, "rule", func() {
		memberT.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
			"EventBusName": "default",
			"State":        "ENABLED",
			"EventPattern": map[string]any{
				"detail-type": []any{"AWS API Call via CloudTrail"},
				"detail": map[string]any{
					"eventSource": toAny(cat.EventSources()),
					"eventName":   toAny(cat.EventNames()),
				},
			},
			"Targets": []any{assertions.Match_ObjectLike(&map[string]any{
				"Arn":              getAtt("Queue", "Arn"),
				"DeadLetterConfig": map[string]any{"Arn": getAtt("DeadLetterQueue", "Arn")},
			})},
		})
	})
	// Exactly these keys, nothing else that could narrow or widen the match.
	rule := props(resourcesOfType(stacks.Member, "AWS::Events::Rule")["Rule"])
	want := map[string]any{
		"detail-type": []string{DetailType},
		"detail":      map[string]any{"eventSource": cat.EventSources(), "eventName": cat.EventNames()},
	}
	if !equalJSON(rule["EventPattern"], want) {
		t.Errorf("pattern %v, want %v", mustJSON(rule["EventPattern"]), mustJSON(want))
	}
	// Every catalog API is matched.
	for _, api := range cat.APIs {
		if !slices.Contains(cat.EventSources(), api.EventSource) || !slices.Contains(cat.EventNames(), api.EventName) {
			t.Errorf("%s not matched", api.ID)
		}
	}
}

func TestQueueAndAgent(t *testing.T) {
	must(t, "queue", func() {
		memberT.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
			"SqsManagedSseEnabled": true,
			"RedrivePolicy": map[string]any{
				"deadLetterTargetArn": getAtt("DeadLetterQueue", "Arn"),
				"maxReceiveCount":     ref("QueueMaxReceiveCount"),
			},
		})
	})
	must(t, "every queue encrypted", func() {
		found := memberT.FindResources(jsii.String("AWS::SQS::Queue"), map[string]any{
			"Properties": map[string]any{"SqsManagedSseEnabled": true}})
		if n := len(*found); n != 2 {
			t.Errorf("%d encrypted queues, want 2", n)
		}
	})
	must(t, "queue policy: EventBridge from the rule only", func() {
		memberT.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
			"Queues": []any{ref("Queue")},
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
				"Resource":  getAtt("Queue", "Arn"),
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": getAtt("Rule", "Arn")}},
			})})},
		})
	})
	must(t, "agent function", func() {
		memberT.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Architectures": []any{"arm64"},
			"Runtime":       "provided.al2023",
			"Handler":       "bootstrap",
			"Code": map[string]any{
				"S3Bucket": map[string]any{"Fn::Join": []any{"-", []any{ref("AgentCodeBucketPrefix"), ref("AWS::Region")}}},
				"S3Key":    ref("AgentCodeKey"),
			},
			"Environment": map[string]any{"Variables": map[string]any{"HUB_ENDPOINT": ref("HubEndpoint")}},
			"ReservedConcurrentExecutions": map[string]any{"Fn::If": []any{"HasReservedConcurrency",
				ref("AgentReservedConcurrency"), ref("AWS::NoValue")}},
		})
	})
	must(t, "event source", func() {
		memberT.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
			"EventSourceArn":                 getAtt("Queue", "Arn"),
			"FunctionName":                   ref("AgentFunction"),
			"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
			"MaximumBatchingWindowInSeconds": ref("AgentBatchingWindowSeconds"),
			"BatchSize":                      ref("AgentBatchSize"),
		})
	})
}

func TestAgentRoleIsLeastPrivilege(t *testing.T) {
	role := props(resourcesOfType(stacks.Member, "AWS::IAM::Role")["AgentRole"])
	if role["ManagedPolicyArns"] != nil {
		t.Errorf("agent role has managed policies %v", role["ManagedPolicyArns"])
	}
	got := map[string][]string{}
	for _, pol := range role["Policies"].([]any) {
		for _, s := range statements(pol.(map[string]any)["PolicyDocument"]) {
			if s["Effect"] != "Allow" {
				continue
			}
			for _, r := range toStrings(s["Resource"]) {
				got[r] = append(got[r], toStrings(s["Action"])...)
			}
		}
	}
	want := map[string][]string{
		mustJSON(getAtt("Queue", "Arn")):         {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"},
		mustJSON(getAtt("AgentLogGroup", "Arn")): {"logs:CreateLogStream", "logs:PutLogEvents"},
	}
	if !equalJSON(got, want) {
		t.Errorf("agent role grants %v, want %v", got, want)
	}
}

func TestEnrichmentRoleTrustsOnlyTheHubWithTheOrganizationAsExternalID(t *testing.T) {
	r := resourcesOfType(stacks.Member, "AWS::IAM::Role")["EnrichmentRole"]
	if r["Condition"] != "IsEnrichmentRoleRegion" {
		t.Errorf("condition %v", r["Condition"])
	}
	trust := statements(props(r)["AssumeRolePolicyDocument"])
	want := []map[string]any{{
		"Effect":    "Allow",
		"Principal": map[string]any{"AWS": ref("HubRoleArn")},
		"Action":    "sts:AssumeRole",
		"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": ref("OrganizationId")}},
	}}
	if !equalJSON(trust, want) {
		t.Errorf("trust policy %s, want %s", mustJSON(trust), mustJSON(want))
	}
	must(t, "trust through the assertions", func() {
		memberT.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
			"RoleName": ref("EnrichmentRoleName"),
			"AssumeRolePolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Principal": map[string]any{"AWS": ref("HubRoleArn")},
				"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": ref("OrganizationId")}},
			}}},
		})
	})
	var actions []string
	for _, pol := range props(r)["Policies"].([]any) {
		for _, s := range statements(pol.(map[string]any)["PolicyDocument"]) {
			actions = append(actions, toStrings(s["Action"])...)
		}
	}
	slices.Sort(actions)
	wantActions := []string{"cloudtrail:LookupEvents", "ec2:DescribeInstances", "ec2:DescribeVolumes", "lambda:GetFunction", "tag:GetResources"}
	if !slices.Equal(actions, wantActions) {
		t.Errorf("enrichment actions %v, want %v", actions, wantActions)
	}
	// The hub may assume that role name only, in accounts of the organization.
	must(t, "hub role assumes the enrichment role only", func() {
		hubT.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
			"Roles": []any{ref("HubTaskRole")},
			"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Action":    "sts:AssumeRole",
				"Resource":  map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${EnrichmentRoleName}"},
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": ref("OrganizationId")}},
			})})},
		})
	})
}

func TestOptionalTrailRecordsLambdaDataEvents(t *testing.T) {
	params := stacks.Member["Parameters"].(map[string]any)
	if d := params["EnableLambdaTrail"].(map[string]any)["Default"]; d != "true" {
		t.Errorf("EnableLambdaTrail defaults to %v", d)
	}
	for _, id := range []string{"Trail", "TrailBucket", "TrailBucketPolicy"} {
		if c := resources(stacks.Member)[id]["Condition"]; c != "TrailEnabled" {
			t.Errorf("%s condition %v", id, c)
		}
	}
	sel := mustJSON(props(resources(stacks.Member)["Trail"])["AdvancedEventSelectors"])
	for _, want := range []string{`"AWS::Lambda::Function"`, `"NotStartsWith":[{"Fn::GetAtt":["AgentFunction","Arn"]}]`, `"Management"`} {
		if !strings.Contains(sel, want) {
			t.Errorf("selectors lack %s: %s", want, sel)
		}
	}
}

func TestHubServiceAndLoadBalancer(t *testing.T) {
	must(t, "service", func() {
		hubT.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
			"DesiredCount": 2,
			"LaunchType":   "FARGATE",
			"NetworkConfiguration": map[string]any{"AwsvpcConfiguration": map[string]any{
				"AssignPublicIp": "DISABLED",
				"Subnets":        []any{ref("VpcprivateSubnet1SubnetCEAD3716"), ref("VpcprivateSubnet2Subnet2DE7549C")},
			}},
		})
	})
	must(t, "TLS listener with the certificate parameter", func() {
		hubT.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
			"Port": 443, "Protocol": "TLS",
			"Certificates": []any{map[string]any{"CertificateArn": ref("HubCertificateArn")}},
		})
	})
	must(t, "network load balancer", func() {
		hubT.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
			"Type": "network", "Scheme": "internet-facing",
		})
	})
	// The webhook port is open to the domain's security group and nothing else: the internal load
	// balancer admits the domain, the hub tasks admit the load balancer.
	webhookLBSG := getAtt("WebhookLoadBalancerSecurityGroup", "GroupId")
	hubSGID := getAtt("HubSecurityGroup", "GroupId")
	want := map[string][2]any{ // ingress id -> group, source
		"WebhookIngress":                   {webhookLBSG, getAtt("DomainSecurityGroup", "GroupId")},
		"WebhookIngressFromExistingDomain": {webhookLBSG, ref("ExistingDomainSecurityGroupId")},
	}
	seen := 0
	for id, r := range resourcesOfType(hubJSON, "AWS::EC2::SecurityGroupIngress") {
		p := props(r)
		if p["FromPort"] != float64(hubHTTPPort) && p["ToPort"] != float64(hubHTTPPort) {
			continue
		}
		seen++
		if p["CidrIp"] != nil || p["CidrIpv6"] != nil {
			t.Errorf("%s opens the webhook port to addresses %v", id, p["CidrIp"])
		}
		if w, ok := want[id]; ok {
			if !equalJSON(p["GroupId"], w[0]) || !equalJSON(p["SourceSecurityGroupId"], w[1]) {
				t.Errorf("%s: %v from %v", id, p["GroupId"], p["SourceSecurityGroupId"])
			}
			continue
		}
		if !equalJSON(p["GroupId"], hubSGID) || !equalJSON(p["SourceSecurityGroupId"], webhookLBSG) {
			t.Errorf("%s opens the webhook port: %v from %v", id, p["GroupId"], p["SourceSecurityGroupId"])
		}
	}
	if seen != 3 {
		t.Errorf("%d ingress rules on the webhook port, want 3", seen)
	}
	must(t, "internal webhook load balancer", func() {
		hubT.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
			"Type": "network", "Scheme": "internal", "SecurityGroups": []any{webhookLBSG},
		})
	})
	for id, r := range resourcesOfType(hubJSON, "AWS::EC2::SecurityGroup") {
		if strings.Contains(mustJSON(props(r)["SecurityGroupIngress"]), "0.0.0.0/0") {
			t.Errorf("security group %s is open to the world", id)
		}
	}
}

func TestAlertTopicEncrypted(t *testing.T) {
	must(t, "topic", func() {
		hubT.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]any{"KmsMasterKeyId": getAtt("AlertKey", "Arn")})
	})
	must(t, "key rotation", func() {
		hubT.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]any{"EnableKeyRotation": true})
	})
}

// A StackSet template may carry no assets and must run in any account and region.
func TestMemberIsEnvironmentAgnosticWithoutAssets(t *testing.T) {
	text := mustJSON(stacks.Member)
	for _, bad := range []string{"cdk-hnb659fds", "BootstrapVersion", "AWS::CDK::Metadata", "aws:asset:", "AssetParameters"} {
		if strings.Contains(text, bad) {
			t.Errorf("member template contains %q", bad)
		}
	}
	if _, ok := stacks.Member["Rules"]; ok {
		t.Error("member template has Rules (bootstrap check)")
	}
	if accountLike.MatchString(text) {
		t.Errorf("member template names an account: %s", accountLike.FindString(text))
	}
	for _, tmpl := range []map[string]any{hubJSON, stacks.Artifacts} {
		if strings.Contains(mustJSON(tmpl), "aws:asset:") {
			t.Error("a template has assets")
		}
	}
}
