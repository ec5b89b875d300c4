// Command snapstart is an aws-lambda-go function for SnapStart tests and
// benchmarks. Its init sleeps INIT_SLEEP_MS, then fills INIT_FILL_MB MiB of
// memory with pseudo-random bytes and keeps them. When it runs as a
// SnapStart snapshot (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) it drives
// the Runtime API's restore hooks as AWS documents them for custom
// runtimes: its before-snapshot hook, then GET /runtime/restore/next
// (the snapshot is taken while that call blocks; it returns in each
// restored environment), then its after-restore hook (reported with POST
// /runtime/restore/error when it fails), then lambda.Start. HOOK_FAIL=before
// or after makes that hook fail.
//
// Each invocation answers with what it can tell about its life: the events
// seen in order, the init nonce (the same in every clone of one snapshot),
// fresh bytes from getrandom and /dev/urandom (different in every clone),
// and a checksum of the first TOUCH_KB KiB (default 1024) of the memory
// filled at init, the working set (equal to the one computed at init).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"golang.org/x/sys/unix"
)

var (
	mu          sync.Mutex
	events      []string
	initNonce   string
	initSum     string
	filled      []byte
	restoreRand string
)

func record(ev string) {
	mu.Lock()
	events = append(events, ev)
	mu.Unlock()
	fmt.Println("snapstart: " + ev)
}

func getrandom(n int) string {
	b := make([]byte, n)
	if _, err := unix.Getrandom(b, 0); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func urandom(n int) string {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func touchSum() string {
	n := envInt("TOUCH_KB", 1024) << 10
	if n > len(filled) {
		n = len(filled)
	}
	s := sha256.Sum256(filled[:n])
	return hex.EncodeToString(s[:8])
}

func initialise() {
	record("init")
	time.Sleep(time.Duration(envInt("INIT_SLEEP_MS", 0)) * time.Millisecond)
	initNonce = getrandom(16)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	src := rand.NewChaCha8(seed)
	filled = make([]byte, envInt("INIT_FILL_MB", 0)<<20)
	for i := 0; i+8 <= len(filled); i += 8 {
		binary.LittleEndian.PutUint64(filled[i:], src.Uint64())
	}
	initSum = touchSum()
}

var api = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

func snapshotHooks() {
	record("before-snapshot")
	if os.Getenv("HOOK_FAIL") == "before" {
		post("/init/error", "Runtime.BeforeCheckpointError", `{"errorMessage":"before-snapshot hook failed","errorType":"Runtime.BeforeCheckpointError"}`)
		os.Exit(1)
	}
	resp, err := http.Get(api + "/restore/next")
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapstart: restore/next:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "snapstart: restore/next:", resp.Status)
		os.Exit(1)
	}
	record("after-restore")
	restoreRand = getrandom(16)
	if os.Getenv("HOOK_FAIL") == "after" {
		post("/restore/error", "Runtime.AfterRestoreError", `{"errorMessage":"after-restore hook failed","errorType":"Runtime.AfterRestoreError"}`)
		select {} // Lambda ends the environment
	}
}

func post(path, errType, body string) {
	req, _ := http.NewRequest(http.MethodPost, api+path, strings.NewReader(body))
	req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

type answer struct {
	Events      []string `json:"events"`
	InitType    string   `json:"initType"`
	InitNonce   string   `json:"initNonce"`
	InitSum     string   `json:"initSum"`
	Sum         string   `json:"sum"`
	RestoreRand string   `json:"restoreRand,omitempty"`
	Getrandom   string   `json:"getrandom"`
	Urandom     string   `json:"urandom"`
	FilledMB    int      `json:"filledMB"`
}

type event struct {
	// SleepMS keeps the environment busy that long, so that invokes sent
	// at once get environments of their own.
	SleepMS int `json:"sleep_ms"`
}

func handle(ctx context.Context, ev event) (answer, error) {
	time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
	record("invoke")
	mu.Lock()
	evs := append([]string(nil), events...)
	mu.Unlock()
	return answer{
		Events: evs, InitType: os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE"),
		InitNonce: initNonce, InitSum: initSum, Sum: touchSum(), RestoreRand: restoreRand,
		Getrandom: getrandom(16), Urandom: urandom(16), FilledMB: len(filled) >> 20,
	}, nil
}

func main() {
	initialise()
	if os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start" {
		snapshotHooks()
	}
	lambda.Start(handle)
}
