package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// runCLI runs `kindling ARGS...` with env added to a clean environment and
// returns stdout, stderr and the exit status.
func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(kindlingBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kindling %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// TestCLI drives the user CLI as a subprocess: deploy a directory, invoke,
// redeploy with new settings, list, delete. Credentials come from the
// environment here; TestPersistence covers reading them from the data dir.
func TestCLI(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-cli"
	env := []string{
		"KINDLING_ENDPOINT=" + srv.url,
		"KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log lines about %s:\n  %s", name, strings.Join(srv.logLinesAbout(name, 40), "\n  "))
		}
	})
	t.Cleanup(func() { runCLI(t, env, "delete", name) })

	out, errOut, code := runCLI(t, env, "deploy", name, fnDirs["behave"], "--memory", "256",
		"--env", "E2E_RUN_ID="+runID, "--env", "E2E_FN="+name+"-"+runID, "--env", "GREETING=hi")
	if code != 0 {
		t.Fatalf("kindling deploy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	cfg, err := srv.client().GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration after deploy: %s", describe(err))
	}
	if cfg.State != types.StateActive || aws.ToInt32(cfg.MemorySize) != 256 || cfg.Runtime != types.RuntimeProvidedal2023 ||
		aws.ToString(cfg.CodeSha256) != codeSha256(zips["behave"]) {
		t.Errorf("deployed: state %q memory %d runtime %q sha %q (want the zip of the directory, %q)",
			cfg.State, aws.ToInt32(cfg.MemorySize), cfg.Runtime, aws.ToString(cfg.CodeSha256), codeSha256(zips["behave"]))
	}

	out, errOut, code = runCLI(t, env, "invoke", name, "--payload", `{"op":"log","lines":["line from the cli test"]}`)
	if code != 0 {
		t.Fatalf("kindling invoke: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil || r["logged"] != float64(1) {
		t.Errorf("kindling invoke stdout = %q", out)
	}
	if !strings.Contains(errOut, "line from the cli test") || !strings.Contains(errOut, "START RequestId: ") || !strings.Contains(errOut, "REPORT RequestId: ") {
		t.Errorf("kindling invoke stderr lacks the log tail: %q", errOut)
	}

	// Asynchronous invoke: queued at once, its output shows up in the
	// function's logs.
	asyncLine := "async line " + randomHex(6)
	out, errOut, code = runCLI(t, env, "invoke", name, "--async", "--payload", `{"op":"log","lines":["`+asyncLine+`"]}`)
	if code != 0 || !strings.HasPrefix(out, "queued ") || !strings.Contains(out, "(status 202)") {
		t.Fatalf("kindling invoke --async: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, _, _ := runCLI(t, env, "logs", name, "--since", "10m")
		if strings.Contains(logs, asyncLine) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the async invoke's output never reached kindling logs; last:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	payloadFile := filepath.Join(t.TempDir(), "event.json")
	os.WriteFile(payloadFile, []byte(`{"op":"error","message":"cli failure"}`), 0o644)
	out, errOut, code = runCLI(t, env, "invoke", name, "--payload", "@"+payloadFile, "--no-logs")
	if code != 1 || !strings.Contains(out, "cli failure") || strings.Contains(errOut, "START RequestId") {
		t.Errorf("kindling invoke of a failing function: exit %d (want 1)\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Redeploy from a .zip: new code (echo) and a new timeout; memory stays.
	zipPath := filepath.Join(t.TempDir(), "echo.zip")
	if err := os.WriteFile(zipPath, zips["echo"], 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, env, "deploy", name, zipPath, "--timeout", "9")
	if code != 0 {
		t.Fatalf("kindling deploy (update): exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	cfg, err = srv.client().GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration after redeploy: %s", describe(err))
	}
	if aws.ToInt32(cfg.Timeout) != 9 || aws.ToInt32(cfg.MemorySize) != 256 || aws.ToString(cfg.CodeSha256) != codeSha256(zips["echo"]) ||
		cfg.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("after redeploy: timeout %d memory %d sha %q status %q", aws.ToInt32(cfg.Timeout), aws.ToInt32(cfg.MemorySize),
			aws.ToString(cfg.CodeSha256), cfg.LastUpdateStatus)
	}
	out, errOut, code = runCLI(t, env, "invoke", name, "--payload", `{"echoed": [1, 2]}`)
	if code != 0 || strings.TrimSpace(out) != `{"echoed": [1, 2]}` {
		t.Errorf("invoke after redeploy: exit %d stdout %q stderr %q", code, out, errOut)
	}

	out, errOut, code = runCLI(t, env, "list")
	if code != 0 || !strings.Contains(out, name) {
		t.Errorf("kindling list: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, env, "delete", name)
	if code != 0 {
		t.Errorf("kindling delete: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, _, _ = runCLI(t, env, "list")
	if strings.Contains(out, name+" ") {
		t.Errorf("kindling list after delete still shows %s:\n%s", name, out)
	}
	_, errOut, code = runCLI(t, env, "invoke", name)
	if code != 1 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("invoke after delete: exit %d stderr %q", code, errOut)
	}
	_, _, code = runCLI(t, env, "no-such-command")
	if code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

// TestPersistence runs a second server on its own data directory, with
// credentials it generates: deploy, stop with SIGTERM, start again on the
// same directory, and the function is still listed and invocable. It is not
// parallel, so that it runs while the shared server is idle.
func TestPersistence(t *testing.T) {
	requireServer(t)
	dir := filepath.Join(workDir, "persist")
	s, err := startServer(dir, nil)
	if err != nil {
		if s != nil {
			s.dumpLog(os.Stderr, 60)
		}
		t.Fatalf("starting a second server: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.kill()
		}
		if t.Failed() {
			s.dumpLog(os.Stderr, 60)
		}
	})
	if s.credsFile != filepath.Join(s.dataDir, "credentials") {
		t.Errorf("generated credentials in %q, want DATA_DIR/credentials (%s)", s.credsFile, filepath.Join(s.dataDir, "credentials"))
	}
	if fi, err := os.Stat(s.credsFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("credentials file mode %v, want no access for group/others", fi.Mode().Perm())
	}
	const name = "e2e-persist"
	c := s.client()
	if _, err := c.CreateFunction(ctx(t), createInput(name, fnSpec{code: "echo"})); err != nil {
		t.Fatalf("CreateFunction: %s", describe(err))
	}
	waitActive(t, c, name)
	if inv := invokeOn(t, s, name, []byte(`{"n":1}`)); string(inv.payload()) != `{"n":1}` {
		t.Errorf("before restart: %s", inv.payload())
	}
	// The CLI finds the generated credentials in the data dir by itself.
	out, errOut, code := runCLI(t, nil, "list", "--endpoint", s.url, "--data-dir", s.dataDir)
	if code != 0 || !strings.Contains(out, name) {
		t.Errorf("kindling list --data-dir: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	creds := s.creds

	if err := s.stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
	if pids := waitNoProcesses(marker(name), 15*time.Second); len(pids) > 0 {
		t.Errorf("sandbox processes survive the server's SIGTERM: %v", pids)
	}

	s2, err := startServer(dir, nil)
	if err != nil {
		if s2 != nil {
			s2.dumpLog(os.Stderr, 60)
		}
		t.Fatalf("restarting on the same data dir: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-s2.done:
		default:
			if err := s2.stop(); err != nil {
				t.Errorf("stopping the restarted server: %v", err)
			}
		}
		if t.Failed() {
			s2.dumpLog(os.Stderr, 60)
		}
	})
	if s2.creds != creds {
		t.Errorf("credentials changed across a restart")
	}
	list, err := s2.client().ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatalf("ListFunctions after restart: %s", describe(err))
	}
	found := false
	for _, f := range list.Functions {
		found = found || aws.ToString(f.FunctionName) == name
	}
	if !found {
		t.Errorf("%s not listed after a restart", name)
	}
	cfg, err := s2.client().GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration after restart: %s", describe(err))
	}
	if cfg.State != types.StateActive || aws.ToString(cfg.CodeSha256) != codeSha256(zips["echo"]) {
		t.Errorf("after restart: state %q sha %q", cfg.State, aws.ToString(cfg.CodeSha256))
	}
	if inv := invokeOn(t, s2, name, []byte(`{"n":2}`)); string(inv.payload()) != `{"n":2}` {
		t.Errorf("after restart: %s", inv.payload())
	}
	if _, err := s2.client().DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
		t.Errorf("DeleteFunction after restart: %s", describe(err))
	}
}
