package frontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/config"
	"kindling/internal/invoke"
)

// fakeSnapStarter records what the frontend asks of a SnapStarter.
type fakeSnapStarter struct {
	mu        sync.Mutex // guards all
	available bool
	prepared  []*config.Function
	forgot    []string // "account/name/version"
	forgetErr error
}

func (s *fakeSnapStarter) Available() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available
}

func (s *fakeSnapStarter) Prepare(v *config.Function) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prepared = append(s.prepared, v)
}

func (s *fakeSnapStarter) Forget(_ context.Context, account, name, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgot = append(s.forgot, account+"/"+name+"/"+version)
	return s.forgetErr
}

func (s *fakeSnapStarter) preparedVersions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, v := range s.prepared {
		out = append(out, v.Name+":"+v.Version)
	}
	return out
}

func (s *fakeSnapStarter) forgotten() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forgot...)
}

// lockedBuffer is a log sink safe for the handlers' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// snapEnv is newEnv with a fake SnapStarter (nil: none configured) and a
// captured log.
func snapEnv(t *testing.T, ss *fakeSnapStarter) (*env, *lockedBuffer) {
	t.Helper()
	e := newEnv(t)
	if ss != nil {
		e.fe.cfg.SnapStart = ss
	}
	logs := &lockedBuffer{}
	e.fe.log = slog.New(slog.NewTextHandler(logs, nil))
	return e, logs
}

func snapStart(applyOn types.SnapStartApplyOn) *types.SnapStart {
	return &types.SnapStart{ApplyOn: applyOn}
}

// wantSnapStart fails t unless c reports the SnapStart setting given.
func wantSnapStart(t *testing.T, what string, c *types.FunctionConfiguration, applyOn types.SnapStartApplyOn, status types.SnapStartOptimizationStatus) {
	t.Helper()
	if c == nil || c.SnapStart == nil {
		t.Errorf("%s: no SnapStart", what)
		return
	}
	if c.SnapStart.ApplyOn != applyOn || c.SnapStart.OptimizationStatus != status {
		t.Errorf("%s: SnapStart %s/%s, want %s/%s", what, c.SnapStart.ApplyOn, c.SnapStart.OptimizationStatus, applyOn, status)
	}
}

func TestSnapStartValidation(t *testing.T) {
	e, _ := snapEnv(t, nil)
	c := e.lambda()
	ctx := context.Background()
	want := func(v string) string {
		return "1 validation error detected: Value '" + v + "' at 'snapStart.applyOn' failed to satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]"
	}

	in := createInput(t, "bad")
	in.SnapStart = snapStart("Always")
	_, err := c.CreateFunction(ctx, in)
	wantErr(t, "create Always", err, 400, "ValidationException", want("Always"))
	if code, msg, _ := apiError(t, err); code != "ValidationException" || msg != want("Always") {
		t.Errorf("create Always: %s %q", code, msg)
	}

	in = createInput(t, "ss")
	in.SnapStart = snapStart(types.SnapStartApplyOnPublishedVersions)
	created, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "create", &types.FunctionConfiguration{SnapStart: created.SnapStart}, "PublishedVersions", "Off")

	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("ss")})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "GetFunction $LATEST", got.Configuration, "PublishedVersions", "Off")

	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("ss"), SnapStart: snapStart("publishedversions"),
	})
	if code, msg, status := apiError(t, err); code != "ValidationException" || status != 400 || msg != want("publishedversions") {
		t.Errorf("update lower case: %s %d %q", code, status, msg)
	}
	// Together with another model violation: both reported.
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("ss"), SnapStart: snapStart("X"), Timeout: aws.Int32(0),
	})
	if _, msg, _ := apiError(t, err); !strings.HasPrefix(msg, "2 validation errors detected: ") ||
		!strings.Contains(msg, "Value 'X' at 'snapStart.applyOn' failed to satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]") {
		t.Errorf("two violations: %q", msg)
	}

	// Publish 1, then change only SnapStart: a configuration change, so
	// the next publish makes version 2.
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ss")}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("ss")})
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("ss"), SnapStart: snapStart(types.SnapStartApplyOnNone),
	})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "update None", &types.FunctionConfiguration{SnapStart: upd.SnapStart}, "None", "Off")
	if aws.ToString(upd.RevisionId) == aws.ToString(before.RevisionId) {
		t.Error("SnapStart update kept the RevisionId")
	}
	stored, err := e.functions.Get(ctx, testAccount, "ss")
	if err != nil || stored.SnapStartApplyOn != "" {
		t.Errorf("stored ApplyOn %q (want \"\" for None): %v", stored.SnapStartApplyOn, err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ss")})
	if err != nil || aws.ToString(v2.Version) != "2" {
		t.Fatalf("publish after SnapStart-only update: %v %v", v2, err)
	}
	wantSnapStart(t, "version 2", &types.FunctionConfiguration{SnapStart: v2.SnapStart}, "None", "Off")
	// Version 1 kept PublishedVersions.
	g1, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("ss"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "version 1", &types.FunctionConfiguration{SnapStart: g1.SnapStart}, "PublishedVersions", "Off")
	// And back: PublishedVersions is accepted by an update too.
	upd, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("ss"), SnapStart: snapStart(types.SnapStartApplyOnPublishedVersions),
	})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "update PublishedVersions", &types.FunctionConfiguration{SnapStart: upd.SnapStart}, "PublishedVersions", "Off")
}

func TestSnapStartPublishAvailable(t *testing.T) {
	ss := &fakeSnapStarter{available: true}
	e, logs := snapEnv(t, ss)
	c := e.lambda()
	ctx := context.Background()

	in := createInput(t, "snap")
	in.SnapStart = snapStart(types.SnapStartApplyOnPublishedVersions)
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v.Version) != "1" || v.State != types.StatePending || v.StateReasonCode != types.StateReasonCodeCreating ||
		aws.ToString(v.StateReason) != "The function is being created." {
		t.Errorf("published: version %s state %s %s %q", aws.ToString(v.Version), v.State, v.StateReasonCode, aws.ToString(v.StateReason))
	}
	wantSnapStart(t, "published", &types.FunctionConfiguration{SnapStart: v.SnapStart}, "PublishedVersions", "On")
	if got := ss.preparedVersions(); len(got) != 1 || got[0] != "snap:1" {
		t.Fatalf("prepared %v, want [snap:1]", got)
	}
	p := ss.prepared[0]
	if !p.SnapStartOn || p.State != config.StatePending || p.Account != testAccount {
		t.Errorf("prepared version: %+v", p)
	}
	// Unchanged: the same version, not prepared again.
	again, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Errorf("unchanged publish: %v %v", again, err)
	}
	if got := ss.preparedVersions(); len(got) != 1 {
		t.Errorf("prepared again: %v", got)
	}

	// GetFunction: $LATEST Off, version 1 On; ListVersionsByFunction too.
	g, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("snap")})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "GetFunction $LATEST", g.Configuration, "PublishedVersions", "Off")
	g, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("snap"), Qualifier: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	wantSnapStart(t, "GetFunction 1", g.Configuration, "PublishedVersions", "On")
	if g.Configuration.State != types.StatePending {
		t.Errorf("GetFunction 1 state %s", g.Configuration.State)
	}
	lv, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("snap")})
	if err != nil || len(lv.Versions) != 2 {
		t.Fatalf("list versions: %v %v", lv, err)
	}
	wantSnapStart(t, "listed $LATEST", &lv.Versions[0], "PublishedVersions", "Off")
	wantSnapStart(t, "listed 1", &lv.Versions[1], "PublishedVersions", "On")
	lf, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(lf.Functions) != 1 {
		t.Fatalf("list functions: %v %v", lf, err)
	}
	wantSnapStart(t, "ListFunctions", &lf.Functions[0], "PublishedVersions", "Off")

	// Invoking the pending version, directly or through an alias: 409
	// SnapStartNotReadyException; the invoker is not called.
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("snap"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"1", "live"} {
		_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snap"), Qualifier: aws.String(q)})
		var nr *types.SnapStartNotReadyException
		if !errors.As(err, &nr) {
			t.Errorf("invoke %s: %v", q, err)
			continue
		}
		wantErr(t, "invoke "+q, err, 409, "SnapStartNotReadyException",
			"Lambda is initializing your function. It will be ready to invoke once initialization is complete.")
	}
	if n := len(e.invoker.reqs); n != 0 {
		t.Errorf("invoker called %d times for a pending version", n)
	}
	// $LATEST is not SnapStart: it runs.
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snap")}); err != nil {
		t.Errorf("invoke $LATEST: %v", err)
	}

	// The snapshot is made: Active, invocable.
	if _, err := e.functions.UpdateVersion(ctx, testAccount, "snap", "1", func(v *config.Function) error {
		v.Snapshot = "k1"
		return v.Apply(config.Event{Kind: config.EvReady})
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snap"), Qualifier: aws.String("live")})
	if err != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Errorf("invoke after ready: %v %v", out, err)
	}

	// Version 2 fails to snapshot: the ordinary Failed refusal.
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("snap"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("snap")}); err != nil {
		t.Fatal(err)
	}
	if got := ss.preparedVersions(); len(got) != 2 || got[1] != "snap:2" {
		t.Errorf("prepared %v", got)
	}
	if _, err := e.functions.UpdateVersion(ctx, testAccount, "snap", "2", func(v *config.Function) error {
		return v.Apply(config.Event{Kind: config.EvFail, Reason: "snapshot failed"})
	}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("snap"), Qualifier: aws.String("2")})
	wantErr(t, "invoke failed version", err, 409, "ResourceConflictException",
		"The operation cannot be performed at this time. The function is currently in the following state: Failed")

	// CreateFunction with Publish goes the same way.
	in = createInput(t, "snap2")
	in.SnapStart = snapStart(types.SnapStartApplyOnPublishedVersions)
	in.Publish = true
	cr, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if cr.State != types.StatePending || aws.ToString(cr.Version) != "1" {
		t.Errorf("create with publish: %s %s", cr.State, aws.ToString(cr.Version))
	}
	if got := ss.preparedVersions(); len(got) != 3 || got[2] != "snap2:1" {
		t.Errorf("prepared %v", got)
	}
	if strings.Contains(logs.String(), "not available") {
		t.Errorf("warned on a capable server: %s", logs)
	}
}

func TestSnapStartPublishUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ss   *fakeSnapStarter
	}{{"unavailable", &fakeSnapStarter{available: false}}, {"none configured", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			e, logs := snapEnv(t, tc.ss)
			c := e.lambda()
			ctx := context.Background()
			in := createInput(t, "cold")
			in.SnapStart = snapStart(types.SnapStartApplyOnPublishedVersions)
			if _, err := c.CreateFunction(ctx, in); err != nil {
				t.Fatal(err)
			}
			v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("cold")})
			if err != nil {
				t.Fatal(err)
			}
			if v.State != types.StateActive {
				t.Errorf("state %s", v.State)
			}
			wantSnapStart(t, "published", &types.FunctionConfiguration{SnapStart: v.SnapStart}, "PublishedVersions", "Off")
			if tc.ss != nil && len(tc.ss.preparedVersions()) != 0 {
				t.Errorf("prepared %v", tc.ss.preparedVersions())
			}
			if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("cold"), Qualifier: aws.String("1")}); err != nil {
				t.Errorf("invoke: %v", err)
			}
			l := logs.String()
			if strings.Count(l, "SnapStart is not available on this server's sandbox backend") != 1 ||
				!strings.Contains(l, "level=WARN") || !strings.Contains(l, "OptimizationStatus Off") ||
				!strings.Contains(l, fnARN+"cold:1") {
				t.Errorf("warning: %q", l)
			}
			// An unchanged publish does not warn again; ApplyOn None never does.
			if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("cold")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateFunction(ctx, createInput(t, "plain")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("plain")}); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(logs.String(), "not available"); n != 1 {
				t.Errorf("%d warnings: %s", n, logs)
			}
		})
	}
}

func TestSnapStartDeleteForgets(t *testing.T) {
	ss := &fakeSnapStarter{available: true}
	e, logs := snapEnv(t, ss)
	c := e.lambda()
	ctx := context.Background()
	in := createInput(t, "del")
	in.SnapStart = snapStart(types.SnapStartApplyOnPublishedVersions)
	in.Publish = true
	if _, err := c.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("del"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if got := ss.forgotten(); len(got) != 1 || got[0] != testAccount+"/del/1" {
		t.Errorf("forgot %v after deleting version 1", got)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("del"), Qualifier: aws.String("1")}); err == nil {
		t.Error("version 1 still there")
	}
	// A failing Forget is logged; the deletion succeeds.
	ss.mu.Lock()
	ss.forgetErr = fmt.Errorf("disk on fire")
	ss.mu.Unlock()
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fnARN + "del")}); err != nil {
		t.Fatalf("delete function with a failing Forget: %v", err)
	}
	if got := ss.forgotten(); len(got) != 2 || got[1] != testAccount+"/del/" {
		t.Errorf("forgot %v after deleting the function", got)
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("Forget error not logged: %s", logs)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("del")}); err == nil {
		t.Error("function still there")
	}
	// A failed deletion (no such function) forgets nothing.
	_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("del")})
	wantErr(t, "delete missing", err, 404, "ResourceNotFoundException", "")
	if got := ss.forgotten(); len(got) != 2 {
		t.Errorf("forgot %v after a failed deletion", got)
	}
}

func TestSnapStartInvokeErrors(t *testing.T) {
	e, _ := snapEnv(t, nil)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "rs")); err != nil {
		t.Fatal(err)
	}
	e.invoker.err = fmt.Errorf("worker: restore: %w", invoke.ErrAfterRestore)
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("rs")})
	var sse *types.SnapStartException
	if !errors.As(err, &sse) {
		t.Errorf("after-restore: %v", err)
	}
	wantErr(t, "after-restore", err, 400, "SnapStartException",
		"The afterRestore() runtime hook encountered an error. For more information, check the Amazon CloudWatch logs.")

	e.invoker.err = fmt.Errorf("worker: %w", invoke.ErrRestoreTimeout)
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("rs")})
	var ste *types.SnapStartTimeoutException
	if !errors.As(err, &ste) {
		t.Errorf("restore timeout: %v", err)
	}
	wantErr(t, "restore timeout", err, 408, "SnapStartTimeoutException",
		"Lambda couldn't restore the snapshot within the timeout limit.")

	// Other errors are unchanged.
	e.invoker.err = errors.New("secret")
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("rs")})
	wantErr(t, "other", err, 500, "ServiceException", "An internal error occurred")
}
