// Command echo is an aws-lambda-go function used by the agent's tests. The
// event's "mode" picks a behaviour; "log" is printed to stdout and stderr
// before it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Mode string `json:"mode"`
	Log  string `json:"log"`
	Size int    `json:"size"`
}

type handlerError struct{ msg string }

func (e *handlerError) Error() string { return e.msg }

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	if ev.Log != "" {
		fmt.Println("stdout: " + ev.Log)
		fmt.Fprintln(os.Stderr, "stderr: "+ev.Log)
	}
	switch ev.Mode {
	case "context":
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return map[string]any{
			"requestId":   lc.AwsRequestID,
			"functionArn": lc.InvokedFunctionArn,
			"deadlineMs":  deadline.UnixMilli(),
			"traceId":     ctx.Value("x-amzn-trace-id"),
		}, nil
	case "pid":
		return os.Getpid(), nil
	case "fds":
		// What each open descriptor refers to.
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return nil, err
		}
		fds := map[string]string{}
		for _, e := range ents {
			target, err := os.Readlink("/proc/self/fd/" + e.Name())
			if err == nil {
				fds[e.Name()] = target
			}
		}
		return fds, nil
	case "error":
		return nil, &handlerError{"handler failed"}
	case "panic":
		panic("handler panicked")
	case "exit":
		os.Exit(3)
	case "sigkill":
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			return nil, err
		}
		select {}
	case "biglog":
		line := strings.Repeat("x", 1023) + "\n"
		for range ev.Size / 1024 {
			fmt.Print(line)
		}
		fmt.Println("biglog: last line")
	case "big":
		return strings.Repeat("a", ev.Size), nil
	}
	return raw, nil
}

func main() {
	fmt.Println("init: echo starting")
	lambda.Start(handle)
}
