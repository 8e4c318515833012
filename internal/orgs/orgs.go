// Package orgs enriches alerts with what AWS Organizations knows about an account: name, email,
// status, OU path and tags. Enrichment is optional: callers go on without it when a lookup fails
// or finds nothing.
package orgs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Account is what is known about one AWS account.
type Account struct {
	ID     string            `yaml:"id" json:"id"`
	Name   string            `yaml:"name" json:"name"`
	Email  string            `yaml:"email,omitempty" json:"email,omitempty"`
	Status string            `yaml:"status,omitempty" json:"status,omitempty"`   // ACTIVE, SUSPENDED, ...
	OUPath string            `yaml:"ou_path,omitempty" json:"ou_path,omitempty"` // e.g. "Root/Workloads/Prod"
	Tags   map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// Directory looks accounts up. found is false, with a nil error, for an account it does not know.
type Directory interface {
	Account(ctx context.Context, id string) (acct Account, found bool, err error)
}

// None knows no account: enrichment is absent.
type None struct{}

// Account implements Directory.
func (None) Account(context.Context, string) (Account, bool, error) { return Account{}, false, nil }

// Static is a fixed set of accounts keyed by ID: for tests, and for installations that keep an
// accounts file instead of granting Organizations access (see LoadStatic).
type Static map[string]Account

// Account implements Directory.
func (s Static) Account(_ context.Context, id string) (Account, bool, error) {
	a, ok := s[id]
	if !ok {
		return Account{}, false, nil
	}
	if a.ID == "" {
		a.ID = id
	}
	return clone(a), true, nil
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// LoadStatic reads an accounts file, YAML or JSON:
//
//	accounts:
//	  - id: "111122223333"
//	    name: payments-prod
//	    email: aws-payments-prod@example.com
//	    status: ACTIVE
//	    ou_path: Root/Workloads/Prod
//	    tags: {team: payments, cost-center: "4711"}
//
// Every account needs a 12-digit id (quote it in YAML), given once; unknown fields are errors.
func LoadStatic(path string) (Static, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("orgs: %w", err)
	}
	defer f.Close()
	var file struct {
		Accounts []Account `yaml:"accounts"`
	}
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) { // EOF: empty file
		return nil, fmt.Errorf("orgs: accounts file %s: %w", filepath.Base(path), err)
	}
	s := make(Static, len(file.Accounts))
	for i, a := range file.Accounts {
		a.ID = strings.TrimSpace(a.ID)
		if !accountID.MatchString(a.ID) {
			return nil, fmt.Errorf("orgs: accounts file %s: account %d: id %q is not 12 digits", filepath.Base(path), i+1, a.ID)
		}
		if _, dup := s[a.ID]; dup {
			return nil, fmt.Errorf("orgs: accounts file %s: account %s listed twice", filepath.Base(path), a.ID)
		}
		s[a.ID] = a
	}
	return s, nil
}

func clone(a Account) Account {
	if a.Tags != nil {
		tags := make(map[string]string, len(a.Tags))
		for k, v := range a.Tags {
			tags[k] = v
		}
		a.Tags = tags
	}
	return a
}
