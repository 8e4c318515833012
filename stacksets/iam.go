package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// Policy documents are written as plain maps, the way they read in IAM, so a reviewer sees in the
// code exactly the statement that lands in the template.

type stmt = map[string]any

func policyDoc(statements ...stmt) map[string]any {
	list := make([]any, len(statements))
	for i, s := range statements {
		list[i] = s
	}
	return map[string]any{"Version": "2012-10-17", "Statement": list}
}

func allow(actions []string, resources ...any) stmt {
	return stmt{"Effect": "Allow", "Action": actions, "Resource": resources}
}

// denyInsecureTransport refuses every request to the resources that does not use TLS.
func denyInsecureTransport(actions string, resources ...any) stmt {
	return stmt{
		"Sid":       "DenyInsecureTransport",
		"Effect":    "Deny",
		"Principal": map[string]any{"AWS": "*"},
		"Action":    actions,
		"Resource":  resources,
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
}

func serviceTrust(service string, condition map[string]any) map[string]any {
	s := stmt{
		"Effect":    "Allow",
		"Principal": map[string]any{"Service": service},
		"Action":    "sts:AssumeRole",
	}
	if condition != nil {
		s["Condition"] = condition
	}
	return policyDoc(s)
}

func sub(s string) *string { return awscdk.Fn_Sub(jsii.String(s), nil) }

func join(sep string, parts ...*string) *string {
	return awscdk.Fn_Join(jsii.String(sep), &parts)
}

func condition(stack awscdk.Stack, id string, expr awscdk.ICfnConditionExpression) awscdk.CfnCondition {
	return awscdk.NewCfnCondition(stack, jsii.String(id), &awscdk.CfnConditionProps{Expression: expr})
}

func ifCond(c awscdk.CfnCondition, yes, no any) awscdk.ICfnRuleConditionExpression {
	return awscdk.Fn_ConditionIf(c.LogicalId(), yes, no)
}

func isTrue(p awscdk.CfnParameter) awscdk.ICfnConditionExpression {
	return awscdk.Fn_ConditionEquals(p.ValueAsString(), jsii.String("true"))
}

func output(stack awscdk.Stack, id, description string, value *string, cond awscdk.CfnCondition) {
	o := awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{
		Description: jsii.String(description),
		Value:       value,
	})
	if cond != nil {
		o.SetCondition(cond)
	}
}
