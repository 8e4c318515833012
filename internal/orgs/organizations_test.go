package orgs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/spikewatch/spikewatch/internal/awstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

// calls counts Organizations operations on the wire (X-Amz-Target "AWSOrganizationsV20161128.Op").
type calls struct {
	next aws.HTTPClient
	mu   sync.Mutex
	ops  map[string]int
}

func (c *calls) Do(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return c.next.Do(req)
}

// take returns the counts so far and starts again.
func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = map[string]int{}
	return ops
}

type orgFixture struct {
	cfg    aws.Config
	calls  *calls
	prod   string // account in Root/Workloads/Prod, tagged
	prod2  string // second account in the same OU
	atRoot string // account directly under the root
}

// newOrg resets moto and builds: Root/Workloads/Prod with two accounts, one account at the root.
func newOrg(t *testing.T) *orgFixture {
	t.Helper()
	cfg := awstest.Config(t)
	awstest.Reset(t)
	ctx := context.Background()
	c := organizations.NewFromConfig(cfg)
	if _, err := c.CreateOrganization(ctx, &organizations.CreateOrganizationInput{FeatureSet: types.OrganizationFeatureSetAll}); err != nil {
		t.Fatal(err)
	}
	roots, err := c.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil {
		t.Fatal(err)
	}
	root := aws.ToString(roots.Roots[0].Id)
	newOU := func(parent, name string) string {
		out, err := c.CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{ParentId: aws.String(parent), Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.OrganizationalUnit.Id)
	}
	prodOU := newOU(newOU(root, "Workloads"), "Prod")
	newAccount := func(name string, tags map[string]string, ou string) string {
		in := &organizations.CreateAccountInput{AccountName: aws.String(name), Email: aws.String(name + "@example.com")}
		for k, v := range tags {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := c.CreateAccount(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{CreateAccountRequestId: out.CreateAccountStatus.Id})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(st.CreateAccountStatus.AccountId)
		if ou != "" {
			if _, err := c.MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(id), SourceParentId: aws.String(root), DestinationParentId: aws.String(ou)}); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	f := &orgFixture{
		prod:   newAccount("payments-prod", map[string]string{"team": "payments", "env": "prod"}, prodOU),
		prod2:  newAccount("search-prod", nil, prodOU),
		atRoot: newAccount("sandbox", map[string]string{"team": "platform"}, ""),
	}
	f.calls = &calls{next: http.DefaultClient, ops: map[string]int{}}
	f.cfg = cfg
	f.cfg.HTTPClient = f.calls
	return f
}

func TestOrganizationsLookup(t *testing.T) {
	f := newOrg(t)
	dir := NewOrganizations(f.cfg, time.Hour)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		id    string
		found bool
		want  Account
	}{
		{"in nested OU, tagged", f.prod, true, Account{ID: f.prod, Name: "payments-prod", Email: "payments-prod@example.com",
			Status: "ACTIVE", OUPath: "Root/Workloads/Prod", Tags: map[string]string{"team": "payments", "env": "prod"}}},
		{"in nested OU, untagged", f.prod2, true, Account{ID: f.prod2, Name: "search-prod", Email: "search-prod@example.com",
			Status: "ACTIVE", OUPath: "Root/Workloads/Prod", Tags: map[string]string{}}},
		{"at root", f.atRoot, true, Account{ID: f.atRoot, Name: "sandbox", Email: "sandbox@example.com",
			Status: "ACTIVE", OUPath: "Root", Tags: map[string]string{"team": "platform"}}},
		{"unknown", "999999999999", false, Account{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := dir.Account(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.found || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Account(%s) = %+v, %v; want %+v, %v", tc.id, got, found, tc.want, tc.found)
			}
			if n := f.calls.take(); len(n) == 0 {
				t.Error("first lookup made no call")
			} else {
				t.Logf("first lookup: %v", n)
			}
			again, found2, err := dir.Account(ctx, tc.id)
			if err != nil || found2 != found || !reflect.DeepEqual(again, got) {
				t.Errorf("cached lookup differs: %+v %v %v", again, found2, err)
			}
			if n := f.calls.take(); len(n) != 0 {
				t.Errorf("cached lookup made calls: %v", n)
			}
		})
	}
}

func TestOrganizationsCache(t *testing.T) {
	f := newOrg(t)
	dir := NewOrganizations(f.cfg, time.Minute)
	now := time.Now()
	dir.now = func() time.Time { return now }
	ctx := context.Background()

	// concurrent first lookups share one set of calls
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if a, ok, err := dir.Account(ctx, f.prod); err != nil || !ok || a.OUPath != "Root/Workloads/Prod" {
				t.Errorf("concurrent lookup: %+v %v %v", a, ok, err)
			}
		})
	}
	wg.Wait()
	first := f.calls.take()
	if first["DescribeAccount"] != 1 {
		t.Errorf("20 concurrent lookups: %v, want one DescribeAccount", first)
	}

	// a second account in the same OU reuses the OU names
	if _, _, err := dir.Account(ctx, f.prod2); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.take(); n["DescribeOrganizationalUnit"] != 0 || n["DescribeAccount"] != 1 {
		t.Errorf("same-OU lookup: %v, want DescribeAccount only and no DescribeOrganizationalUnit", n)
	}

	// a returned account is a copy
	a, _, _ := dir.Account(ctx, f.prod)
	a.Tags["team"] = "changed"
	if b, _, _ := dir.Account(ctx, f.prod); b.Tags["team"] != "payments" {
		t.Error("caller changed the cache")
	}

	// negative cache, then expiry of both
	if _, found, err := dir.Account(ctx, "999999999999"); found || err != nil {
		t.Fatalf("unknown: %v %v", found, err)
	}
	f.calls.take()
	dir.Account(ctx, "999999999999")
	dir.Account(ctx, f.prod)
	if n := f.calls.take(); len(n) != 0 {
		t.Errorf("within TTL: %v", n)
	}
	now = now.Add(time.Minute + time.Second)
	dir.Account(ctx, "999999999999")
	dir.Account(ctx, f.prod)
	if n := f.calls.take(); n["DescribeAccount"] != 2 || n["DescribeOrganizationalUnit"] != 2 {
		t.Errorf("after TTL: %v, want 2 DescribeAccount and both OUs described again", n)
	}
}

// AWS errors are returned, wrapped, and not cached.
func TestOrganizationsErrors(t *testing.T) {
	n := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"AccessDeniedException","Message":"not the management account"}`))
	}))
	defer srv.Close()
	cfg := awstest.ConfigFor(srv.URL)
	dir := NewOrganizations(cfg, time.Hour)
	for range 2 {
		_, found, err := dir.Account(context.Background(), "111111111111")
		var denied *types.AccessDeniedException
		if found || !errors.As(err, &denied) || !strings.Contains(err.Error(), "111111111111") {
			t.Errorf("got found=%v err=%v; want a wrapped AccessDeniedException naming the account", found, err)
		}
	}
	if n != 2 {
		t.Errorf("%d calls, want 2 (errors are not cached)", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := dir.Account(ctx, "111111111111"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestNone(t *testing.T) {
	var d Directory = None{}
	if _, found, err := d.Account(context.Background(), "111111111111"); found || err != nil {
		t.Errorf("None: %v %v", found, err)
	}
}
