package main

import (
	"os"
	"strings"
	"testing"
)

// The deploy guide and the README's "Deploy to an organization" section list every parameter.
func TestDocsListEveryParameter(t *testing.T) {
	for _, doc := range []struct{ path, section string }{
		{"../docs/deploy.md", ""},
		{"../README.md", "## Deploy to an organization"},
	} {
		b, err := os.ReadFile(doc.path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if doc.section != "" {
			i := strings.Index(text, doc.section)
			if i < 0 {
				t.Errorf("%s has no section %q", doc.path, doc.section)
				continue
			}
			text = text[i:]
			if j := strings.Index(text[len(doc.section):], "\n## "); j >= 0 {
				text = text[:len(doc.section)+j]
			}
		}
		for _, name := range []string{"hub", "member"} {
			for p := range templates[name]["Parameters"].(map[string]any) {
				if p == "BootstrapVersion" {
					continue
				}
				if !strings.Contains(text, "`"+p+"`") {
					t.Errorf("%s does not document the %s parameter %s", doc.path, name, p)
				}
			}
		}
	}
}
