package awstest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/spikewatch/spikewatch/internal/awstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

func TestConfigReachesMoto(t *testing.T) {
	cfg := awstest.Config(t)
	if cfg.Region != awstest.Region || cfg.BaseEndpoint == nil {
		t.Fatalf("config: region %q endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
	t.Logf("moto at %s, started in %v", *cfg.BaseEndpoint, awstest.Moto(t).Startup)
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Account); got != awstest.AccountID {
		t.Errorf("account = %q, want %q", got, awstest.AccountID)
	}
}

func TestReset(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := sns.NewFromConfig(cfg)
	if _, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("reset-me")}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		out, err := client.ListTopics(ctx, &sns.ListTopicsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Topics)
	}
	if n := count(); n == 0 {
		t.Fatal("topic not created")
	}
	awstest.Reset(t)
	if n := count(); n != 0 {
		t.Errorf("after reset: %d topics", n)
	}
}

// A private server: Start, answer, Stop, and the port no longer answers.
func TestStartStop(t *testing.T) {
	awstest.Moto(t) // skips (or fails on CI) when moto is missing
	if os.Getenv("SPIKEWATCH_MOTO_ENDPOINT") != "" {
		t.Skip("using an external moto server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := awstest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("private moto started in %v", s.Startup)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // idempotent
	if _, err := http.Get(s.URL + "/moto-api/"); err == nil {
		t.Error("server still answers after Stop")
	}
}

func TestMissingCommand(t *testing.T) {
	t.Setenv("SPIKEWATCH_MOTO_SERVER", "/nonexistent/moto_server")
	_, err := awstest.Start(context.Background())
	if err == nil {
		t.Fatal("started a nonexistent command")
	}
	t.Log(err)
	// exec reports a missing binary itself; a shim without moto exits 127 -> ErrNotInstalled
	shim := filepath.Join(t.TempDir(), "moto_server")
	if err := os.WriteFile(shim, []byte("#!/bin/sh\necho 'pyenv: moto_server: command not found' >&2\nexit 127\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPIKEWATCH_MOTO_SERVER", shim)
	_, err = awstest.Start(context.Background())
	if !errors.Is(err, awstest.ErrNotInstalled) {
		t.Errorf("exit 127: err = %v, want ErrNotInstalled", err)
	}
}
