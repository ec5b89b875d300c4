package agent

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
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
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}
