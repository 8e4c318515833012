package dashboards_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spikewatch/spikewatch/dashboards"
	"github.com/spikewatch/spikewatch/internal/cli"
)

// The command lives in internal/cli; its test is here, next to the objects it ships.

func TestDashboardsCommandExport(t *testing.T) {
	tests := []struct {
		args []string
		want []byte
		code int
	}{
		{[]string{"export"}, dashboards.NDJSON(), 0},
		{[]string{"export", "--index-prefix", "acme"}, dashboards.ForPrefix("acme"), 0},
		{[]string{"export", "--index-prefix", ""}, nil, 2},
		{[]string{"export", "extra"}, nil, 2},
		{[]string{"publish"}, nil, 2},
		{nil, nil, 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli.Dashboards(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if tt.code == 0 && !bytes.Equal(stdout.Bytes(), tt.want) {
				t.Errorf("stdout is not the expected saved objects (%d bytes, want %d)", stdout.Len(), len(tt.want))
			}
		})
	}
}

func TestDashboardsCommandImport(t *testing.T) {
	var problems []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problems = checkImportRequest(r, "/_dashboards", "admin", true, dashboards.ForPrefix("acme"))
		w.WriteHeader(status)
		io.WriteString(w, `{"success":true,"successCount":19}`)
	}))
	defer srv.Close()
	t.Setenv("SPIKEWATCH_DASHBOARDS_USER", "admin")
	t.Setenv("SPIKEWATCH_DASHBOARDS_PASSWORD", "secret")

	var stdout, stderr bytes.Buffer
	args := []string{"import", "--url", srv.URL + "/_dashboards", "--index-prefix", "acme"}
	if code := cli.Dashboards(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	for _, p := range problems {
		t.Error(p)
	}
	if !strings.Contains(stdout.String(), "imported 19 saved objects") {
		t.Errorf("stdout %q", stdout.String())
	}

	status = http.StatusUnauthorized
	stdout.Reset()
	stderr.Reset()
	if code := cli.Dashboards(context.Background(), args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Errorf("refused import: exit %d, stderr %q", code, stderr.String())
	}
	if code := cli.Dashboards(context.Background(), []string{"import"}, &stdout, &stderr); code != 2 {
		t.Errorf("import without --url: exit %d, want 2", code)
	}
}
