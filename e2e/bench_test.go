package e2e

// The invoke-path benchmarks of docs/benchmarks.md. They run against the
// server TestMain starts (the kindling binary, as `make run` starts it, on
// a fresh data directory), through the unmodified AWS SDK for Go v2, on the
// aws-lambda-go echo function at MemorySize 1769 with a ~100-byte payload.
// Each reports medians and a baseline measured in the same run:
//
//	go test ./e2e -run '^$' -bench . -benchtime 1x
//
// Figures are reported with b.ReportMetric (microseconds, invokes/s,
// ratios); nothing here asserts a time.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// benchPayload is the ~100-byte event of every benchmark.
var benchPayload = []byte(`{"id":"0123456789","message":"the quick brown fox jumps over the lazy dog","n":42,"ok":true}`)

// benchClient is a Lambda client with a connection pool large enough for
// the concurrent benchmarks (the SDK's default keeps 10 idle connections).
func benchClient() *lambda.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	return lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.url),
		Credentials:      credentials.NewStaticCredentialsProvider(srv.creds.AccessKeyID, srv.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: tr},
	})
}

func benchFunction(b *testing.B, c *lambda.Client, name string) {
	b.Helper()
	in := createInput(name, fnSpec{code: "echo", memory: 1769, timeout: 30})
	if _, err := c.CreateFunction(context.Background(), in); err != nil {
		b.Fatalf("CreateFunction: %s", describe(err))
	}
	b.Cleanup(func() {
		c.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	})
	w := lambda.NewFunctionActiveV2Waiter(c)
	if err := w.Wait(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		b.Fatal(err)
	}
}

func invokeOnce(b *testing.B, c *lambda.Client, name string, tail bool) *lambda.InvokeOutput {
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: benchPayload}
	if tail {
		in.LogType = types.LogTypeTail
	}
	out, err := c.Invoke(context.Background(), in)
	if err != nil {
		b.Fatalf("Invoke: %s", describe(err))
	}
	if out.FunctionError != nil || !bytes.Equal(out.Payload, benchPayload) {
		b.Fatalf("Invoke answered %v %q", out.FunctionError, out.Payload)
	}
	return out
}

// echoServer is the baseline: a plain net/http server on loopback that
// returns the request body.
func echoServer(b *testing.B) (url string, client *http.Client) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return "http://" + ln.Addr().String() + "/", &http.Client{Transport: tr}
}

func echoOnce(b *testing.B, c *http.Client, url string) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(benchPayload))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, benchPayload) {
		b.Fatalf("echo answered %q", body)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// sdkEchoClient is a Lambda client like benchClient whose endpoint is a
// loopback echo that answers every request with its body, as Invoke's
// answer: the same SDK call (serialise, sign, HTTP, deserialise) with
// nothing behind it, the second baseline.
func sdkEchoClient(b *testing.B) *lambda.Client {
	url, _ := echoServer(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	return lambda.New(lambda.Options{
		Region:           region,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(srv.creds.AccessKeyID, srv.creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: tr},
	})
}

// BenchmarkWarmInvoke measures sequential warm invokes through the whole
// path (SDK, SigV4, frontend, assignment, worker, agent, runtime) against
// two baselines, interleaved in rounds so all see the same machine: a
// plain loopback HTTP echo round trip (net/http client), and the same SDK
// Invoke call answered by a loopback echo (what the client side costs).
func BenchmarkWarmInvoke(b *testing.B) {
	requireBenchServer(b)
	c := benchClient()
	name := "bench-warm-" + runID
	benchFunction(b, c, name)
	url, hc := echoServer(b)
	sc := sdkEchoClient(b)
	// The AWS Runtime Interface Emulator running the same function
	// directly, when KINDLING_BENCH_RIE names it: the SDK's Invoke against
	// it (its endpoint has Invoke's path, function "function").
	var rie *lambda.Client
	if p := os.Getenv(envRIE); p != "" {
		rieURL := startRIE(b, p)
		rie = lambda.New(lambda.Options{
			Region:           region,
			BaseEndpoint:     aws.String(strings.TrimSuffix(rieURL, "/2015-03-31/functions/function/invocations")),
			Credentials:      credentials.NewStaticCredentialsProvider(srv.creds.AccessKeyID, srv.creds.SecretAccessKey, ""),
			RetryMaxAttempts: 1,
		})
	}
	for range 200 { // warm up every path and the environment
		invokeOnce(b, c, name, false)
		invokeOnce(b, sc, name, false)
		echoOnce(b, hc, url)
		if rie != nil {
			invokeOnce(b, rie, "function", false)
		}
	}
	const rounds, perRound = 20, 250
	var inv, echo, sdkEcho, rieSDK []time.Duration
	b.ResetTimer()
	for range b.N {
		for range rounds {
			for range perRound {
				t := time.Now()
				echoOnce(b, hc, url)
				echo = append(echo, time.Since(t))
			}
			for range perRound {
				t := time.Now()
				invokeOnce(b, sc, name, false)
				sdkEcho = append(sdkEcho, time.Since(t))
			}
			for range perRound {
				t := time.Now()
				invokeOnce(b, c, name, false)
				inv = append(inv, time.Since(t))
			}
			for range perRound / 5 {
				if rie == nil {
					break
				}
				t := time.Now()
				invokeOnce(b, rie, "function", false)
				rieSDK = append(rieSDK, time.Since(t))
			}
		}
	}
	b.StopTimer()
	ip50, ip99 := percentile(inv, .5), percentile(inv, .99)
	ep50, ep99 := percentile(echo, .5), percentile(echo, .99)
	sp50 := percentile(sdkEcho, .5)
	b.ReportMetric(us(ip50), "invoke-p50-us")
	b.ReportMetric(us(ip99), "invoke-p99-us")
	b.ReportMetric(us(ep50), "echo-p50-us")
	b.ReportMetric(us(ep99), "echo-p99-us")
	b.ReportMetric(us(sp50), "sdk-echo-p50-us")
	b.ReportMetric(float64(ip50)/float64(ep50), "p50-ratio")
	b.ReportMetric(float64(ip50)/float64(sp50), "p50-ratio-vs-sdk-echo")
	b.Logf("warm invoke p50 %.0f us p99 %.0f us; loopback echo p50 %.0f us p99 %.0f us; ratio %.2fx; "+
		"the SDK's Invoke against a loopback echo p50 %.0f us, ratio %.2fx (%d samples each)",
		us(ip50), us(ip99), us(ep50), us(ep99), float64(ip50)/float64(ep50), us(sp50), float64(ip50)/float64(sp50), len(inv))
	if len(rieSDK) > 0 {
		r := percentile(rieSDK, .5)
		b.ReportMetric(us(r), "rie-sdk-p50-us")
		b.Logf("the SDK's Invoke against aws-lambda-rie running the echo function: p50 %.0f us = %.2fx the loopback echo, %.2fx the SDK's echo; Kindling is %.2fx it",
			us(r), float64(r)/float64(ep50), float64(r)/float64(sp50), float64(ip50)/float64(r))
	}
}

// BenchmarkWarmThroughput measures warm invokes per second with 8
// concurrent clients, each on its own environment after a warm-up.
func BenchmarkWarmThroughput(b *testing.B) {
	requireBenchServer(b)
	const clients = 8
	c := benchClient()
	name := "bench-tput-" + runID
	benchFunction(b, c, name)
	run := func(d time.Duration) (n int64) {
		var wg sync.WaitGroup
		var count atomic.Int64
		stop := time.Now().Add(d)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					invokeOnce(b, c, name, false)
					count.Add(1)
				}
			}()
		}
		wg.Wait()
		return count.Load()
	}
	run(2 * time.Second) // creates the environments and warms them
	b.ResetTimer()
	const window = 10 * time.Second
	var total int64
	for range b.N {
		total += run(window)
	}
	b.StopTimer()
	rate := float64(total) / (window.Seconds() * float64(b.N))
	b.ReportMetric(rate, "invokes/s")
	b.Logf("%d clients: %.0f warm invokes/s", clients, rate)
}

// BenchmarkColdStart measures invokes that find no environment: before
// each, a configuration update retires the function's environments (and
// nothing is pre-created), so the invoke creates a sandbox, starts the
// runtime and waits for its first /next. The figure of interest is the
// latency beyond the function's own init (its Init Duration), compared with
// a warm invoke of the same function.
func BenchmarkColdStart(b *testing.B) {
	requireBenchServer(b)
	c := benchClient()
	name := "bench-cold-" + runID
	benchFunction(b, c, name)
	const samples = 40
	var cold, beyond, inits, warm []time.Duration
	b.ResetTimer()
	for range b.N {
		for i := range samples {
			b.StopTimer()
			env := map[string]string{"E2E_RUN_ID": runID, "E2E_FN": name + "-" + runID, "SAMPLE": strconv.Itoa(i)}
			if _, err := c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(name), Environment: &types.Environment{Variables: env},
			}); err != nil {
				b.Fatal(describe(err))
			}
			b.StartTimer()
			t := time.Now()
			out := invokeOnce(b, c, name, true)
			d := time.Since(t)
			logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			if err != nil {
				b.Fatal(err)
			}
			init, ok := initDuration(string(logs))
			if !ok {
				b.Fatalf("invoke after an update was not cold:\n%s", logs)
			}
			cold = append(cold, d)
			inits = append(inits, init)
			beyond = append(beyond, d-init)
			t = time.Now()
			invokeOnce(b, c, name, true)
			warm = append(warm, time.Since(t))
		}
	}
	b.StopTimer()
	b.ReportMetric(us(percentile(cold, .5)), "cold-p50-us")
	b.ReportMetric(us(percentile(beyond, .5)), "cold-beyond-init-p50-us")
	b.ReportMetric(us(percentile(inits, .5)), "init-p50-us")
	b.ReportMetric(us(percentile(warm, .5)), "warm-p50-us")
	b.Logf("cold invoke p50 %.2f ms (p99 %.2f), beyond init p50 %.2f ms, function init p50 %.2f ms, warm p50 %.2f ms (%d samples)",
		us(percentile(cold, .5))/1000, us(percentile(cold, .99))/1000, us(percentile(beyond, .5))/1000,
		us(percentile(inits, .5))/1000, us(percentile(warm, .5))/1000, len(cold))
}

// initDuration reads "Init Duration: X ms" from a REPORT line.
func initDuration(logs string) (time.Duration, bool) {
	const key = "Init Duration: "
	i := bytes.Index([]byte(logs), []byte(key))
	if i < 0 {
		return 0, false
	}
	var ms float64
	if _, err := fmt.Sscanf(logs[i+len(key):], "%f ms", &ms); err != nil {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

func requireBenchServer(b *testing.B) {
	b.Helper()
	if skipReason != "" {
		b.Skip(skipReason)
	}
	if srv == nil {
		b.Fatal("no server (TestMain failed to start it)")
	}
}
