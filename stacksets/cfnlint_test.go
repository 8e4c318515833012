package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const requirementsFile = "../scripts/requirements-test.txt"

// cfnLint returns the command that runs cfn-lint, or nil.
func cfnLint() []string {
	if p, err := exec.LookPath("cfn-lint"); err == nil {
		return []string{p}
	}
	for _, py := range []string{"python3", "python"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import cfnlint").Run() == nil {
			return []string{p, "-m", "cfnlint"}
		}
	}
	return nil
}

func pinnedCfnLint(t *testing.T) string {
	f, err := os.Open(requirementsFile)
	if err != nil {
		t.Logf("no %s: %v", requirementsFile, err)
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "cfn-lint=="); ok {
			return v
		}
	}
	return ""
}

var lintError = regexp.MustCompile(`:E[0-9]{4}:`)

// cfn-lint over the golden templates (equal to the synthesized ones, see TestGoldenTemplates):
// errors fail the test, warnings and informational findings are logged.
func TestCfnLint(t *testing.T) {
	cmd := cfnLint()
	pin := pinnedCfnLint(t)
	if cmd == nil {
		msg := "cfn-lint is not installed: pip install -r scripts/requirements-test.txt (cfn-lint==" + pin + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if out, err := exec.Command(cmd[0], append(cmd[1:], "--version")...).Output(); err == nil {
		v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "cfn-lint"))
		if pin != "" && v != pin {
			t.Logf("cfn-lint %s is installed, scripts/requirements-test.txt pins %s", v, pin)
		}
	}
	for _, path := range []string{goldenFiles["hub"], goldenFiles["member"], goldenFiles["artifacts"]} {
		c := exec.Command(cmd[0], append(cmd[1:], "--format", "parseable", "--", path)...)
		out, err := c.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("cfn-lint %s: %v", path, err)
		}
		text := strings.TrimSpace(string(out))
		// Exit status: a bit mask, 2 for errors, 4 warnings, 8 informational; 1 is a failure of
		// cfn-lint itself.
		if code&2 != 0 || code == 1 || lintError.MatchString(text) {
			t.Errorf("cfn-lint %s: exit %d\n%s", path, code, text)
			continue
		}
		if text == "" {
			t.Logf("cfn-lint %s: clean", path)
		} else {
			t.Logf("cfn-lint %s: %d finding(s), no error:\n%s", path, strings.Count(text, "\n")+1, text)
		}
	}
}
