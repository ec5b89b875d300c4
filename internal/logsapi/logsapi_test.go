package logsapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"

	"kindling/internal/logs"
	"kindling/internal/sigv4"
)

const (
	region   = "us-east-1"
	acctA    = "000000000000"
	acctB    = "222222222222"
	keyA     = "AKIDAAAAAAAAAAAAAAAA"
	keyB     = "AKIDBBBBBBBBBBBBBBBB"
	secret   = "secret-secret-secret-secret"
	group    = "/aws/lambda/hello"
	streamNm = "2024/01/02/[$LATEST]0123456789abcdef0123456789abcdef"
)

func setUp(t *testing.T) (*logs.Store, func(key string) *cloudwatchlogs.Client) {
	t.Helper()
	store, err := logs.Open(context.Background(), logs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v := &sigv4.Verifier{Region: region, Lookup: func(id string) (sigv4.Credentials, bool) {
		switch id {
		case keyA:
			return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: secret, AccountID: acctA}, true
		case keyB:
			return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: secret, AccountID: acctB}, true
		}
		return sigv4.Credentials{}, false
	}}
	srv := httptest.NewServer(New(Config{Verifier: v, Store: store, Region: region}))
	t.Cleanup(srv.Close)
	return store, func(key string) *cloudwatchlogs.Client {
		return cloudwatchlogs.New(cloudwatchlogs.Options{
			Region:           region,
			BaseEndpoint:     aws.String(srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(key, secret, ""),
			RetryMaxAttempts: 1,
		})
	}
}

func wantErr(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

func TestAPI(t *testing.T) {
	store, client := setUp(t)
	ctx := context.Background()
	now := time.Now()
	store.Platform(acctA, group, streamNm, now, "START RequestId: r Version: $LATEST\n")
	store.Append(acctA, group, streamNm, now, []byte("hello ERROR\nworld\n"))
	store.Platform(acctA, group, streamNm, now, "END RequestId: r\n")
	if err := store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c := client(keyA)

	dg, err := c.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(dg.LogGroups) != 1 || aws.ToString(dg.LogGroups[0].LogGroupName) != group ||
		aws.ToString(dg.LogGroups[0].Arn) != "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/hello:*" ||
		aws.ToInt64(dg.LogGroups[0].StoredBytes) == 0 || dg.LogGroups[0].RetentionInDays != nil {
		t.Errorf("DescribeLogGroups: %+v", dg.LogGroups)
	}
	ds, err := c.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group),
		OrderBy: types.OrderByLastEventTime, Descending: aws.Bool(true)})
	if err != nil || len(ds.LogStreams) != 1 || aws.ToString(ds.LogStreams[0].LogStreamName) != streamNm ||
		aws.ToInt64(ds.LogStreams[0].LastEventTimestamp) != now.UnixMilli() {
		t.Errorf("DescribeLogStreams: %+v, %v", ds, err)
	}
	ge, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
		LogStreamName: aws.String(streamNm), StartFromHead: aws.Bool(true)})
	if err != nil || len(ge.Events) != 4 || aws.ToString(ge.Events[1].Message) != "hello ERROR\n" {
		t.Fatalf("GetLogEvents: %+v, %v", ge, err)
	}
	again, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
		LogStreamName: aws.String(streamNm), StartFromHead: aws.Bool(true), NextToken: ge.NextForwardToken})
	if err != nil || len(again.Events) != 0 || aws.ToString(again.NextForwardToken) != aws.ToString(ge.NextForwardToken) {
		t.Errorf("GetLogEvents at the end: %+v, %v", again, err)
	}
	fe, err := c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String("ERROR")})
	if err != nil || len(fe.Events) != 1 || aws.ToString(fe.Events[0].LogStreamName) != streamNm || aws.ToString(fe.Events[0].EventId) == "" {
		t.Errorf("FilterLogEvents: %+v, %v", fe, err)
	}

	if _, err := c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	dg, _ = c.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
	if len(dg.LogGroups) != 1 || aws.ToInt32(dg.LogGroups[0].RetentionInDays) != 7 {
		t.Errorf("retention: %+v", dg.LogGroups)
	}
	_, err = c.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(8)})
	wantErr(t, "8 days", err, "InvalidParameterException")
	if _, err := c.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}

	_, err = c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("nope")})
	wantErr(t, "missing stream", err, "ResourceNotFoundException")
	_, err = c.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String(`{ $.a = 1 }`)})
	wantErr(t, "JSON pattern", err, "InvalidParameterException")
	_, err = c.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group),
		OrderBy: types.OrderByLastEventTime, LogStreamNamePrefix: aws.String("2024")})
	wantErr(t, "prefix and LastEventTime", err, "InvalidParameterException")
	_, err = c.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)})
	wantErr(t, "existing group", err, "ResourceAlreadyExistsException")

	// Another account sees nothing of A's.
	b := client(keyB)
	dg, err = b.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
	if err != nil || len(dg.LogGroups) != 0 {
		t.Errorf("B's groups: %+v, %v", dg, err)
	}
	_, err = b.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
	wantErr(t, "B filters A's group", err, "ResourceNotFoundException")
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "The specified log group does not exist." {
		t.Errorf("message %q", ae.ErrorMessage())
	}
	_, err = b.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(1)})
	wantErr(t, "B sets A's retention", err, "ResourceNotFoundException")

	bad := cloudwatchlogs.New(cloudwatchlogs.Options{Region: region, BaseEndpoint: c.Options().BaseEndpoint,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", secret, ""), RetryMaxAttempts: 1})
	_, err = bad.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
	wantErr(t, "unknown key", err, "UnrecognizedClientException")
}

func TestUnknownOperationAndService(t *testing.T) {
	_, client := setUp(t)
	url := aws.ToString(client(keyA).Options().BaseEndpoint)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "Logs_20140328.DescribeLogGroups")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}
