package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/spikewatch/spikewatch/agent"
	"github.com/spikewatch/spikewatch/hub"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/search"
)

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spikewatch-hub-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// unitSource emits fixed units (for tests that need no files).
type unitSource map[string][]counting.Count

func (u unitSource) Run(ctx context.Context, skip func(string) bool, emit func(context.Context, string, []counting.Count) error) error {
	for unit, cs := range u {
		if !skip(unit) {
			if err := emit(ctx, unit, cs); err != nil {
				return err
			}
		}
	}
	return nil
}

// The agent reaches a TLS hub when it trusts the hub's certificate, and only then.
func TestTLSStream(t *testing.T) {
	e := ostest.New(t)
	cert, pool := selfSigned(t)
	sc, _ := search.New(search.Config{URL: e.URL})
	var auth hub.DevTokens
	_ = auth.Add(token + "=*")
	h, err := hub.New(hub.Config{GRPCAddr: "127.0.0.1:0", IndexPrefix: e.Prefix, TLS: credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})},
		hub.Settings{Logger: quietLogger(), Search: sc, Auth: &auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ostest.Context(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Shutdown(context.Background()) }()
	src := unitSource{"tls-unit": {{Key: counting.Key{Minute: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC), AccountID: "123456789012", Region: "us-east-1", API: "ec2:CreateVolume"}, Calls: 2, Units: 200}}}
	run := func(tc *tls.Config, d time.Duration) (*agent.Stats, error) {
		st := &agent.Stats{}
		a, err := agent.New(agent.Config{Hub: h.GRPCAddr(), Token: token, AgentID: "tls-agent", Once: true, TLS: tc},
			agent.Settings{Logger: quietLogger(), Catalog: catalog.Default(), Stats: st})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return st, a.Run(ctx, src)
	}
	if st, err := run(&tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}, 2*time.Second); err == nil || st.Accepted.Load() != 0 {
		t.Fatalf("an agent that does not trust the hub's certificate got through: %v", err)
	}
	if _, err := run(nil, 2*time.Second); err == nil {
		t.Fatal("a plaintext agent got through to a TLS hub")
	}
	st, err := run(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, 30*time.Second)
	if err != nil || st.Accepted.Load() != 1 {
		t.Fatalf("TLS agent: %v, accepted %d (%s)", err, st.Accepted.Load(), st.LastError())
	}
	assertSame(t, map[key]sums{{time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC).Unix(), "123456789012", "us-east-1", "ec2:CreateVolume", ""}: {2, 200, 0}}, indexed(t, e))
}
