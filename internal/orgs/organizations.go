package orgs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// DefaultTTL is the cache lifetime used when NewOrganizations is given none.
const DefaultTTL = 15 * time.Minute

// maxDepth bounds the walk up the OU tree (AWS allows five levels of OUs under the root).
const maxDepth = 10

// Organizations looks accounts up in AWS Organizations: DescribeAccount, ListParents up to the
// root (with DescribeOrganizationalUnit for each OU's name) and ListTagsForResource. The
// credentials must be those of the management account or of a delegated administrator, with
// organizations:DescribeAccount, ListParents, DescribeOrganizationalUnit and ListTagsForResource.
//
// Results are cached per account for the TTL, unknown accounts too (negative cache); OU names are
// cached as well, since accounts share them. Concurrent lookups of one account make one set of
// calls. Errors are not cached. Safe for concurrent use.
type Organizations struct {
	client *organizations.Client
	ttl    time.Duration
	now    func() time.Time

	mu       sync.Mutex
	accounts map[string]*lookup
	ous      map[string]ouInfo
}

type lookup struct {
	done    chan struct{} // closed when the fields below are set
	acct    Account
	found   bool
	err     error
	expires time.Time
}

type ouInfo struct {
	name, parent string // parent "" when it is the root
	expires      time.Time
}

// NewOrganizations returns a Directory backed by AWS Organizations. ttl <= 0 means DefaultTTL.
// cfg gives credentials, region and endpoint (BaseEndpoint); optFns adjust the client further.
func NewOrganizations(cfg aws.Config, ttl time.Duration, optFns ...func(*organizations.Options)) *Organizations {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Organizations{
		client:   organizations.NewFromConfig(cfg, optFns...),
		ttl:      ttl,
		now:      time.Now,
		accounts: map[string]*lookup{},
		ous:      map[string]ouInfo{},
	}
}

// Account implements Directory.
func (o *Organizations) Account(ctx context.Context, id string) (Account, bool, error) {
	for {
		o.mu.Lock()
		l, ok := o.accounts[id]
		if !ok {
			l = &lookup{done: make(chan struct{})}
			o.accounts[id] = l
			o.mu.Unlock()
			o.fill(ctx, id, l)
			return clone(l.acct), l.found, l.err
		}
		o.mu.Unlock()

		select {
		case <-l.done:
		case <-ctx.Done():
			return Account{}, false, fmt.Errorf("orgs: account %s: %w", id, ctx.Err())
		}
		if l.err == nil && o.now().Before(l.expires) {
			return clone(l.acct), l.found, nil
		}
		// expired, or the lookup we waited for failed: drop it (unless replaced) and look again
		o.mu.Lock()
		if o.accounts[id] == l {
			delete(o.accounts, id)
		}
		o.mu.Unlock()
		// another caller's lookup failed: share its error, unless it was only that caller's
		// context ending while ours goes on
		if l.err != nil && (ctx.Err() != nil || !isContextErr(l.err)) {
			return Account{}, false, l.err
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill looks id up and publishes the result in l; a failed lookup is removed from the cache.
func (o *Organizations) fill(ctx context.Context, id string, l *lookup) {
	l.acct, l.found, l.err = o.fetch(ctx, id)
	l.expires = o.now().Add(o.ttl)
	if l.err != nil {
		o.mu.Lock()
		if o.accounts[id] == l {
			delete(o.accounts, id)
		}
		o.mu.Unlock()
	}
	close(l.done)
}

func (o *Organizations) fetch(ctx context.Context, id string) (Account, bool, error) {
	out, err := o.client.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(id)})
	if err != nil {
		var nf *types.AccountNotFoundException
		if errors.As(err, &nf) {
			return Account{}, false, nil
		}
		return Account{}, false, fmt.Errorf("orgs: describe account %s: %w", id, err)
	}
	a := out.Account
	acct := Account{
		ID:     aws.ToString(a.Id),
		Name:   aws.ToString(a.Name),
		Email:  aws.ToString(a.Email),
		Status: string(a.State),
	}
	if acct.Status == "" {
		acct.Status = string(a.Status) // retired by AWS for State (2026), still all some servers send
	}
	if acct.OUPath, err = o.ouPath(ctx, id); err != nil {
		return Account{}, false, err
	}
	if acct.Tags, err = o.tags(ctx, id); err != nil {
		return Account{}, false, err
	}
	return acct, true, nil
}

// ouPath walks from the account up to the root: "Root/Workloads/Prod".
func (o *Organizations) ouPath(ctx context.Context, accountID string) (string, error) {
	parent, err := o.parent(ctx, accountID)
	if err != nil {
		return "", err
	}
	path := ""
	for depth := 0; parent != ""; depth++ {
		if depth == maxDepth {
			return "", fmt.Errorf("orgs: OU path of %s: deeper than %d levels", accountID, maxDepth)
		}
		ou, err := o.ou(ctx, parent)
		if err != nil {
			return "", err
		}
		path = "/" + ou.name + path
		parent = ou.parent
	}
	return "Root" + path, nil
}

// parent returns the OU that holds child, or "" when that is the root.
func (o *Organizations) parent(ctx context.Context, child string) (string, error) {
	out, err := o.client.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(child)})
	if err != nil {
		return "", fmt.Errorf("orgs: list parents of %s: %w", child, err)
	}
	if len(out.Parents) == 0 {
		return "", fmt.Errorf("orgs: %s has no parent", child)
	}
	if p := out.Parents[0]; p.Type == types.ParentTypeOrganizationalUnit {
		return aws.ToString(p.Id), nil
	}
	return "", nil
}

func (o *Organizations) ou(ctx context.Context, id string) (ouInfo, error) {
	o.mu.Lock()
	info, ok := o.ous[id]
	o.mu.Unlock()
	if ok && o.now().Before(info.expires) {
		return info, nil
	}
	out, err := o.client.DescribeOrganizationalUnit(ctx, &organizations.DescribeOrganizationalUnitInput{
		OrganizationalUnitId: aws.String(id),
	})
	if err != nil {
		return ouInfo{}, fmt.Errorf("orgs: describe OU %s: %w", id, err)
	}
	parent, err := o.parent(ctx, id)
	if err != nil {
		return ouInfo{}, err
	}
	info = ouInfo{name: aws.ToString(out.OrganizationalUnit.Name), parent: parent, expires: o.now().Add(o.ttl)}
	o.mu.Lock()
	o.ous[id] = info
	o.mu.Unlock()
	return info, nil
}

func (o *Organizations) tags(ctx context.Context, id string) (map[string]string, error) {
	tags := map[string]string{}
	p := organizations.NewListTagsForResourcePaginator(o.client, &organizations.ListTagsForResourceInput{
		ResourceId: aws.String(id),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("orgs: list tags of %s: %w", id, err)
		}
		for _, t := range page.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}
