package frontend

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

func TestFunctionConcurrencyAPI(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "f")); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Fatalf("GetFunctionConcurrency before Put = %v, %v; want none", got, err)
	}
	put, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(10)})
	if err != nil || aws.ToInt32(put.ReservedConcurrentExecutions) != 10 {
		t.Fatalf("PutFunctionConcurrency = %v, %v", put, err)
	}
	if u := e.limits.Usage(testAccount); u.Unreserved != 990 {
		t.Errorf("limiter's unreserved = %d, want 990", u.Unreserved)
	}
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil || fn.Concurrency == nil || aws.ToInt32(fn.Concurrency.ReservedConcurrentExecutions) != 10 {
		t.Errorf("GetFunction's Concurrency = %+v, %v", fn.Concurrency, err)
	}
	settings, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || settings.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(settings.AccountLimit.UnreservedConcurrentExecutions) != 990 ||
		settings.AccountUsage.FunctionCount != 1 || settings.AccountUsage.TotalCodeSize == 0 {
		t.Errorf("GetAccountSettings = %+v %+v, %v", settings.AccountLimit, settings.AccountUsage, err)
	}

	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(901)})
	if code, msg, status := apiError(t, err); code != "InvalidParameterValueException" || status != http.StatusBadRequest ||
		msg != "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]." {
		t.Errorf("over the floor: %s %q %d", code, msg, status)
	}
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(-1)})
	if code, _, status := apiError(t, err); code != "ValidationException" || status != http.StatusBadRequest {
		t.Errorf("negative: %s %d", code, status)
	}
	_, err = c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("nope"), ReservedConcurrentExecutions: aws.Int32(1)})
	if code, _, status := apiError(t, err); code != "ResourceNotFoundException" || status != http.StatusNotFound {
		t.Errorf("missing function: %s %d", code, status)
	}
	if u := e.limits.Usage(testAccount); u.Unreserved != 990 {
		t.Errorf("a refused Put changed the limiter: %d unreserved", u.Unreserved)
	}
	// Another account sees no such function.
	_, err = e.client(otherKeyID, testSecret).GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("f")})
	if code, _, _ := apiError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("other account: %s", code)
	}

	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if u := e.limits.Usage(testAccount); u.Unreserved != 1000 {
		t.Errorf("after Delete: %d unreserved, want 1000", u.Unreserved)
	}
	// Deleting the function drops its reservation.
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("f"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("f")}); err != nil {
		t.Fatal(err)
	}
	if u := e.limits.Usage(testAccount); u.Unreserved != 1000 {
		t.Errorf("after DeleteFunction: %d unreserved, want 1000", u.Unreserved)
	}
}

func TestTagsAPI(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	out, err := c.CreateFunction(ctx, createInput(t, "f"))
	if err != nil {
		t.Fatal(err)
	}
	arn := out.FunctionArn
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"a", "missing"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if err != nil || len(got.Tags) != 1 || got.Tags["b"] != "2" {
		t.Errorf("ListTags = %v, %v", got, err)
	}
	_, err = c.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"aws:x": "1"}})
	if code, _, _ := apiError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("aws: key: %s", code)
	}
	_, err = c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(*arn + ":1")})
	if code, _, _ := apiError(t, err); code != "InvalidParameterValueException" {
		t.Errorf("qualified ARN: %s", code)
	}
	_, err = e.client(otherKeyID, testSecret).ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if code, _, status := apiError(t, err); code != "AccessDeniedException" || status != http.StatusForbidden {
		t.Errorf("other account: %s %d", code, status)
	}
}
