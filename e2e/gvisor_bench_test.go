package e2e

// The gVisor backend's benchmarks of docs/benchmarks.md (issue 4). Each
// starts its own servers (the kindling binary TestMain built, fresh data
// directories), one per backend it compares, so that the figures do not
// depend on KINDLING_E2E_SANDBOX, and measures its baseline in the same
// run:
//
//	go test ./e2e -run '^$' -bench GVisor -benchtime 1x -timeout 60m
//
// Parameters are those of bench_test.go: the aws-lambda-go echo function, a
// ~100-byte payload, MemorySize 1769 unless a benchmark says otherwise.
//
//   - BenchmarkGVisorColdStart: invokes that find no environment (each after
//     a configuration update; nothing is ever pre-created), gvisor and
//     process interleaved, in total and beyond the function's own init.
//   - BenchmarkGVisorWarmInvoke: sequential warm invokes through the server
//     on gvisor and process, against the AWS Runtime Interface Emulator
//     running the same bootstrap directly when KINDLING_BENCH_RIE names its
//     binary (aws-lambda-rie, built outside this repository); without it
//     the emulator comparison is skipped, saying so. Also reports the
//     sandbox's host CPU time per invoke, and the same at MemorySize 128.
//     KINDLING_BENCH_BASE_AGENT names another agent binary (e.g. one built
//     from an older commit, CGO_ENABLED=0): a gvisor and a process server
//     running it ("gvisor-base", "process-base") join the interleaved
//     rounds, for a before/after comparison in one run.
//   - BenchmarkGVisorIdle: KINDLING_BENCH_IDLE sandboxes (default 100; the
//     issue's target is 500) whose runtime waits in /next, one per function
//     at MemorySize 128: PSS of all host processes of each sandbox (each
//     address space once), and the host CPU they and the server use while
//     idle, gvisor against process.
//
// Figures are reported with b.ReportMetric; nothing here asserts a time.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/cli"
)

// envRIE names the aws-lambda-rie binary of the warm-invoke baseline.
const envRIE = "KINDLING_BENCH_RIE"

// envIdle is the number of idle sandboxes of BenchmarkGVisorIdle.
const envIdle = "KINDLING_BENCH_IDLE"

// envBaseAgent names a baseline agent binary for BenchmarkGVisorWarmInvoke.
const envBaseAgent = "KINDLING_BENCH_BASE_AGENT"

// envBenchRunsc names another runsc binary for the gvisor servers of the
// benchmarks (to compare builds); envIdleHold keeps BenchmarkGVisorIdle's
// sandboxes that many more seconds after measuring (to look at them).
const (
	envBenchRunsc = "KINDLING_BENCH_RUNSC"
	envIdleHold   = "KINDLING_BENCH_IDLE_HOLD"
)

// benchBackend is one server of a benchmark, with its backend's name.
type benchBackend struct {
	name string
	srv  *server
	c    *lambda.Client
}

// startBenchServer starts a server with the given sandbox backend on a fresh
// data directory, stopped when b ends. A gvisor server that cannot start
// (no runsc) skips b, saying why.
func startBenchServer(b *testing.B, sandbox string, extra ...string) *benchBackend {
	b.Helper()
	dir, err := os.MkdirTemp(workDir, "bench-"+sandbox+"-")
	if err != nil {
		b.Fatal(err)
	}
	creds := cli.Credentials{AccessKeyID: "AKIDBENCH" + strings.ToUpper(randomHex(6)), SecretAccessKey: randomHex(20)}
	if p := os.Getenv(envBenchRunsc); p != "" && sandbox == "gvisor" {
		extra = append([]string{"--runsc", p}, extra...)
	}
	s, err := startServer(dir, &creds, append([]string{"--sandbox", sandbox}, extra...)...)
	if err != nil {
		if s != nil {
			s.dumpLog(os.Stderr, 20)
		}
		if sandbox == "gvisor" && os.Getenv("KINDLING_GVISOR_REQUIRED") == "" {
			b.Skipf("gvisor server: %v (build runsc with: sudo scripts/build-runsc.sh)", err)
		}
		b.Fatalf("%s server: %v", sandbox, err)
	}
	b.Cleanup(func() {
		if err := s.stop(); err != nil {
			b.Errorf("stopping the %s server: %v", sandbox, err)
		}
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	c := lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.url),
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: tr, Timeout: 5 * time.Minute},
	})
	return &benchBackend{name: sandbox, srv: s, c: c}
}

// cgroupParent is the cgroup under which the server puts its sandboxes
// (internal/server newBackend: a hash of the data directory, "-gvisor" for
// gVisor's).
func (bb *benchBackend) cgroupParent() string {
	abs, _ := filepath.Abs(bb.srv.dataDir)
	sum := sha256.Sum256([]byte(abs))
	p := "kindling-" + hex.EncodeToString(sum[:4])
	if bb.name == "gvisor" {
		p += "-gvisor"
	}
	return p
}

// sandboxCgroups lists the server's sandboxes by their cgroup directories in
// the memory hierarchy (both backends make one there).
func (bb *benchBackend) sandboxCgroups(b *testing.B) []string {
	b.Helper()
	root := filepath.Join("/sys/fs/cgroup/memory", bb.cgroupParent())
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no sandbox yet
	}
	if err != nil {
		b.Fatalf("sandbox cgroups: %v", err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	return dirs
}

// sandboxCPU is the user+system time of the processes in the sandbox
// cgroups dirs (the process backend has no cpuacct cgroup; the resolution
// is the clock tick, so callers measure long spans).
func sandboxCPU(b *testing.B, dirs ...string) time.Duration {
	b.Helper()
	var sum time.Duration
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			b.Fatal(err)
		}
		for f := range strings.FieldsSeq(string(data)) {
			pid, _ := strconv.Atoi(f)
			sum += processCPU(b, pid)
		}
	}
	return sum
}

// processCPU is a process's user+system time from /proc/PID/stat.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0 // exited meanwhile
	}
	// Fields after the command (which may hold spaces) start at ") ".
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (bb *benchBackend) createEcho(b *testing.B, name string, memory int32) {
	b.Helper()
	in := createInput(name, fnSpec{code: "echo", memory: memory, timeout: 30})
	if _, err := bb.c.CreateFunction(context.Background(), in); err != nil {
		b.Fatalf("%s: CreateFunction: %s", bb.name, describe(err))
	}
	w := lambda.NewFunctionActiveV2Waiter(bb.c)
	if err := w.Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		b.Fatal(err)
	}
}

func (bb *benchBackend) invoke(b *testing.B, name string, tail bool) *lambda.InvokeOutput {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: benchPayload}
	if tail {
		in.LogType = types.LogTypeTail
	}
	out, err := bb.c.Invoke(context.Background(), in)
	if err != nil {
		b.Fatalf("%s: Invoke %s: %s", bb.name, name, describe(err))
	}
	if out.FunctionError != nil || !bytes.Equal(out.Payload, benchPayload) {
		b.Fatalf("%s: Invoke %s answered %v %q", bb.name, name, out.FunctionError, out.Payload)
	}
	return out
}

// retire makes the next invoke of name cold: a configuration update
// retires every environment of the older revision.
func (bb *benchBackend) retire(b *testing.B, name string, i int) {
	env := map[string]string{"E2E_RUN_ID": runID, "E2E_FN": name + "-" + runID, "SAMPLE": strconv.Itoa(i)}
	if _, err := bb.c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name), Environment: &types.Environment{Variables: env},
	}); err != nil {
		b.Fatal(describe(err))
	}
}

// BenchmarkGVisorColdStart measures cold invokes on gvisor and process
// servers, interleaved sample by sample: total latency of the SDK's Invoke,
// the function's own init (Init Duration) and the rest, which is the
// platform's part (placement, sandbox creation, runtime start, the invoke).
func BenchmarkGVisorColdStart(b *testing.B) {
	requireBenchServer(b)
	for _, memory := range []int32{1769, 128} {
		b.Run(fmt.Sprintf("mem%d", memory), func(b *testing.B) {
			backends := []*benchBackend{startBenchServer(b, "gvisor"), startBenchServer(b, "process")}
			name := fmt.Sprintf("bench-gvcold-%d", memory)
			for _, bb := range backends {
				bb.createEcho(b, name, memory)
				bb.invoke(b, name, false) // first use of the code: unpacked, page cache warm
			}
			const samples = 40
			type series struct{ cold, beyond, init []time.Duration }
			res := make([]series, len(backends))
			b.ResetTimer()
			for range b.N {
				for i := range samples {
					for k, bb := range backends {
						bb.retire(b, name, i)
						t := time.Now()
						out := bb.invoke(b, name, true)
						d := time.Since(t)
						logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
						if err != nil {
							b.Fatal(err)
						}
						init, ok := initDuration(string(logs))
						if !ok {
							b.Fatalf("%s: invoke after an update was not cold:\n%s", bb.name, logs)
						}
						res[k].cold = append(res[k].cold, d)
						res[k].init = append(res[k].init, init)
						res[k].beyond = append(res[k].beyond, d-init)
					}
				}
			}
			b.StopTimer()
			for k, bb := range backends {
				r := res[k]
				b.ReportMetric(us(percentile(r.cold, .5))/1000, bb.name+"-cold-p50-ms")
				b.ReportMetric(us(percentile(r.cold, .99))/1000, bb.name+"-cold-p99-ms")
				b.ReportMetric(us(percentile(r.beyond, .5))/1000, bb.name+"-beyond-init-p50-ms")
				b.ReportMetric(us(percentile(r.init, .5))/1000, bb.name+"-init-p50-ms")
				b.Logf("%s MemorySize %d: cold p50 %.1f ms p99 %.1f ms; beyond init p50 %.1f ms; init p50 %.1f ms (%d samples)",
					bb.name, memory, us(percentile(r.cold, .5))/1000, us(percentile(r.cold, .99))/1000,
					us(percentile(r.beyond, .5))/1000, us(percentile(r.init, .5))/1000, len(r.cold))
			}
			b.ReportMetric(float64(percentile(res[0].cold, .5))/float64(percentile(res[1].cold, .5)), "gvisor/process-p50")
		})
	}
}

// rie runs aws-lambda-rie with the echo function's bootstrap, as the
// emulator's documentation does for provided runtimes, on free loopback
// ports; it is stopped when b ends.
func startRIE(b *testing.B, path string) (url string) {
	b.Helper()
	addr, api := freeAddr(b), freeAddr(b)
	cmd := exec.Command(path, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api,
		filepath.Join(fnDirs["echo"], "bootstrap"))
	cmd.Dir = fnDirs["echo"]
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url = "http://" + addr + "/2015-03-31/functions/function/invocations"
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return url
		}
		if time.Now().After(deadline) {
			b.Fatalf("aws-lambda-rie did not listen on %s within 30 s:\n%s", addr, out.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkGVisorWarmInvoke measures sequential warm invokes of the echo
// function at MemorySize 1769 through gvisor and process servers, in rounds
// interleaved with invokes of the emulator (when KINDLING_BENCH_RIE is
// set). The sandbox's host CPU per invoke (its cgroup's cpuacct) shows what
// gVisor's user-space kernel adds. A second pass at MemorySize 128 shows
// the effect of the small CPU share.
func BenchmarkGVisorWarmInvoke(b *testing.B) {
	requireBenchServer(b)
	backends := []*benchBackend{startBenchServer(b, "gvisor", "--keep-alive", "24h"), startBenchServer(b, "process", "--keep-alive", "24h")}
	labels := []string{"gvisor", "process"}
	if p := os.Getenv(envBaseAgent); p != "" {
		backends = append(backends,
			startBenchServer(b, "gvisor", "--keep-alive", "24h", "--agent", p),
			startBenchServer(b, "process", "--keep-alive", "24h", "--agent", p))
		labels = append(labels, "gvisor-base", "process-base")
	}
	var rieURL string
	if p := os.Getenv(envRIE); p != "" {
		rieURL = startRIE(b, p)
	} else {
		b.Logf("%s is not set: no comparison with the AWS Runtime Interface Emulator "+
			"(build aws-lambda-rie from github.com/aws/aws-lambda-runtime-interface-emulator outside this repository and set %s to its path)", envRIE, envRIE)
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	rieOnce := func() {
		resp, err := hc.Post(rieURL, "application/json", bytes.NewReader(benchPayload))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, benchPayload) {
			b.Fatalf("aws-lambda-rie answered %d %q", resp.StatusCode, body)
		}
	}
	for _, memory := range []int32{1769, 128} {
		name := fmt.Sprintf("bench-gvwarm-%d", memory)
		before := make([][]string, len(backends)) // the other size's sandbox
		for k, bb := range backends {
			bb.createEcho(b, name, memory)
			before[k] = bb.sandboxCgroups(b)
		}
		for range 200 { // warm up every path and environment
			for _, bb := range backends {
				bb.invoke(b, name, false)
			}
			if rieURL != "" {
				rieOnce()
			}
		}
		rounds, perRound := 20, 100
		if memory < 1769 {
			rounds, perRound = 5, 40
		}
		lat := make([][]time.Duration, len(backends))
		cpu := make([]time.Duration, len(backends))
		cgs := make([]string, len(backends))
		for k, bb := range backends {
			var dirs []string
			for _, d := range bb.sandboxCgroups(b) {
				if !slices.Contains(before[k], d) {
					dirs = append(dirs, d)
				}
			}
			if len(dirs) != 1 {
				b.Fatalf("%s: %d new sandboxes for %s, want 1", bb.name, len(dirs), name)
			}
			cgs[k] = dirs[0]
			cpu[k] = -sandboxCPU(b, cgs[k])
		}
		var rie []time.Duration
		b.ResetTimer()
		for range b.N {
			for range rounds {
				for k, bb := range backends {
					for range perRound {
						t := time.Now()
						bb.invoke(b, name, false)
						lat[k] = append(lat[k], time.Since(t))
					}
				}
				if rieURL != "" && memory == 1769 {
					for range perRound {
						t := time.Now()
						rieOnce()
						rie = append(rie, time.Since(t))
					}
				}
			}
		}
		b.StopTimer()
		for k := range backends {
			cpu[k] += sandboxCPU(b, cgs[k])
		}
		for k := range backends {
			p50, p99 := percentile(lat[k], .5), percentile(lat[k], .99)
			perInvoke := cpu[k] / time.Duration(len(lat[k]))
			b.ReportMetric(us(p50), fmt.Sprintf("%s-%d-p50-us", labels[k], memory))
			b.ReportMetric(us(p99), fmt.Sprintf("%s-%d-p99-us", labels[k], memory))
			b.ReportMetric(us(perInvoke), fmt.Sprintf("%s-%d-sandbox-cpu-us/invoke", labels[k], memory))
			b.Logf("%s MemorySize %d: warm p50 %.0f us p99 %.0f us; sandbox host CPU %.0f us per invoke (%d samples)",
				labels[k], memory, us(p50), us(p99), us(perInvoke), len(lat[k]))
		}
		if len(rie) > 0 {
			p50, p99 := percentile(rie, .5), percentile(rie, .99)
			b.ReportMetric(us(p50), "rie-p50-us")
			b.ReportMetric(us(p99), "rie-p99-us")
			b.ReportMetric(float64(percentile(lat[0], .5))/float64(p50), "gvisor/rie-p50")
			b.Logf("aws-lambda-rie: warm p50 %.0f us p99 %.0f us; gvisor/rie p50 %.2fx (%d samples)",
				us(p50), us(p99), float64(percentile(lat[0], .5))/float64(p50), len(rie))
			if len(backends) > 2 {
				b.ReportMetric(float64(percentile(lat[2], .5))/float64(p50), "gvisor-base/rie-p50")
				b.Logf("gvisor-base/rie p50 %.2fx", float64(percentile(lat[2], .5))/float64(p50))
			}
		}
	}
}

// BenchmarkGVisorThawInvoke measures what freezing idle sandboxes costs a
// warm invoke: warm invokes of the echo function (MemorySize 1769) on a
// gvisor server, each after a pause, alternately shorter than the
// assignment service's freeze delay (assignment.DefaultFreezeAfter, 1 s:
// the sandbox is still running) and longer (it was frozen and Acquire
// thaws it). The difference of the medians is the thaw's cost.
func BenchmarkGVisorThawInvoke(b *testing.B) {
	requireBenchServer(b)
	bb := startBenchServer(b, "gvisor", "--keep-alive", "24h")
	const name = "bench-gvthaw"
	bb.createEcho(b, name, 1769)
	for range 20 {
		bb.invoke(b, name, false)
	}
	pauses := []time.Duration{500 * time.Millisecond, 1600 * time.Millisecond}
	lat := make([][]time.Duration, len(pauses))
	const samples = 20
	b.ResetTimer()
	for range b.N {
		for range samples {
			for k, p := range pauses {
				time.Sleep(p)
				t := time.Now()
				bb.invoke(b, name, false)
				lat[k] = append(lat[k], time.Since(t))
			}
		}
	}
	b.StopTimer()
	for k, p := range pauses {
		p50, p99 := percentile(lat[k], .5), percentile(lat[k], .99)
		b.ReportMetric(us(p50), fmt.Sprintf("after-%v-p50-us", p))
		b.ReportMetric(us(p99), fmt.Sprintf("after-%v-max-us", p))
		b.Logf("warm invoke after %v idle: p50 %.0f us, max %.0f us (%d samples)", p, us(p50), us(p99), len(lat[k]))
	}
}

// BenchmarkGVisorIdle creates KINDLING_BENCH_IDLE idle sandboxes (one echo
// function each, MemorySize 128, invoked once so that its runtime waits in
// /next) on a gvisor and then a process server, and measures the PSS of
// every host process in each sandbox's cgroup (the sentry, the gofer and
// the systrap stubs for gvisor; the agent and the runtime for process) and
// the host CPU the sandboxes and the server use over 10 idle seconds.
func BenchmarkGVisorIdle(b *testing.B) {
	requireBenchServer(b)
	n := 100
	if v := os.Getenv(envIdle); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", envIdle, v)
		}
	}
	for _, sandbox := range []string{"gvisor", "process"} {
		b.Run(sandbox, func(b *testing.B) {
			for range b.N {
				idleRun(b, sandbox, n)
			}
		})
	}
}

func idleRun(b *testing.B, sandbox string, n int) {
	const memory = 128
	bb := startBenchServer(b, sandbox, "--keep-alive", "24h", "--worker-memory", strconv.Itoa((n+8)*memory))
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				name := fmt.Sprintf("bench-idle-%d", i)
				in := createInput(name, fnSpec{code: "echo", memory: memory, timeout: 30})
				if _, err := bb.c.CreateFunction(context.Background(), in); err != nil {
					errs <- fmt.Errorf("CreateFunction %s: %s", name, describe(err))
					return
				}
				w := lambda.NewFunctionActiveV2Waiter(bb.c)
				if err := w.Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
					errs <- err
					return
				}
				out, err := bb.c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: benchPayload})
				if err != nil || out.FunctionError != nil {
					errs <- fmt.Errorf("Invoke %s: %v %v", name, describe(err), out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	created := time.Since(t0)
	cgs := bb.sandboxCgroups(b)
	if len(cgs) != n {
		b.Fatalf("%s: %d sandboxes, want %d", sandbox, len(cgs), n)
	}
	// Let the last starts settle, then measure.
	time.Sleep(5 * time.Second)
	var pss []int64
	var procs int
	kinds := map[string]int64{} // PSS by kind of process, kB
	for _, cg := range cgs {
		// cgroup.procs of the pids hierarchy lists the same processes.
		data, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		if err != nil {
			b.Fatal(err)
		}
		var sum int64
		var counted []int // one process per address space
		inCgroup := map[int]bool{}
		for f := range strings.FieldsSeq(string(data)) {
			pid, _ := strconv.Atoi(f)
			inCgroup[pid] = true
		}
		for f := range strings.FieldsSeq(string(data)) {
			pid, _ := strconv.Atoi(f)
			procs++
			if slices.ContainsFunc(counted, func(q int) bool { return sameMM(pid, q) }) {
				continue
			}
			counted = append(counted, pid)
			p := pssKB(pid)
			sum += p
			kinds[processKind(pid, inCgroup)] += p
		}
		pss = append(pss, sum)
	}
	var total int64
	for _, p := range pss {
		total += p
	}
	const window = 10 * time.Second
	sb0, srv0 := sandboxCPU(b, cgs...), processCPU(b, bb.srv.cmd.Process.Pid)
	time.Sleep(window)
	sbCPU, srvCPU := sandboxCPU(b, cgs...)-sb0, processCPU(b, bb.srv.cmd.Process.Pid)-srv0
	perMB := float64(total) / float64(n) / 1024
	sbPct := 100 * sbCPU.Seconds() / window.Seconds()
	srvPct := 100 * srvCPU.Seconds() / window.Seconds()
	b.ReportMetric(perMB, "pss-MB/sandbox")
	b.ReportMetric(float64(pssMax(pss))/1024, "pss-max-MB")
	b.ReportMetric(sbPct, "sandboxes-cpu-%")
	b.ReportMetric(srvPct, "server-cpu-%")
	b.ReportMetric(created.Seconds(), "create-all-s")
	var byKind []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		mb := float64(kinds[k]) / float64(n) / 1024
		b.ReportMetric(mb, "pss-"+k+"-MB/sandbox")
		byKind = append(byKind, fmt.Sprintf("%s %.2f MB", k, mb))
	}
	b.Logf("%s: PSS per sandbox by process: %s", sandbox, strings.Join(byKind, ", "))
	b.Logf("%s: %d idle sandboxes (%d host processes) made in %.1f s: PSS %.2f MB per sandbox (max %.2f MB, total %.0f MB); "+
		"idle CPU over %v: sandboxes %.2f%% of one CPU (%.4f%% each), server %.2f%%",
		sandbox, n, procs, created.Seconds(), perMB, float64(pssMax(pss))/1024, float64(total)/1024,
		window, sbPct, sbPct/float64(n), srvPct)
	if v := os.Getenv(envIdleHold); v != "" {
		secs, _ := strconv.Atoi(v)
		b.Logf("holding the sandboxes for %d s (%s): cgroups %s", secs, envIdleHold, filepath.Dir(cgs[0]))
		time.Sleep(time.Duration(secs) * time.Second)
	}
}

// processKind names a process of a sandbox's cgroup (whose processes are
// inCgroup) by its argv[0]: runsc's gofer, runsc's sandbox (the sentry)
// and the systrap stubs, which are clones of the sentry without an exec
// (same argv) whose parent is the sentry or another stub; a process
// sandbox's agent and runtime.
func processKind(pid int, inCgroup map[int]bool) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "gone"
	}
	arg0, _, _ := bytes.Cut(b, []byte{0})
	if len(arg0) == 0 {
		return "stub" // systrap's stubs clear their command line
	}
	switch name := filepath.Base(string(arg0)); name {
	case "runsc-gofer", "kindling-agent", "kindling":
		return name
	case "runsc-sandbox":
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return "gone"
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
		if ppid, _ := strconv.Atoi(f[1]); inCgroup[ppid] {
			return "stub"
		}
		return "sentry"
	default:
		return "runtime"
	}
}

// sameMM reports whether two processes share one address space (kcmp
// KCMP_VM): systrap's sysmsg threads are processes made with CLONE_VM, and
// PSS is per address space, so summing theirs would count it again.
func sameMM(a, b int) bool {
	const kcmpVM = 1
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpVM, 0, 0, 0)
	return errno == 0 && r == 0
}

// pssKB is the Pss of /proc/PID/smaps_rollup in kB (0 if the process is
// gone).
func pssKB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func pssMax(v []int64) int64 {
	var m int64
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
