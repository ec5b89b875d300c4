package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

const helperInitErrorDoc = `{"errorMessage":"helper cannot start","errorType":"Runtime.HelperInitFailed","stackTrace":[]}`

// helperRuntime is a raw Runtime API client run by the test binary when the
// agent starts it (TestMain, helperEnv). It returns the exit code.
func helperRuntime(mode string) int {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	switch mode {
	case "initerror":
		fmt.Println("helper: init failing")
		req, err := http.NewRequest("POST", "http://"+api+"/2018-06-01/runtime/init/error", strings.NewReader(helperInitErrorDoc))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.HelperInitFailed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			fmt.Fprintf(os.Stderr, "init/error: %d %s %v\n", resp.StatusCode, body, err)
			return 2
		}
		return 1
	case "orphan":
		// A grandchild that outlives us: it exits when its stdin, a pipe
		// whose write end only we hold, closes with our exit.
		r, w, err := os.Pipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cmd := exec.Command("/bin/sh", "-c", "read x; exit 0")
		cmd.Stdin = r
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("grandchild %d\n", cmd.Process.Pid)
		runtime.KeepAlive(w)
		return 0
	case "restorenext":
		// Outside snapshot mode: report what restore/next answers.
		code, typ, err := call(api, "GET", "restore/next", nil, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("restore/next: %d %s\n", code, typ)
		return 0
	case "snaphooks", "snaprestoreerror":
		return helperSnapHooks(api, mode)
	case "snapnext":
		fmt.Println("init: no hooks")
		time.Sleep(100 * time.Millisecond)
		return helperLoop(api)
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

// Environment of the snapshot helpers.
const (
	// helperDirEnv is a directory through which the test and the helper
	// signal each other with files.
	helperDirEnv = "KINDLING_HELPER_DIR"
	// helperErrTypeEnv is the error type snaprestoreerror posts, none if
	// empty.
	helperErrTypeEnv = "KINDLING_HELPER_ERROR_TYPE"
	// helperRestoreErrorDoc is the document snaprestoreerror posts.
	helperRestoreErrorDoc = `{"errorMessage":"after restore hook failed","errorType":"HookError"}`
)

// helperSnapHooks is a runtime with SnapStart hooks: it calls restore/next
// at the end of init. Once the test creates "go" in helperDirEnv (after
// Checkpoint), it calls restore/next a second time, prints the answer and
// creates "written". After restore/next returns it serves invocations, or
// in snaprestoreerror mode posts restore/error.
func helperSnapHooks(api, mode string) int {
	fmt.Println("init: snap starting")
	dir := os.Getenv(helperDirEnv)
	go func() {
		if !waitFile(filepath.Join(dir, "go")) {
			fmt.Fprintln(os.Stderr, "no go file")
			os.Exit(2)
		}
		code, typ, err := call(api, "GET", "restore/next", nil, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("second restore/next: %d %s\n", code, typ)
		if err := os.WriteFile(filepath.Join(dir, "written"), nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}()
	code, typ, err := call(api, "GET", "restore/next", nil, "")
	if err != nil || code != http.StatusOK {
		fmt.Fprintf(os.Stderr, "restore/next: %d %s %v\n", code, typ, err)
		return 2
	}
	fmt.Println("after restore")
	if mode == "snaprestoreerror" {
		hdr := map[string]string{}
		if t := os.Getenv(helperErrTypeEnv); t != "" {
			hdr["Lambda-Runtime-Function-Error-Type"] = t
		}
		code, typ, err := call(api, "POST", "restore/error", hdr, helperRestoreErrorDoc)
		if err != nil || code != http.StatusAccepted {
			fmt.Fprintf(os.Stderr, "restore/error: %d %s %v\n", code, typ, err)
			return 2
		}
		// A second one is refused.
		code, typ, err = call(api, "POST", "restore/error", hdr, helperRestoreErrorDoc)
		fmt.Printf("second restore/error: %d %s %v\n", code, typ, err)
		return 1
	}
	return helperLoop(api)
}

// helperLoop echoes every event as its response.
func helperLoop(api string) int {
	for {
		resp, err := http.Get("http://" + api + "/2018-06-01/runtime/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		if err != nil || resp.StatusCode != http.StatusOK || id == "" {
			fmt.Fprintf(os.Stderr, "next: %d %s %v\n", resp.StatusCode, body, err)
			return 2
		}
		fmt.Println("handling " + id)
		if code, typ, err := call(api, "POST", "invocation/"+id+"/response", nil, string(body)); err != nil || code != http.StatusAccepted {
			fmt.Fprintf(os.Stderr, "response: %d %s %v\n", code, typ, err)
			return 2
		}
	}
}

// call makes a Runtime API request (path under /2018-06-01/runtime/) and
// returns the status and the errorType of the answer's document, if any.
func call(api, method, path string, hdr map[string]string, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+api+"/2018-06-01/runtime/"+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var doc struct {
		ErrorType string `json:"errorType"`
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &doc); err != nil {
			return resp.StatusCode, "", fmt.Errorf("answer %q: %w", b, err)
		}
	}
	return resp.StatusCode, doc.ErrorType, nil
}

// waitFile waits for path to exist.
func waitFile(path string) bool {
	for deadline := time.Now().Add(waitFor); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
	}
	return false
}
