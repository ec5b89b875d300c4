// Package e2e drives a real Kindling server end to end: TestMain builds the
// kindling and kindling-agent binaries and the test functions in
// testdata/functions, starts `kindling server` as a subprocess on a fresh data
// directory with process sandboxes, and the tests talk to it with the
// unmodified AWS SDK for Go v2, as a user would.
//
// Requirements: root (process sandboxes use namespaces and cgroups) and the
// sandbox root filesystem built by scripts/build-rootfs.sh. Without root the
// tests skip, saying why; without the root filesystem they fail, naming the
// command that builds it.
//
// Lambda's long waits (init limit, keep-alive) are shortened with the
// server's --time-scale; tests wait for observable effects with deadlines,
// never for fixed sleeps.
//
// KINDLING_E2E_SANDBOX=gvisor runs the server (and so the whole suite) with
// gVisor sandboxes instead of process ones (gvisor_hosts_test.go finds their
// host processes); `make test` runs the package once with each.
//
// KINDLING_E2E_ROOTFS and KINDLING_E2E_RUNSC give the servers another root
// filesystem and runsc than the defaults (to test a build, e.g. the
// gofer-less EROFS layout, which needs both made by the current scripts).
//
// Set KINDLING_E2E_KEEP=1 to keep the temporary directory (server log, data
// dir) after the run; it is always kept when a test fails.
package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"kindling/internal/cli"
)

// rootFS is the servers' root filesystem (KINDLING_E2E_ROOTFS overrides it)
// and runscPath their runsc if KINDLING_E2E_RUNSC names one (else the
// server's default).
var (
	rootFS    = cmp.Or(os.Getenv("KINDLING_E2E_ROOTFS"), "/var/lib/kindling/rootfs")
	runscPath = os.Getenv("KINDLING_E2E_RUNSC")
)

const (
	region = "us-east-1"
	// account is the server's default account id.
	account   = "000000000000"
	keepAlive = 40 * time.Second
	// role is a syntactically valid execution role; Kindling does not
	// assume it.
	role = "arn:aws:iam::000000000000:role/kindling-e2e"
)

// goFunctions are the Go test functions under testdata/functions.
var goFunctions = []string{"echo", "behave", "initslow", "initpanic", "rawruntime", "snapstart"}

// Package state, set up by TestMain and read-only afterwards.
var (
	skipReason  string // non-empty: every test skips with this reason
	moduleRoot  string
	workDir     string // temporary directory of this run
	binDir      string // kindling and kindling-agent
	kindlingBin string
	// fnDirs holds, per test function, a directory with its bootstrap;
	// zips holds the same as a deployment package.
	fnDirs = map[string]string{}
	zips   = map[string][]byte{}
	// runID is put into every function's environment (E2E_RUN_ID) so that
	// sandbox processes of this run can be found on the host.
	runID = randomHex(8)
	// srv is the server shared by the tests.
	srv *server
	// serverMarker is an environment variable given to the server process
	// only; it must never show up inside a sandbox.
	serverMarker = "E2E_SERVER_ONLY=" + randomHex(16)
)

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

// timeScale shortens Lambda's long waits: the 10 s init limit becomes 1 s
// and keepAlive (Lambda time) becomes keepAlive*timeScale. gVisor sandboxes
// start a runtime within a small CPU share an order of magnitude slower than
// process ones, so with them the waits are shortened less (a 3 s init
// limit), lest a loaded machine turn a slow init into an init timeout.
var timeScale = 0.1

func testMain(m *testing.M) int {
	if sandboxBackend() == "gvisor" {
		timeScale = 0.3
	}
	// The tests mostly wait on sandboxes; run more of them at once than the
	// default (GOMAXPROCS) unless -test.parallel was given.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "6")
	}
	if os.Geteuid() != 0 {
		skipReason = "e2e tests need root: process sandboxes use namespaces and cgroups (run with sudo)"
		return m.Run()
	}
	if _, err := os.Stat(filepath.Join(rootFS, "bin", "sh")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: sandbox root filesystem missing (%v)\n"+
			"e2e: build it first with: sudo scripts/build-rootfs.sh\n", err)
		return 1
	}
	var err error
	workDir, err = os.MkdirTemp("", "kindling-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := setUpAndRun(m)
	if code != 0 || os.Getenv("KINDLING_E2E_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "e2e: kept %s (server log: %s)\n", workDir, filepath.Join(workDir, "server", "server.log"))
	} else {
		os.RemoveAll(workDir)
	}
	return code
}

func setUpAndRun(m *testing.M) int {
	if err := buildAll(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	creds := cli.Credentials{AccessKeyID: "AKIDE2E" + strings.ToUpper(randomHex(6)), SecretAccessKey: randomHex(20)}
	s, err := startServer(filepath.Join(workDir, "server"), &creds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the server:", err)
		if s != nil {
			s.dumpLog(os.Stderr, 100)
		}
		return 1
	}
	srv = s
	finished := make(chan struct{})
	go func() {
		select {
		case <-s.done:
			fmt.Fprintf(os.Stderr, "e2e: %s: the server exited during the tests (%v); its log: %s\n",
				time.Now().Format(time.RFC3339Nano), s.err, s.logPath)
		case <-finished:
		}
	}()
	code := m.Run()
	close(finished)
	if err := srv.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the server:", err)
		code = 1
	}
	// Stopping the server must take every sandbox with it.
	if pids := waitNoProcesses("E2E_RUN_ID="+runID, 15*time.Second); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: sandbox processes left after the server stopped: %v\n", pids)
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "e2e: last lines of the server log:")
		srv.dumpLog(os.Stderr, 80)
	}
	return code
}

// sandboxBackend is the server's --sandbox: KINDLING_E2E_SANDBOX (process
// or gvisor), process by default. `make test` runs the package once with
// each.
func sandboxBackend() string {
	switch v := os.Getenv("KINDLING_E2E_SANDBOX"); v {
	case "", "process":
		return "process"
	default:
		return v
	}
}

// requireServer skips t when the package cannot run (not root).
func requireServer(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if srv == nil {
		t.Fatal("no server (TestMain failed to start it)")
	}
}

func buildAll() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	moduleRoot = filepath.Dir(strings.TrimSpace(string(out)))
	binDir = filepath.Join(workDir, "bin")
	kindlingBin = filepath.Join(binDir, "kindling")

	type job struct {
		out, pkg string
		env      []string
	}
	jobs := []job{
		{kindlingBin, "./cmd/kindling", nil},
		{filepath.Join(binDir, "kindling-agent"), "./cmd/kindling-agent", []string{"CGO_ENABLED=0"}},
	}
	for _, fn := range goFunctions {
		jobs = append(jobs, job{filepath.Join(workDir, "functions", fn, "bootstrap"), "./testdata/functions/" + fn,
			[]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}})
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", j.out, j.pkg)
			cmd.Dir = moduleRoot
			cmd.Env = append(os.Environ(), j.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", j.pkg, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, fn := range goFunctions {
		fnDirs[fn] = filepath.Join(workDir, "functions", fn)
	}
	// Shell runtimes: copied so that the executable bit does not depend on
	// how the checkout was made.
	for _, fn := range []string{"shell", "shell-initerror"} {
		src, err := os.ReadFile(filepath.Join(moduleRoot, "testdata", "functions", fn, "bootstrap"))
		if err != nil {
			return err
		}
		dir := filepath.Join(workDir, "functions", fn)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), src, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(dir, "bootstrap"), 0o755); err != nil {
			return err
		}
		fnDirs[fn] = dir
	}
	for fn, dir := range fnDirs {
		z, err := cli.ZipDir(dir)
		if err != nil {
			return fmt.Errorf("zipping %s: %w", fn, err)
		}
		zips[fn] = z
	}
	return nil
}

// server is one `kindling server` subprocess.
type server struct {
	dir     string // holds data/ and server.log
	dataDir string
	logPath string
	url     string
	addr    string // host:port
	creds   cli.Credentials
	// credsFile is the file the server said it wrote, if it generated them.
	credsFile string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the process's exit error, valid after done
}

// startServer starts a server whose data directory is dir/data. With creds
// non-nil the server gets them through KINDLING_ACCESS_KEY_ID/SECRET;
// otherwise it must generate them and say where, and they are read from
// that file. extra are more server flags; a flag given twice takes its
// last value, so extra can override the defaults (--sandbox, --keep-alive).
func startServer(dir string, creds *cli.Credentials, extra ...string) (*server, error) {
	s := &server{dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log")}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(kindlingBin, "server",
		"--listen", "127.0.0.1:0",
		"--data-dir", s.dataDir,
		"--sandbox", sandboxBackend(),
		"--rootfs", rootFS,
		"--region", region,
		"--account-id", account,
		"--time-scale", fmt.Sprint(timeScale),
		"--keep-alive", keepAlive.String(),
	)
	if runscPath != "" {
		s.cmd.Args = append(s.cmd.Args, "--runsc", runscPath)
	}
	s.cmd.Args = append(s.cmd.Args, extra...)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KINDLING_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, serverMarker)
	if creds != nil {
		env = append(env, "KINDLING_ACCESS_KEY_ID="+creds.AccessKeyID, "KINDLING_SECRET_ACCESS_KEY="+creds.SecretAccessKey)
		s.creds = *creds
	}
	s.cmd.Env = env
	s.cmd.Stderr = logFile
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.done = make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(logFile, "[stdout] %s\n", line)
			if f, ok := strings.CutPrefix(line, "kindling: credentials in "); ok {
				s.credsFile, _, _ = strings.Cut(f, " (profile ")
			}
			if u, ok := strings.CutPrefix(line, "kindling: listening on "); ok && !seen {
				s.url = strings.TrimSpace(u)
				s.addr = strings.TrimPrefix(s.url, "http://")
				seen = true
				close(listening)
			}
		}
	}()
	go func() {
		s.err = s.cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	select {
	case <-listening:
	case <-s.done:
		return s, fmt.Errorf("server exited before listening: %v", s.err)
	case <-time.After(2 * time.Minute):
		s.kill()
		return s, errors.New("server did not print its listening line within 2 minutes")
	}
	if creds == nil {
		if s.credsFile == "" {
			s.stop()
			return s, errors.New(`server generated credentials but printed no "kindling: credentials in FILE (profile kindling)" line`)
		}
		f, err := os.Open(s.credsFile)
		if err != nil {
			s.stop()
			return s, err
		}
		defer f.Close()
		if s.creds, err = cli.ParseCredentialsFile(f, "kindling"); err != nil {
			s.stop()
			return s, fmt.Errorf("%s: %w", s.credsFile, err)
		}
	}
	return s, nil
}

// stop sends SIGTERM and waits for the process to exit; it must exit with
// status 0 within a minute.
func (s *server) stop() error {
	select {
	case <-s.done:
		return fmt.Errorf("server had already exited: %v", s.err)
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("server exited after SIGTERM with %v", s.err)
		}
		return s.leftCgroups()
	case <-time.After(time.Minute):
		s.kill()
		return errors.New("server did not exit within a minute of SIGTERM; killed it")
	}
}

// leftCgroups fails if the stopped server left its sandboxes' parent
// cgroup (kindling-<hash of its data directory>, "-gvisor" for gVisor
// sandboxes) in any cgroup hierarchy.
func (s *server) leftCgroups() error {
	abs, err := filepath.Abs(s.dataDir)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(abs))
	parent := "kindling-" + hex.EncodeToString(sum[:4])
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", parent+"*"))
	if len(left) > 0 {
		return fmt.Errorf("server stopped and left cgroups %v", left)
	}
	return nil
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// dumpLog writes the last n lines of the server log to w.
func (s *server) dumpLog(w io.Writer, n int) {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		fmt.Fprintln(w, "e2e: reading server log:", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		fmt.Fprintln(w, "  | "+l)
	}
}

// logLinesAbout returns up to max server log lines that contain needle.
func (s *server) logLinesAbout(needle string, max int) []string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, needle) {
			out = append(out, l)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// client returns a Lambda client for s signing with creds. Retries are off
// so that every server answer is seen as it is.
func (s *server) clientWith(creds cli.Credentials) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.url),
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 3 * time.Minute},
	})
}

func (s *server) client() *lambda.Client { return s.clientWith(s.creds) }

// processesWith lists host pids whose environment contains the exact
// variable assignment kv (sandbox processes are visible from the host's pid
// namespace).
func processesWith(kv string) []int {
	if sandboxBackend() == "gvisor" {
		return gvisorProcessesWith(kv) // no function process is a host process there
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(kv)
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(v, needle) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// waitNoProcesses polls until no process carries kv, or the deadline; it
// returns the processes left.
func waitNoProcesses(kv string, within time.Duration) []int {
	deadline := time.Now().Add(within)
	for {
		pids := processesWith(kv)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctx returns a context bounded for one test step.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}
