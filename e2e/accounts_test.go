package e2e

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"kindling/internal/cli"
)

// createAccount runs `kindling account create NAME` on the shared server
// with creds and returns the new account's id and key pair.
func createAccount(t *testing.T, name string, creds cli.Credentials) (string, cli.Credentials) {
	t.Helper()
	out, errOut, code := runCLI(t, []string{"KINDLING_ENDPOINT=" + srv.url, "KINDLING_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + creds.SecretAccessKey}, "account", "create", name)
	if code != 0 {
		t.Fatalf("kindling account create %s: exit %d: %s", name, code, errOut)
	}
	m := regexp.MustCompile(`(?m)^# account \S+: (\d{12}) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no account id in the output of kindling account create:\n%s", out)
	}
	c, err := cli.ParseCredentialsFile(strings.NewReader(out), name)
	if err != nil {
		t.Fatalf("the output of kindling account create is not a credentials profile: %v\n%s", err, out)
	}
	return m[1], c
}

func (s *server) sqsClientWith(creds cli.Credentials) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.url),
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: time.Minute},
	})
}

// TestAccounts creates a second account and checks that it sees none of
// the root account's functions, logs and queues, and has its own limits.
func TestAccounts(t *testing.T) {
	requireServer(t)
	t.Parallel()
	acctName := "e2e-" + randomHex(6)
	id, creds := createAccount(t, acctName, srv.creds)
	if id == account {
		t.Fatalf("the new account has the root's id %s", id)
	}
	// Names are unique; only the root account may create accounts.
	_, errOut, code := runCLI(t, []string{"KINDLING_ENDPOINT=" + srv.url, "KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey}, "account", "create", acctName)
	if code != 1 || !strings.Contains(errOut, "ResourceConflictException") {
		t.Errorf("creating %s again: exit %d, %q; want 1 and ResourceConflictException", acctName, code, errOut)
	}
	_, errOut, code = runCLI(t, []string{"KINDLING_ENDPOINT=" + srv.url, "KINDLING_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + creds.SecretAccessKey}, "account", "create", acctName+"-x")
	if code != 1 || !strings.Contains(errOut, "AccessDeniedException") {
		t.Errorf("creating an account with a non-root account: exit %d, %q; want 1 and AccessDeniedException", code, errOut)
	}
	out, errOut, code := runCLI(t, []string{"KINDLING_ENDPOINT=" + srv.url, "KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey}, "account", "list")
	if code != 0 || !strings.Contains(out, acctName) || !strings.Contains(out, id) || strings.Contains(out, creds.SecretAccessKey) {
		t.Errorf("kindling account list: exit %d\n%s%s", code, out, errOut)
	}

	// The root account's function, invoked so that it has logs.
	name := "acct-" + runID
	createFunction(t, name, fnSpec{})
	invoke(t, name, map[string]any{"op": "echo"})
	root := srv.client()
	other := srv.clientWith(creds)

	_, err := other.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	wantAPIError(t, "GetFunction of another account's function", err, http.StatusNotFound, "ResourceNotFoundException")
	_, err = invokeRaw(t, other, name, []byte(`{}`))
	wantAPIError(t, "Invoke of another account's function", err, http.StatusNotFound, "ResourceNotFoundException")
	_, err = other.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(functionARN(name))})
	wantAPIError(t, "GetFunction by the ARN of another account's function", err, http.StatusForbidden, "AccessDeniedException")
	_, err = other.ListTags(ctx(t), &lambda.ListTagsInput{Resource: aws.String(functionARN(name))})
	wantAPIError(t, "ListTags of another account's function", err, http.StatusForbidden, "AccessDeniedException")
	list, err := other.ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatalf("ListFunctions: %s", describe(err))
	}
	if len(list.Functions) != 0 {
		t.Errorf("the new account lists %d functions, want none", len(list.Functions))
	}

	// Logs: the root's group does not exist for the other account.
	group := "/aws/lambda/" + name
	waitLogs(t, 30*time.Second, "the root account's log group", func() (bool, string) {
		out, err := srv.logsClient().DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
		return err == nil && len(out.LogGroups) == 1, describe(err)
	})
	lc := srv.logsClientWith(creds)
	groups, err := lc.DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
	if err != nil || len(groups.LogGroups) != 0 {
		t.Errorf("DescribeLogGroups of the new account: %v, %s; want none", groups, describe(err))
	}
	_, err = lc.FilterLogEvents(ctx(t), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
	wantAPIError(t, "FilterLogEvents on another account's group", err, http.StatusBadRequest, "ResourceNotFoundException")

	// The same name in the other account is another function.
	in := createInput(name, fnSpec{})
	created, err := other.CreateFunction(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateFunction in the new account: %s", describe(err))
	}
	t.Cleanup(func() {
		other.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}) //nolint:errcheck // best effort
	})
	if arn := aws.ToString(created.FunctionArn); !strings.Contains(arn, ":"+id+":function:") {
		t.Errorf("FunctionArn %s does not name the new account %s", arn, id)
	}
	waitActive(t, other, name)
	var echo map[string]any
	inv, err := invokeRaw(t, other, name, []byte(`{"op":"echo"}`))
	if err != nil {
		t.Fatalf("Invoke in the new account: %s", describe(err))
	}
	inv.decode(t, &echo)
	settings, err := other.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil || settings.AccountUsage.FunctionCount != 1 || settings.AccountLimit.ConcurrentExecutions != 1000 {
		t.Errorf("GetAccountSettings of the new account: %+v, %s; want 1 function and the limit 1000", settings, describe(err))
	}
	// Account limits are per account: a reservation here leaves the root's
	// unreserved pool alone.
	if _, err := other.PutFunctionConcurrency(ctx(t), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(900)}); err != nil {
		t.Fatalf("PutFunctionConcurrency 900 in the new account: %s", describe(err))
	}
	rs, err := root.GetAccountSettings(ctx(t), &lambda.GetAccountSettingsInput{})
	if err != nil || aws.ToInt32(rs.AccountLimit.UnreservedConcurrentExecutions) < 900 {
		t.Errorf("root's GetAccountSettings after the other account reserved 900: %+v, %s", rs, describe(err))
	}

	// Queues.
	qname := "acct-" + runID
	url, _ := createQueue(t, srv, qname, nil)
	oq := srv.sqsClientWith(creds)
	_, err = oq.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String(qname)})
	var dne *sqstypes.QueueDoesNotExist
	if !errors.As(err, &dne) {
		t.Errorf("GetQueueUrl of another account's queue: %s; want QueueDoesNotExist", describe(err))
	}
	_, err = oq.SendMessage(ctx(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	if !errors.As(err, &dne) {
		t.Errorf("SendMessage to another account's queue: %s; want QueueDoesNotExist", describe(err))
	}
	ql, err := oq.ListQueues(ctx(t), &sqs.ListQueuesInput{})
	if err != nil || slices.Contains(ql.QueueUrls, url) {
		t.Errorf("ListQueues of the new account: %v, %s; want without %s", ql, describe(err), url)
	}
}
