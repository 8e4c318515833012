package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	serviceWide = regexp.MustCompile(`^[a-z0-9-]+:\*$`)
	accountLike = regexp.MustCompile(`\b[0-9]{12}\b`)
)

// policyDocs finds every policy document (a map with a Statement) anywhere in the resources of a
// template: IAM policies, roles (trust and inline), managed policies, bucket, queue, topic and key
// policies, domain access policies, and whatever comes next.
func policyDocs(tmpl map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["Statement"]; ok {
				out[path] = x
				return
			}
			for k, e := range x {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		case string:
			// A policy may be a JSON string (a StackSet template body is one: its policies
			// are checked in the member template itself).
		}
	}
	for id, r := range resources(tmpl) {
		walk(id, r["Properties"])
	}
	return out
}

func statements(doc any) []map[string]any {
	d, _ := doc.(map[string]any)
	switch s := d["Statement"].(type) {
	case map[string]any:
		return []map[string]any{s}
	case []any:
		var out []map[string]any
		for _, e := range s {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// wildcardGrants lists the statements of a document that allow every action, or every action of a
// service, on every resource, or allow through NotAction or NotResource.
func wildcardGrants(doc any) []string {
	var bad []string
	for _, s := range statements(doc) {
		if s["Effect"] != "Allow" {
			continue
		}
		if s["NotAction"] != nil || s["NotResource"] != nil {
			bad = append(bad, "Allow with NotAction/NotResource: "+mustJSON(s))
			continue
		}
		// Trust policies have no Resource: they grant no actions on resources.
		if s["Resource"] == nil {
			continue
		}
		anyResource := false
		for _, r := range toStrings(s["Resource"]) {
			if r == "*" {
				anyResource = true
			}
		}
		for _, a := range toStrings(s["Action"]) {
			if a == "*" || (anyResource && serviceWide.MatchString(a)) {
				bad = append(bad, fmt.Sprintf("%s on %v", a, s["Resource"]))
			}
		}
	}
	return bad
}

func TestNoWildcardActionOnWildcardResource(t *testing.T) {
	for name, tmpl := range templates {
		docs := policyDocs(tmpl)
		if len(docs) == 0 {
			t.Fatalf("%s: no policy documents found: the walk is broken", name)
		}
		paths := make([]string, 0, len(docs))
		for p := range docs {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			for _, b := range wildcardGrants(docs[p]) {
				t.Errorf("%s %s: %s", name, p, b)
			}
		}
		t.Logf("%s: %d policy documents checked", name, len(docs))
		// No AWS-managed policy that grants broad access either.
		for id, r := range resources(tmpl) {
			for _, arn := range toStrings(props(r)["ManagedPolicyArns"]) {
				if !strings.Contains(arn, "AmazonOpenSearchServiceCognitoAccess") {
					t.Errorf("%s %s: managed policy %s", name, id, arn)
				}
			}
		}
	}
	// Every kind of policy the brief names is covered by the walk.
	kinds := map[string]bool{}
	for _, tmpl := range templates {
		for p := range policyDocs(tmpl) {
			id := strings.SplitN(p, "/", 2)[0]
			kinds[resources(tmpl)[id]["Type"].(string)] = true
		}
	}
	for _, k := range []string{"AWS::IAM::Policy", "AWS::IAM::Role", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy",
		"AWS::SNS::TopicPolicy", "AWS::KMS::Key", "AWS::OpenSearchService::Domain"} {
		if !kinds[k] {
			t.Errorf("no policy of %s walked", k)
		}
	}
}

// The check itself catches what it should.
func TestWildcardCheck(t *testing.T) {
	doc := func(s string) any {
		var d any
		if err := json.Unmarshal([]byte(`{"Statement":[`+s+`]}`), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		stmt string
		bad  bool
	}{
		{`{"Effect":"Allow","Action":"*","Resource":"*"}`, true},
		{`{"Effect":"Allow","Action":["s3:GetObject","s3:*"],"Resource":["arn:aws:s3:::b","*"]}`, true},
		{`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/*"}`, true},
		{`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`, true},
		{`{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}`, false},
		{`{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}`, false},
		{`{"Effect":"Allow","Action":"kms:Describe*","Resource":"*"}`, false},
		{`{"Effect":"Deny","Action":"s3:*","Resource":"*"}`, false},
		{`{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}`, false},
	} {
		if got := len(wildcardGrants(doc(c.stmt))) > 0; got != c.bad {
			t.Errorf("%s: flagged %v, want %v", c.stmt, got, c.bad)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}
