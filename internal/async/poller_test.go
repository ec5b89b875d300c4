package async

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"kindling/internal/clock"
	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/invoke"
	"kindling/internal/natsembed"
)

const testAccount = "123456789012"

type fakeFunctions struct{ dlq string }

func (f fakeFunctions) Resolve(_ context.Context, account, name, qualifier string) (*config.Function, error) {
	if name == "gone" {
		return nil, fmt.Errorf("%w: Function not found", errdefs.ErrNotFound)
	}
	return &config.Function{Account: account, Name: name, Version: config.LatestVersion, Region: "us-east-1",
		State: config.StateActive, DeadLetterTarget: f.dlq}, nil
}

type fakeConfigs map[string]*config.EventInvokeConfig

func (f fakeConfigs) Get(_ context.Context, account, name, qualifier string) (*config.EventInvokeConfig, error) {
	if c := f[name]; c != nil {
		return c, nil
	}
	return nil, errdefs.ErrNotFound
}

// fakeInvoker fails events whose payload is {"fail":true}, and throttles
// the first `throttle` calls.
type fakeInvoker struct {
	mu       sync.Mutex
	calls    map[string]int
	throttle int
}

func (f *fakeInvoker) Invoke(_ context.Context, req *invoke.Request) (*invoke.Result, error) {
	f.mu.Lock()
	f.calls[req.RequestID]++
	thr := f.throttle > 0
	if thr {
		f.throttle--
	}
	f.mu.Unlock()
	if thr {
		return nil, fmt.Errorf("%w: busy", errdefs.ErrThrottled)
	}
	if string(req.Payload) == `{"fail":true}` {
		return &invoke.Result{Payload: []byte(`{"errorMessage":"boom","errorType":"E"}`), FunctionError: "Unhandled"}, nil
	}
	return &invoke.Result{Payload: req.Payload}, nil
}

type sentMsg struct {
	arn   string
	body  []byte
	attrs []Attribute
}

type fakeQueues struct{ ch chan sentMsg }

func (f fakeQueues) SendToQueue(_ context.Context, arn string, body []byte, attrs []Attribute) error {
	f.ch <- sentMsg{arn, body, attrs}
	return nil
}

func TestPoller(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx := context.Background()
	q, err := OpenQueue(ctx, ns.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	okQ := "arn:aws:sqs:us-east-1:" + testAccount + ":ok"
	failQ := "arn:aws:sqs:us-east-1:" + testAccount + ":fail"
	dlq := "arn:aws:sqs:us-east-1:" + testAccount + ":dlq"
	zero := 0
	configs := fakeConfigs{
		"fn":   {OnSuccess: okQ, OnFailure: failQ},
		"once": {MaximumRetryAttempts: &zero},
	}
	inv := &fakeInvoker{calls: map[string]int{}, throttle: 3}
	sent := make(chan sentMsg, 16)
	p := StartPoller(PollerConfig{
		Queue: q, Invoker: inv, Functions: fakeFunctions{dlq: dlq}, EventConfigs: configs,
		Queues: fakeQueues{sent}, Clock: clock.Scaled(0.001), Region: "us-east-1", Concurrency: 4,
	})
	t.Cleanup(p.Close)
	enqueue := func(id, fn, payload string) {
		if err := q.Enqueue(ctx, &Event{RequestID: id, Account: testAccount, Function: fn, Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() (sentMsg, Record) {
		t.Helper()
		select {
		case m := <-sent:
			var r Record
			json.Unmarshal(m.body, &r)
			return m, r
		case <-time.After(10 * time.Second):
			t.Fatal("nothing delivered within 10 s")
		}
		panic("unreachable")
	}

	enqueue("ok-1", "fn", `{"a":1}`)
	m, r := next()
	if m.arn != okQ || r.RequestContext.Condition != CondSuccess || r.RequestContext.ApproximateInvokeCount != 1 ||
		string(r.ResponsePayload) != `{"a":1}` || r.ResponseContext.StatusCode != 200 {
		t.Errorf("success record to %s: %s", m.arn, m.body)
	}

	enqueue("fail-1", "fn", `{"fail":true}`)
	m, r = next()
	if m.arn != failQ || r.RequestContext.Condition != CondRetriesExhausted || r.RequestContext.ApproximateInvokeCount != 3 ||
		r.ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("failure record to %s: %s", m.arn, m.body)
	}

	enqueue("dlq-1", "once", `{"fail":true}`)
	m, _ = next()
	if m.arn != dlq || string(m.body) != `{"fail":true}` || len(m.attrs) != 3 || m.attrs[0].Value != "dlq-1" ||
		m.attrs[1].Value != "200" || m.attrs[2].Value != "boom" {
		t.Errorf("dead letter to %s: %s %+v", m.arn, m.body, m.attrs)
	}

	enqueue("gone-1", "gone", `{}`)
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Dropped == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling an observable counter, bounded
	}
	st := p.Stats()
	if st.Dropped != 1 || st.OnSuccess != 1 || st.OnFailure != 1 || st.DeadLettered != 1 || st.Retries != 2 {
		t.Errorf("stats %+v", st)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.calls["fail-1"] != 3 || inv.calls["dlq-1"] != 1 {
		t.Errorf("calls %v", inv.calls)
	}
}

func TestEventFormat(t *testing.T) {
	ev := &Event{RequestID: "id", Account: testAccount, Function: "fn", Qualifier: "live", TraceID: "Root=1",
		Payload: []byte(`{}`), Enqueued: time.Unix(5, 6), NotBefore: time.Unix(7, 8), State: State{1, 2, 3}}
	m := ev.encode()
	got, err := DecodeEvent(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestID != "id" || got.Qualifier != "live" || !got.Enqueued.Equal(ev.Enqueued) || !got.NotBefore.Equal(ev.NotBefore) ||
		got.State != ev.State || got.TraceID != "Root=1" || m.Subject != "kindling.async."+testAccount+".fn" {
		t.Errorf("round trip: %+v", got)
	}
	m.Header.Set(hdrFormat, "2")
	if _, err := DecodeEvent(m.Header, m.Data); err == nil {
		t.Error("format version 2 accepted")
	}
	m.Header.Set(hdrFormat, "1")
	m.Header.Set(hdrState, "x")
	if _, err := DecodeEvent(m.Header, m.Data); err == nil {
		t.Error("bad state accepted")
	}
}

func TestParseDestination(t *testing.T) {
	for arn, kind := range map[string]DestinationKind{
		"arn:aws:sqs:us-east-1:123456789012:q":                  DestQueue,
		"arn:aws:lambda:us-east-1:123456789012:function:f":      DestFunction,
		"arn:aws:lambda:us-east-1:123456789012:function:f:live": DestFunction,
		"arn:aws:sns:us-east-1:123456789012:t":                  0,
		"arn:aws:sqs:us-east-1:123:q":                           0,
		"nonsense":                                              0,
	} {
		d, err := ParseDestination(arn)
		if (err == nil) != (kind != 0) || d.Kind != kind {
			t.Errorf("%s: %+v %v", arn, d, err)
		}
	}
}
