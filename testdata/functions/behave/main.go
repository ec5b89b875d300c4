// Command behave is a Lambda function (aws-lambda-go, provided.al2023) that
// does what its event asks, so that one deployment package can exercise the
// platform's success, failure, limit and isolation paths. The event is
// {"op": NAME, ...}; see the ops table below.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// event is the union of every op's arguments.
type event struct {
	Op      string   `json:"op"`
	Message string   `json:"message"`
	Code    int      `json:"code"`
	MS      int      `json:"ms"`
	MB      int      `json:"mb"`
	Bytes   int      `json:"bytes"`
	Lines   []string `json:"lines"`
	Path    string   `json:"path"`
	Addr    string   `json:"addr"`
}

// behaveError is the error type returned by the "error" op; aws-lambda-go
// reports its type name as errorType.
type behaveError struct{ msg string }

func (e *behaveError) Error() string { return e.msg }

var (
	// invokes counts the invocations served by this process (warm reuse).
	invokes int
	// processID is random per process, unlike pids, which can repeat
	// across pid namespaces.
	processID = randomID()
)

func randomID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	invokes++
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, &behaveError{"bad event: " + err.Error()}
	}
	switch ev.Op {
	case "echo":
		return raw, nil
	case "noop":
		return map[string]any{"ok": true, "eventBytes": len(raw)}, nil
	case "error":
		return nil, &behaveError{ev.Message}
	case "panic":
		panic("behave: deliberate panic")
	case "exit":
		fmt.Printf("behave: exiting with status %d\n", ev.Code)
		os.Exit(ev.Code)
	case "sleep":
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]any{"slept": ev.MS, "id": processID, "pid": os.Getpid()}, nil
	case "alloc":
		return alloc(ev.MB), nil
	case "big":
		return bigResponse(ev.Bytes), nil
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		return map[string]any{"env": env, "id": processID}, nil
	case "log":
		for _, l := range ev.Lines {
			fmt.Println(l)
		}
		return map[string]any{"logged": len(ev.Lines)}, nil
	case "tmp":
		return fillTmp(ev.MB), nil
	case "whoami":
		return whoami(), nil
	case "read":
		data, err := os.ReadFile(ev.Path)
		return map[string]any{"data": string(data), "error": errString(err)}, nil
	case "connect":
		conn, err := net.DialTimeout("tcp", ev.Addr, time.Second)
		if conn != nil {
			conn.Close()
		}
		return map[string]any{"connected": err == nil, "error": errString(err)}, nil
	case "context":
		return contextInfo(ctx), nil
	case "forkbomb":
		return forkbomb(ctx), nil
	case "counter":
		return map[string]any{"count": invokes, "id": processID, "pid": os.Getpid()}, nil
	}
	return nil, &behaveError{fmt.Sprintf("unknown op %q", ev.Op)}
}

// alloc allocates mb MiB and touches every page so that it is resident.
func alloc(mb int) map[string]any {
	chunks := make([][]byte, 0, mb)
	for i := 0; i < mb; i++ {
		c := make([]byte, 1<<20)
		for j := 0; j < len(c); j += 4096 {
			c[j] = byte(j)
		}
		chunks = append(chunks, c)
	}
	return map[string]any{"allocatedMB": len(chunks)}
}

// bigResponse is a JSON string whose encoding is exactly n bytes (n >= 2).
func bigResponse(n int) json.RawMessage {
	if n < 2 {
		n = 2
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	b[0], b[n-1] = '"', '"'
	return json.RawMessage(b)
}

// fillTmp writes mb MiB to a file in /tmp and reports how far it got.
func fillTmp(mb int) map[string]any {
	path := filepath.Join(os.TempDir(), "behave-fill")
	f, err := os.Create(path)
	if err != nil {
		return map[string]any{"written": 0, "error": err.Error()}
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	var written int64
	for i := 0; i < mb; i++ {
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			return map[string]any{"written": written, "error": err.Error()}
		}
	}
	if err := f.Sync(); err != nil {
		return map[string]any{"written": written, "error": err.Error()}
	}
	return map[string]any{"written": written, "error": ""}
}

type procInfo struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// noNewPrivs is the no_new_privs bit as /proc/self/status shows it, or as
// prctl(PR_GET_NO_NEW_PRIVS) returns it where the status file has no such
// line (gVisor's).
func noNewPrivs(status map[string]string) string {
	if v, ok := status["NoNewPrivs"]; ok {
		return v
	}
	const prGetNoNewPrivs = 39
	r, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetNoNewPrivs, 0, 0)
	if errno != 0 {
		return "error: " + errno.Error()
	}
	return strconv.Itoa(int(r))
}

func whoami() map[string]any {
	host, herr := os.Hostname()
	status := map[string]string{}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				status[k] = strings.TrimSpace(v)
			}
		}
	}
	ns := map[string]string{}
	for _, n := range []string{"pid", "mnt", "net", "ipc", "uts", "user", "cgroup"} {
		if l, err := os.Readlink("/proc/self/ns/" + n); err == nil {
			ns[n] = l
		}
	}
	var ifaces []string
	if list, err := net.Interfaces(); err == nil {
		for _, i := range list {
			ifaces = append(ifaces, i.Name)
		}
	}
	rootErr := os.WriteFile("/etc/.behave-write-probe", []byte("x"), 0o644)
	if rootErr == nil {
		os.Remove("/etc/.behave-write-probe")
	}
	var procs []procInfo
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		procs = append(procs, procInfo{pid, strings.TrimSpace(string(comm))})
	}
	probe := "/var/task/.behave-write-probe"
	werr := os.WriteFile(probe, []byte("x"), 0o644)
	if werr == nil {
		os.Remove(probe)
	}
	return map[string]any{
		"uid":            os.Getuid(),
		"gid":            os.Getgid(),
		"euid":           os.Geteuid(),
		"hostname":       host,
		"hostnameError":  errString(herr),
		"pid":            os.Getpid(),
		"capEff":         status["CapEff"],
		"seccomp":        status["Seccomp"],
		"noNewPrivs":     noNewPrivs(status),
		"namespaces":     ns,
		"interfaces":     ifaces,
		"rootWritable":   rootErr == nil,
		"procs":          procs,
		"taskWritable":   werr == nil,
		"taskWriteError": errString(werr),
		"id":             processID,
	}
}

func contextInfo(ctx context.Context) map[string]any {
	out := map[string]any{}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		out["awsRequestId"] = lc.AwsRequestID
		out["invokedFunctionArn"] = lc.InvokedFunctionArn
		out["clientContextCustom"] = lc.ClientContext.Custom
	}
	if v, ok := ctx.Value("x-amzn-trace-id").(string); ok {
		out["traceId"] = v
	}
	if dl, ok := ctx.Deadline(); ok {
		out["deadlineRemainingMs"] = time.Until(dl).Milliseconds()
	}
	out["functionName"] = lambdacontext.FunctionName
	out["functionVersion"] = lambdacontext.FunctionVersion
	out["memoryLimitInMB"] = lambdacontext.MemoryLimitInMB
	out["logGroupName"] = lambdacontext.LogGroupName
	out["logStreamName"] = lambdacontext.LogStreamName
	vars := map[string]string{}
	for _, k := range []string{
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME",
		"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION",
		"AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
		"_HANDLER", "TZ", "_X_AMZN_TRACE_ID",
	} {
		vars[k] = os.Getenv(k)
	}
	out["env"] = vars
	return out
}

// forkbomb starts sleeping shells until the platform refuses another
// process, then kills them all and reports how far it got.
func forkbomb(ctx context.Context) map[string]any {
	var cmds []*exec.Cmd
	var ferr error
	deadline := time.Now().Add(20 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl.Add(-2 * time.Second)
	}
	for len(cmds) < 100000 && time.Now().Before(deadline) {
		c := exec.Command("/bin/sh", "-c", "sleep 60")
		if err := c.Start(); err != nil {
			ferr = err
			break
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		c.Process.Kill()
	}
	for _, c := range cmds {
		c.Wait()
	}
	return map[string]any{"spawned": len(cmds), "error": errString(ferr)}
}

func main() {
	lambda.Start(handle)
}
