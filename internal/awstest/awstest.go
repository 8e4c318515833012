// Package awstest runs AWS APIs locally for tests: moto's server mode (PyPI moto[server], pinned in
// scripts/requirements-test.txt), started as a subprocess on a free 127.0.0.1 port.
//
// Typical use is one server per test binary:
//
//	func TestMain(m *testing.M) { code := m.Run(); awstest.Stop(); os.Exit(code) }
//
//	func TestX(t *testing.T) {
//		cfg := awstest.Config(t) // aws.Config pointing at moto
//		client := sns.NewFromConfig(cfg)
//		...
//	}
//
// Without moto installed, Config and Moto skip the test, or fail it when CI=true.
//
// Environment:
//   - SPIKEWATCH_MOTO_ENDPOINT: use a moto server that is already running at this URL (nothing is
//     started or stopped).
//   - SPIKEWATCH_MOTO_SERVER: the command that starts moto (default: moto_server, else
//     python3 -m moto.server); it gets "-H 127.0.0.1 -p PORT" appended.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region of every Config made here.
const Region = "us-east-1"

// AccountID is the account moto uses for the test credentials.
const AccountID = "123456789012"

// InstallHint tells how to get moto.
const InstallHint = "pip install -r scripts/requirements-test.txt"

// ErrNotInstalled is returned by Start when no moto server command can be found.
var ErrNotInstalled = errors.New("awstest: moto server not installed (" + InstallHint + ")")

// Server is a running moto server.
type Server struct {
	URL     string        // base endpoint, e.g. http://127.0.0.1:41234
	Startup time.Duration // how long it took until it answered

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	stderr *tail         // the end of its log, for error messages
}

// command returns the argv that starts moto, or ErrNotInstalled.
func command() ([]string, error) {
	if c := strings.Fields(os.Getenv("SPIKEWATCH_MOTO_SERVER")); len(c) > 0 {
		return c, nil
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return []string{p}, nil
	}
	if p, err := exec.LookPath("python3"); err == nil {
		if exec.Command(p, "-c", "import moto.server").Run() == nil {
			return []string{p, "-m", "moto.server"}, nil
		}
	}
	return nil, ErrNotInstalled
}

// Start starts a moto server on a free 127.0.0.1 port and waits until it answers (or ctx ends).
// It returns ErrNotInstalled (possibly wrapped) when moto is missing. Call Stop when done.
func Start(ctx context.Context) (*Server, error) {
	argv, err := command()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // the free port can be taken between probing and binding: try again
		s, err := start(ctx, argv)
		if err == nil {
			return s, nil
		}
		if errors.Is(err, ErrNotInstalled) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(ctx context.Context, argv []string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		done:   make(chan struct{}),
		stderr: &tail{max: 8 << 10},
	}
	args := append(argv[1:len(argv):len(argv)], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd = exec.Command(argv[0], args...)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = s.stderr
	s.cmd.SysProcAttr = sysProcAttr()
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("awstest: start %s: %w", argv[0], err)
	}
	var exitErr error
	go func() { exitErr = s.cmd.Wait(); close(s.done) }()

	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if resp, err := client.Get(s.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			s.Startup = time.Since(t0)
			return s, nil
		}
		select {
		case <-s.done:
			if ee := (*exec.ExitError)(nil); errors.As(exitErr, &ee) && ee.ExitCode() == 127 {
				// e.g. a pyenv shim whose Python has no moto
				return nil, fmt.Errorf("%w: %s", ErrNotInstalled, s.stderrText())
			}
			return nil, fmt.Errorf("awstest: moto server exited before answering (%v): %s", exitErr, s.stderrText())
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("awstest: waiting for moto server: %w", ctx.Err())
		case <-deadline:
			s.Stop()
			return nil, fmt.Errorf("awstest: moto server did not answer within 30s: %s", s.stderrText())
		case <-tick.C:
		}
	}
}

func (s *Server) stderrText() string { return strings.TrimSpace(s.stderr.String()) }

// Stop ends the server process (and its children) and waits for it. Safe to call more than once;
// a nil Server or one given by SPIKEWATCH_MOTO_ENDPOINT is left alone.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	terminate(s.cmd.Process, false)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		terminate(s.cmd.Process, true)
		<-s.done
	}
}

// Config returns an aws.Config for this server: see ConfigFor.
func (s *Server) Config() aws.Config { return ConfigFor(s.URL) }

// ConfigFor returns an aws.Config with static test credentials, region us-east-1 and BaseEndpoint
// set to endpoint, so every service client made from it talks to that server (moto, or an
// httptest server faking an error). Nothing is read from the environment or ~/.aws.
func ConfigFor(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// Reset drops every resource in every service of the server (POST /moto-api/reset).
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	if err != nil {
		return fmt.Errorf("awstest: reset: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("awstest: reset: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("awstest: reset: status %s", resp.Status)
	}
	return nil
}

var (
	shared    *Server
	sharedErr error
	sharedMu  sync.Mutex
)

// Moto returns the test binary's shared moto server, starting it on first use. When moto is not
// installed the test is skipped, or fails when CI=true. Stop it from TestMain with Stop; if
// TestMain does not, the process is still ended when the test binary exits (Linux).
func Moto(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		if url := os.Getenv("SPIKEWATCH_MOTO_ENDPOINT"); url != "" {
			shared = &Server{URL: strings.TrimRight(url, "/")}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			shared, sharedErr = Start(ctx)
			cancel()
		}
	}
	if sharedErr != nil {
		if errors.Is(sharedErr, ErrNotInstalled) && os.Getenv("CI") != "true" {
			t.Skipf("skipping: %v", sharedErr)
		}
		t.Fatalf("moto server needed (CI=%q); install it with `%s`: %v", os.Getenv("CI"), InstallHint, sharedErr)
	}
	return shared
}

// Config returns an aws.Config for the shared moto server (see Moto).
func Config(t testing.TB) aws.Config {
	t.Helper()
	return Moto(t).Config()
}

// Reset resets the shared moto server (see Moto), failing the test on error.
func Reset(t testing.TB) {
	t.Helper()
	if err := Moto(t).Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the shared server if one was started. For TestMain, after m.Run.
func Stop() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	shared.Stop()
	shared, sharedErr = nil, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("awstest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is an io.Writer that keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
