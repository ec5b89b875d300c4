package frontend

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"kindling/internal/async"
)

func TestInvokeEvent(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "echo")); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"n":1}`)})
	if err != nil || out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("event: %v %+v", err, out)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if e.invoker.last() != nil {
		t.Error("an Event invocation ran synchronously")
	}
	stream, err := e.js.Stream(ctx, async.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := async.DecodeEvent(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.RequestID != id || ev.Account != testAccount || ev.Function != "echo" || string(ev.Payload) != `{"n":1}` ||
		ev.Enqueued.Before(before.Add(-time.Second)) || ev.State != (async.State{}) || ev.TraceID == "" {
		t.Errorf("queued event %+v (request id %s)", ev, id)
	}

	// 1 MB limit for Event; just under it is accepted.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: bytes.Repeat([]byte(" "), async.MaxPayload+1)})
	if code, msg, status := apiError(t, err); code != "RequestEntityTooLargeException" || status != 413 ||
		msg != "Request must be smaller than 1048576 bytes for the InvokeFunction operation" {
		t.Errorf("too large: %s %s %d", code, msg, status)
	}
	big := append(append([]byte(`"`), bytes.Repeat([]byte("x"), async.MaxPayload-2)...), '"')
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: big}); err != nil {
		t.Errorf("1 MB event: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		LogType: types.LogTypeTail})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("Event with LogType Tail: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{not json`)})
	if code, _, status := apiError(t, err); code != "InvalidRequestContentException" || status != 400 {
		t.Errorf("bad JSON: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("missing"), InvocationType: types.InvocationTypeEvent})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("missing function: %v", err)
	}
}

func TestEventInvokeConfigAPI(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, createInput(t, "fn")); err != nil {
		t.Fatal(err)
	}
	queue := "arn:aws:sqs:" + testRegion + ":" + testAccount + ":q"
	_, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), "doesn't have an EventInvokeConfig") {
		t.Fatalf("Get of none: %v", err)
	}
	put, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("fn"), MaximumRetryAttempts: aws.Int32(1),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(queue)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.FunctionArn) != "arn:aws:lambda:"+testRegion+":"+testAccount+":function:fn:$LATEST" ||
		aws.ToInt32(put.MaximumRetryAttempts) != 1 || put.MaximumEventAgeInSeconds != nil ||
		aws.ToString(put.DestinationConfig.OnSuccess.Destination) != queue || put.LastModified == nil ||
		time.Since(*put.LastModified) > time.Minute {
		t.Errorf("Put: %+v", put)
	}
	upd, err := c.UpdateFunctionEventInvokeConfig(ctx, &lambda.UpdateFunctionEventInvokeConfigInput{
		FunctionName: aws.String("fn"), MaximumEventAgeInSeconds: aws.Int32(60),
	})
	if err != nil || aws.ToInt32(upd.MaximumRetryAttempts) != 1 || aws.ToInt32(upd.MaximumEventAgeInSeconds) != 60 ||
		aws.ToString(upd.DestinationConfig.OnSuccess.Destination) != queue {
		t.Errorf("Update merges: %+v %v", upd, err)
	}
	// Put replaces.
	put, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName: aws.String("fn"), MaximumRetryAttempts: aws.Int32(0)})
	if err != nil || aws.ToInt32(put.MaximumRetryAttempts) != 0 || put.MaximumEventAgeInSeconds != nil ||
		aws.ToString(put.DestinationConfig.OnSuccess.Destination) != "" {
		t.Errorf("Put replaces: %+v %v", put, err)
	}
	get, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")})
	if err != nil || aws.ToInt32(get.MaximumRetryAttempts) != 0 {
		t.Errorf("Get: %+v %v", get, err)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("fn")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Errorf("List: %+v %v", list, err)
	}
	for _, bad := range []*lambda.PutFunctionEventInvokeConfigInput{
		{FunctionName: aws.String("fn"), MaximumRetryAttempts: aws.Int32(3)},
		{FunctionName: aws.String("fn"), MaximumEventAgeInSeconds: aws.Int32(59)},
	} {
		_, err := c.PutFunctionEventInvokeConfig(ctx, bad)
		if code, _, status := apiError(t, err); code != "ValidationException" || status != 400 {
			t.Errorf("out of range %+v: %v", bad, err)
		}
	}
	for _, dest := range []string{"arn:aws:sns:" + testRegion + ":" + testAccount + ":topic", "arn:aws:sqs:" + testRegion + ":" + otherAcct + ":q", "nonsense"} {
		_, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(dest)}}})
		var ip *types.InvalidParameterValueException
		if !errors.As(err, &ip) {
			t.Errorf("destination %s: %v", dest, err)
		}
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("empty Put: %v", err)
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("missing"), MaximumRetryAttempts: aws.Int32(1)})
	if !errors.As(err, &nf) {
		t.Errorf("missing function: %v", err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); !errors.As(err, &nf) {
		t.Errorf("second delete: %v", err)
	}
	// Deleting the function deletes its configurations.
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"), MaximumRetryAttempts: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	if cs, _ := e.eventConfigs.List(ctx, testAccount, "fn"); len(cs) != 0 {
		t.Errorf("configs left after DeleteFunction: %v", cs)
	}
}

func TestDeadLetterConfig(t *testing.T) {
	e := newEnv(t)
	c := e.lambda()
	ctx := context.Background()
	queue := "arn:aws:sqs:" + testRegion + ":" + testAccount + ":dlq"
	in := createInput(t, "fn")
	in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(queue)}
	out, err := c.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.DeadLetterConfig == nil || aws.ToString(out.DeadLetterConfig.TargetArn) != queue {
		t.Errorf("CreateFunction DeadLetterConfig: %+v", out.DeadLetterConfig)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sns:" + testRegion + ":" + testAccount + ":t")}})
	var ip *types.InvalidParameterValueException
	if !errors.As(err, &ip) {
		t.Errorf("SNS dead-letter target: %v", err)
	}
	upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("")}})
	if err != nil || upd.DeadLetterConfig != nil {
		t.Errorf("clearing the dead-letter target: %+v %v", upd.DeadLetterConfig, err)
	}
}
