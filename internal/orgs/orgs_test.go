package orgs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadStatic(t *testing.T) {
	prod := Account{ID: "111122223333", Name: "payments-prod", Email: "p@example.com", Status: "ACTIVE",
		OUPath: "Root/Workloads/Prod", Tags: map[string]string{"team": "payments", "cost-center": "4711"}}
	for _, tc := range []struct {
		name, file, content string
		want                Static
		wantErr             string
	}{
		{name: "yaml", file: "accounts.yaml", content: `
accounts:
  - id: "111122223333"
    name: payments-prod
    email: p@example.com
    status: ACTIVE
    ou_path: Root/Workloads/Prod
    tags: {team: payments, cost-center: "4711"}
  - id: 012345678901   # unquoted, leading zero kept
    name: sandbox
`, want: Static{"111122223333": prod, "012345678901": {ID: "012345678901", Name: "sandbox"}}},
		{name: "json", file: "accounts.json", content: `{"accounts":[{"id":"111122223333","name":"payments-prod",
"email":"p@example.com","status":"ACTIVE","ou_path":"Root/Workloads/Prod","tags":{"team":"payments","cost-center":"4711"}}]}`,
			want: Static{"111122223333": prod}},
		{name: "no accounts", file: "a.yaml", content: "accounts: []\n", want: Static{}},
		{name: "empty file", file: "a.yaml", content: "", want: Static{}},
		{name: "short id", file: "a.yaml", content: "accounts: [{id: '1234', name: x}]", wantErr: "not 12 digits"},
		{name: "no id", file: "a.yaml", content: "accounts: [{name: x}]", wantErr: "not 12 digits"},
		{name: "duplicate", file: "a.yaml", content: "accounts: [{id: '111122223333'}, {id: '111122223333'}]", wantErr: "twice"},
		{name: "unknown field", file: "a.yaml", content: "accounts: [{id: '111122223333', nmae: x}]", wantErr: "nmae"},
		{name: "not yaml", file: "a.yaml", content: "accounts: [", wantErr: "a.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadStatic(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := LoadStatic(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestStatic(t *testing.T) {
	s := Static{"111122223333": {Name: "prod", Tags: map[string]string{"team": "a"}}}
	var d Directory = s
	ctx := context.Background()
	a, found, err := d.Account(ctx, "111122223333")
	if err != nil || !found || a.ID != "111122223333" || a.Name != "prod" {
		t.Fatalf("got %+v %v %v", a, found, err)
	}
	a.Tags["team"] = "changed"
	if s["111122223333"].Tags["team"] != "a" {
		t.Error("caller changed the Static map")
	}
	if _, found, err := d.Account(ctx, "999999999999"); found || err != nil {
		t.Errorf("unknown: %v %v", found, err)
	}
}
