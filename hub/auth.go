package hub

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Identity is who an authenticated stream belongs to and which accounts it may write.
type Identity struct {
	Name     string
	Accounts map[string]bool
	Any      bool
}

// Allows says whether the identity may write counts for account.
func (id Identity) Allows(account string) bool { return id.Any || id.Accounts[account] }

// AccountList returns the accounts for the welcome message.
func (id Identity) AccountList() []string {
	if id.Any {
		return []string{"*"}
	}
	out := make([]string, 0, len(id.Accounts))
	for a := range id.Accounts {
		out = append(out, a)
	}
	return out
}

// Authenticator turns a stream's credentials into an identity.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrUnauthenticated: missing or wrong credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// DevTokens authenticates static tokens (development, tests, and until IAM authentication lands).
type DevTokens struct {
	tokens []devToken
}

type devToken struct {
	secret []byte
	id     Identity
}

// ParseDevToken parses TOKEN=ACCOUNTS, ACCOUNTS a comma list of 12-digit accounts or "*".
func (d *DevTokens) Add(spec string) error {
	tok, accts, ok := strings.Cut(spec, "=")
	if !ok || len(tok) < 8 || accts == "" {
		return fmt.Errorf("dev token %q: want TOKEN=ACCOUNTS with a token of 8+ characters", redact(spec))
	}
	id := Identity{Name: "dev:" + redact(tok), Accounts: map[string]bool{}}
	for _, a := range strings.Split(accts, ",") {
		a = strings.TrimSpace(a)
		switch {
		case a == "*":
			id.Any = true
		case len(a) == 12 && strings.Trim(a, "0123456789") == "":
			id.Accounts[a] = true
		default:
			return fmt.Errorf("dev token %s: account %q is not 12 digits or *", id.Name, a)
		}
	}
	d.tokens = append(d.tokens, devToken{secret: []byte(tok), id: id})
	return nil
}

// Authenticate implements Authenticator.
func (d *DevTokens) Authenticate(_ context.Context, token string) (Identity, error) {
	var found *Identity
	for i := range d.tokens {
		if subtle.ConstantTimeCompare(d.tokens[i].secret, []byte(token)) == 1 {
			found = &d.tokens[i].id
		}
	}
	if found == nil {
		return Identity{}, ErrUnauthenticated
	}
	return *found, nil
}

func redact(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:4] + "****"
}

// tokenFromContext reads "authorization: Bearer TOKEN" from the stream's metadata.
func tokenFromContext(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}
