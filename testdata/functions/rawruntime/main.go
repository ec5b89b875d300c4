// Command rawruntime is a custom runtime written against the Lambda Runtime
// API with net/http alone (no aws-lambda-go), to exercise the parts of the
// API that aws-lambda-go does not: the raw /next headers, chunked response
// bodies, error trailers and requests for unknown invocations. The event is
// {"mode": NAME}; see serve.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var api = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

func main() {
	for {
		if err := serveOne(); err != nil {
			fmt.Fprintln(os.Stderr, "rawruntime:", err)
			os.Exit(1)
		}
	}
}

func serveOne() error {
	resp, err := http.Get(api + "/invocation/next")
	if err != nil {
		return err
	}
	event, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("/next: %s", resp.Status)
	}
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	var ev struct {
		Mode string `json:"mode"`
	}
	json.Unmarshal(event, &ev)
	fmt.Printf("rawruntime: %s mode %q\n", id, ev.Mode)
	base := api + "/invocation/" + id

	switch ev.Mode {
	case "chunked":
		// Three pieces through a pipe: no Content-Length, so the body is
		// sent chunked.
		pr, pw := io.Pipe()
		go func() {
			for _, part := range []string{`{"part":1,`, `"more":"`, `x"}`} {
				pw.Write([]byte(part))
				time.Sleep(20 * time.Millisecond)
			}
			pw.Close()
		}()
		return post(base+"/response", pr, nil, nil)

	case "trailer-error":
		// A chunked response that fails part-way, reported in trailers.
		pr, pw := io.Pipe()
		trailer := http.Header{}
		trailer.Set("Lambda-Runtime-Function-Error-Type", "")
		trailer.Set("Lambda-Runtime-Function-Error-Body", "")
		go func() {
			pw.Write([]byte(`{"partial":`))
			doc := `{"errorMessage":"failed mid-stream","errorType":"Custom.StreamFailure"}`
			trailer.Set("Lambda-Runtime-Function-Error-Type", "Custom.StreamFailure")
			trailer.Set("Lambda-Runtime-Function-Error-Body", base64.StdEncoding.EncodeToString([]byte(doc)))
			pw.Close()
		}()
		return post(base+"/response", pr, nil, trailer)

	case "unknown-id":
		// Answers for an invocation that does not exist are refused.
		st, err := postStatus(api+"/invocation/not-a-request-id/response", strings.NewReader(`{}`), nil)
		if err != nil {
			return err
		}
		st2, err := postStatus(api+"/invocation/not-a-request-id/error", strings.NewReader(`{"errorMessage":"x","errorType":"y"}`), nil)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]int{"responseStatus": st, "errorStatus": st2})
		return post(base+"/response", bytes.NewReader(body), nil, nil)

	case "error-header":
		h := http.Header{}
		h.Set("Lambda-Runtime-Function-Error-Type", "Custom.HeaderType")
		return post(base+"/error", strings.NewReader(`{"errorMessage":"reported with a header","errorType":"Custom.HeaderType"}`), h, nil)

	default: // "headers"
		hs := map[string]string{}
		for k := range resp.Header {
			if strings.HasPrefix(k, "Lambda-Runtime-") {
				hs[k] = resp.Header.Get(k)
			}
		}
		body, _ := json.Marshal(map[string]any{"headers": hs, "event": json.RawMessage(event), "now": time.Now().UnixMilli()})
		return post(base+"/response", bytes.NewReader(body), nil, nil)
	}
}

func postStatus(url string, body io.Reader, h http.Header) (int, error) {
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func post(url string, body io.Reader, h, trailer http.Header) error {
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Trailer = trailer
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
