package e2e

import (
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/cli"
)

// invokeConcurrently runs n synchronous invokes of a sleeping event at
// once on c and returns how many succeeded and the throttles.
func invokeConcurrently(t *testing.T, c *lambda.Client, name string, n, sleepMS int) (ok int, throttles []*types.TooManyRequestsException) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	payload := []byte(`{"op":"sleep","ms":` + strconv.Itoa(sleepMS) + `}`)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
			mu.Lock()
			defer mu.Unlock()
			var tm *types.TooManyRequestsException
			switch {
			case err == nil:
				ok++
			case errors.As(err, &tm):
				throttles = append(throttles, tm)
			default:
				t.Errorf("invoke %s: %s", name, describe(err))
			}
		}()
	}
	wg.Wait()
	return ok, throttles
}

func wantThrottles(t *testing.T, throttles []*types.TooManyRequestsException, n int, reason types.ThrottleReason) {
	t.Helper()
	if len(throttles) != n {
		t.Fatalf("%d throttles, want %d", len(throttles), n)
	}
	for _, tm := range throttles {
		if tm.Reason != reason || aws.ToString(tm.Message) != "Rate Exceeded." {
			t.Errorf("throttle: Reason %q, message %q; want %q, \"Rate Exceeded.\"", tm.Reason, aws.ToString(tm.Message), reason)
		}
	}
}

func TestReservedConcurrency(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "conc-reserved-" + runID
	createFunction(t, name, fnSpec{})
	c := srv.client()

	put, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(1)})
	if err != nil {
		t.Fatalf("PutFunctionConcurrency: %s", describe(err))
	}
	if aws.ToInt32(put.ReservedConcurrentExecutions) != 1 {
		t.Errorf("PutFunctionConcurrency answered %v", put.ReservedConcurrentExecutions)
	}
	got, err := c.GetFunctionConcurrency(ctx(t), &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(functionARN(name))})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 1 {
		t.Fatalf("GetFunctionConcurrency = %v, %s; want 1", got, describe(err))
	}
	fn, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil || fn.Concurrency == nil || aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) != 1 {
		t.Errorf("GetFunction's Concurrency = %+v, %s; want 1", fn, describe(err))
	}

	ok, throttles := invokeConcurrently(t, c, name, 2, 2000)
	if ok != 1 {
		t.Errorf("%d invokes succeeded, want 1", ok)
	}
	wantThrottles(t, throttles, 1, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded)

	// Zero stops every invocation.
	if _, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatalf("PutFunctionConcurrency 0: %s", describe(err))
	}
	_, err = invokeRaw(t, c, name, []byte(`{}`))
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("invoke with reserved concurrency 0: %s; want TooManyRequestsException (ReservedFunctionConcurrentInvocationLimitExceeded)", describe(err))
	}
	wantAPIError(t, "invoke with reserved concurrency 0", err, http.StatusTooManyRequests, "TooManyRequestsException")

	// Validation: negative, and over the unreserved floor (100 of 1000).
	_, err = c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(-1)})
	wantAPIError(t, "PutFunctionConcurrency -1", err, http.StatusBadRequest, "ValidationException")
	_, err = c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(901)})
	wantAPIError(t, "PutFunctionConcurrency 901", err, http.StatusBadRequest, "InvalidParameterValueException")
	if err != nil && !strings.Contains(err.Error(), "minimum value of [100]") {
		t.Errorf("PutFunctionConcurrency 901: %v; want the floor named", err)
	}
	_, err = c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("conc-missing-" + runID), ReservedConcurrentExecutions: aws.Int32(1)})
	wantAPIError(t, "PutFunctionConcurrency of a missing function", err, http.StatusNotFound, "ResourceNotFoundException")

	// Delete: back to the unreserved pool.
	if _, err := c.DeleteFunctionConcurrency(ctx(t), &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(name)}); err != nil {
		t.Fatalf("DeleteFunctionConcurrency: %s", describe(err))
	}
	got, err = c.GetFunctionConcurrency(ctx(t), &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name)})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Errorf("GetFunctionConcurrency after delete = %v, %s; want none", got, describe(err))
	}
	if _, err := invokeRaw(t, c, name, []byte(`{}`)); err != nil {
		t.Errorf("invoke after DeleteFunctionConcurrency: %s", describe(err))
	}
}

// A server with a small account limit: unreserved functions share what
// the reservations leave; GetAccountSettings reports it.
func TestAccountConcurrency(t *testing.T) {
	requireServer(t)
	t.Parallel()
	dir := filepath.Join(workDir, "conc-account")
	creds := cli.Credentials{AccessKeyID: "AKIDCONC" + strings.ToUpper(randomHex(6)), SecretAccessKey: randomHex(20)}
	s, err := startServer(dir, &creds, "--account-concurrency", "3")
	if err != nil {
		t.Fatalf("starting a server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
		if t.Failed() {
			s.dumpLog(testLogWriter{t}, 60)
		}
	})
	a, b := "conc-a-"+runID, "conc-b-"+runID
	createFunctionOn(t, s, a, fnSpec{})
	createFunctionOn(t, s, b, fnSpec{})
	c := s.client()

	settings, err := c.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatalf("GetAccountSettings: %s", describe(err))
	}
	if l := settings.AccountLimit; l.ConcurrentExecutions != 3 || aws.ToInt32(l.UnreservedConcurrentExecutions) != 3 ||
		l.CodeSizeZipped != 52428800 || l.CodeSizeUnzipped != 262144000 || l.TotalCodeSize == 0 {
		t.Errorf("AccountLimit = %+v", *l)
	}
	if u := settings.AccountUsage; u.FunctionCount != 2 || u.TotalCodeSize != 2*int64(len(zips["behave"])) {
		t.Errorf("AccountUsage = %+v, want 2 functions of %d bytes each", *u, len(zips["behave"]))
	}

	ok, throttles := invokeConcurrently(t, c, a, 4, 2000)
	if ok != 3 {
		t.Errorf("%d invokes succeeded, want 3", ok)
	}
	wantThrottles(t, throttles, 1, types.ThrottleReasonConcurrentInvocationLimitExceeded)

	// The floor of a limit of 3 is 1: 2 can be reserved, not 3.
	_, err = c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(a), ReservedConcurrentExecutions: aws.Int32(3)})
	wantAPIError(t, "PutFunctionConcurrency 3 of 3", err, http.StatusBadRequest, "InvalidParameterValueException")
	if _, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(a), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatalf("PutFunctionConcurrency 2: %s", describe(err))
	}
	settings, err = c.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil || aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions) != 1 {
		t.Errorf("GetAccountSettings after reserving 2: %+v, %s; want 1 unreserved", settings, describe(err))
	}
	// b has the one unreserved slot left.
	ok, throttles = invokeConcurrently(t, c, b, 2, 2000)
	if ok != 1 {
		t.Errorf("%d invokes of the unreserved function succeeded, want 1", ok)
	}
	wantThrottles(t, throttles, 1, types.ThrottleReasonConcurrentInvocationLimitExceeded)
}

func TestTags(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "tags-" + runID
	in := createInput(name, fnSpec{})
	in.Tags = map[string]string{"team": "kindling", "stage": "test"}
	c := srv.client()
	if _, err := c.CreateFunction(ctx(t), in); err != nil {
		t.Fatalf("CreateFunction: %s", describe(err))
	}
	t.Cleanup(func() {
		c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}) //nolint:errcheck // best effort
	})
	arn := aws.String(functionARN(name))
	list := func() map[string]string {
		t.Helper()
		out, err := c.ListTags(ctx(t), &lambda.ListTagsInput{Resource: arn})
		if err != nil {
			t.Fatalf("ListTags: %s", describe(err))
		}
		return out.Tags
	}
	if got := list(); len(got) != 2 || got["team"] != "kindling" {
		t.Errorf("ListTags after create = %v", got)
	}
	if _, err := c.TagResource(ctx(t), &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"team": "core", "new": "1"}}); err != nil {
		t.Fatalf("TagResource: %s", describe(err))
	}
	if _, err := c.UntagResource(ctx(t), &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"stage"}}); err != nil {
		t.Fatalf("UntagResource: %s", describe(err))
	}
	want := map[string]string{"team": "core", "new": "1"}
	if got := list(); len(got) != 2 || got["team"] != "core" || got["new"] != "1" {
		t.Errorf("ListTags = %v, want %v", got, want)
	}
	fn, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil || len(fn.Tags) != 2 || fn.Tags["team"] != "core" {
		t.Errorf("GetFunction's Tags = %v, %s; want %v", fn.Tags, describe(err), want)
	}
	_, err = c.ListTags(ctx(t), &lambda.ListTagsInput{Resource: aws.String(functionARN("tags-missing-" + runID))})
	wantAPIError(t, "ListTags of a missing function", err, http.StatusNotFound, "ResourceNotFoundException")
	_, err = c.ListTags(ctx(t), &lambda.ListTagsInput{Resource: aws.String(name)})
	wantAPIError(t, "ListTags of a bare name", err, http.StatusBadRequest, "ValidationException")
}

func TestProvisionedConcurrency(t *testing.T) {
	requireServer(t)
	t.Parallel()
	name := "conc-prov-" + runID
	createFunction(t, name, fnSpec{})
	c := srv.client()
	if _, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)}); err != nil {
		t.Fatalf("PublishVersion: %s", describe(err))
	}
	if _, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("live"),
		FunctionVersion: aws.String("1")}); err != nil {
		t.Fatalf("CreateAlias: %s", describe(err))
	}
	_, err := c.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String(name),
		Qualifier: aws.String("$LATEST"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	wantAPIError(t, "provisioned concurrency on $LATEST", err, http.StatusBadRequest, "InvalidParameterValueException")

	put, err := c.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String(name),
		Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)})
	if err != nil {
		t.Fatalf("PutProvisionedConcurrencyConfig: %s", describe(err))
	}
	if put.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 2 {
		t.Errorf("Put answered %s, requested %d; want IN_PROGRESS, 2", put.Status, aws.ToInt32(put.RequestedProvisionedConcurrentExecutions))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := c.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(name),
			Qualifier: aws.String("live")})
		if err != nil {
			t.Fatalf("GetProvisionedConcurrencyConfig: %s", describe(err))
		}
		if got.Status == types.ProvisionedConcurrencyStatusEnumReady {
			if aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) != 2 {
				t.Errorf("READY with %d available, want 2", aws.ToInt32(got.AvailableProvisionedConcurrentExecutions))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after a minute (%d available)", got.Status, aws.ToInt32(got.AvailableProvisionedConcurrentExecutions))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Initialised ahead: no invocation of the alias pays the init.
	for i := range 2 {
		inv, err := invokeRaw(t, c, name+":live", []byte(`{"op":"echo"}`))
		if err != nil {
			t.Fatalf("invoke %d: %s", i, describe(err))
		}
		if strings.Contains(inv.logs, "Init Duration") {
			t.Errorf("invoke %d of a provisioned alias reported an init:\n%s", i, inv.logs)
		}
	}
	list, err := c.ListProvisionedConcurrencyConfigs(ctx(t), &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String(name)})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 ||
		aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn) != functionARN(name)+":live" {
		t.Errorf("ListProvisionedConcurrencyConfigs = %+v, %s", list, describe(err))
	}
	// Counted against the reservation.
	_, err = c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(1)})
	wantAPIError(t, "a reservation under the provisioned concurrency", err, http.StatusBadRequest, "InvalidParameterValueException")

	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx(t), &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String(name),
		Qualifier: aws.String("live")}); err != nil {
		t.Fatalf("DeleteProvisionedConcurrencyConfig: %s", describe(err))
	}
	_, err = c.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(name),
		Qualifier: aws.String("live")})
	wantAPIError(t, "Get after Delete", err, http.StatusNotFound, "ProvisionedConcurrencyConfigNotFoundException")
	if _, err := c.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Errorf("PutFunctionConcurrency after the provisioned config went: %s", describe(err))
	}
}
