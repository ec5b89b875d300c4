package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"kindling/internal/cli"
)

// streamNameRE is Lambda's log stream name: YYYY/MM/DD/[VERSION]<32 hex>.
var streamNameRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`)

func (s *server) logsClientWith(creds cli.Credentials) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.url),
		Credentials:      credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: time.Minute},
	})
}

func (s *server) logsClient() *cloudwatchlogs.Client { return s.logsClientWith(s.creds) }

// waitLogs polls check (logs are stored asynchronously, as in CloudWatch)
// until it reports done, failing the test after timeout with its last
// description of what it saw.
func waitLogs(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, saw := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last saw: %s", what, timeout, saw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamEvents returns every event of one stream, from the head, paging
// with limit and following nextForwardToken until it comes back unchanged.
func streamEvents(t *testing.T, c *cloudwatchlogs.Client, group, stream string, limit int32) ([]string, int) {
	t.Helper()
	var msgs []string
	in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream),
		StartFromHead: aws.Bool(true), Limit: aws.Int32(limit)}
	pages := 0
	for {
		out, err := c.GetLogEvents(ctx(t), in)
		if err != nil {
			t.Fatalf("GetLogEvents: %s", describe(err))
		}
		pages++
		for _, e := range out.Events {
			msgs = append(msgs, aws.ToString(e.Message))
		}
		if in.NextToken != nil && aws.ToString(out.NextForwardToken) == aws.ToString(in.NextToken) {
			if len(out.Events) != 0 {
				t.Errorf("GetLogEvents returned %d events with an unchanged token", len(out.Events))
			}
			return msgs, pages
		}
		if pages > 1000 {
			t.Fatal("GetLogEvents: no end of pages")
		}
		in.NextToken = out.NextForwardToken
	}
}

// invocationStream waits until the invocation id's START, output lines,
// END and REPORT are in one stream of group, and returns that stream.
func invocationStream(t *testing.T, c *cloudwatchlogs.Client, group, id string, lines []string) string {
	t.Helper()
	var stream string
	waitLogs(t, 30*time.Second, "the logs of invocation "+id, func() (bool, string) {
		out, err := c.FilterLogEvents(ctx(t), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group),
			FilterPattern: aws.String(`"START RequestId: ` + id + `"`)})
		if err != nil {
			return false, describe(err)
		}
		if len(out.Events) != 1 {
			return false, fmt.Sprintf("%d START events", len(out.Events))
		}
		stream = aws.ToString(out.Events[0].LogStreamName)
		msgs, _ := streamEvents(t, c, group, stream, 100)
		err = invocationLines(msgs, id, lines)
		return err == nil, fmt.Sprint(err)
	})
	return stream
}

// invocationLines checks that msgs hold, in order, the START line of id,
// the wanted output lines, END and REPORT, as Lambda writes them.
func invocationLines(msgs []string, id string, want []string) error {
	i := -1
	for j, m := range msgs {
		if m == "START RequestId: "+id+" Version: $LATEST\n" {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("no START line for %s", id)
	}
	rest := msgs[i+1:]
	if len(rest) < len(want)+2 {
		return fmt.Errorf("after START: %q", rest)
	}
	for k, w := range want {
		if rest[k] != w+"\n" {
			return fmt.Errorf("line %d after START = %q, want %q", k, rest[k], w+"\n")
		}
	}
	if end := rest[len(want)]; end != "END RequestId: "+id+"\n" {
		return fmt.Errorf("after the output: %q, want END", end)
	}
	rep := rest[len(want)+1]
	if !reportRE.MatchString(rep) || !strings.HasPrefix(rep, "REPORT RequestId: "+id+"\t") || !strings.HasSuffix(rep, "\t\n") {
		return fmt.Errorf("REPORT event %q is not Lambda's", rep)
	}
	return nil
}

// TestLogs invokes a function that prints lines and finds START, the lines,
// END and REPORT in its log group and stream through the CloudWatch Logs
// API: DescribeLogGroups/Streams, GetLogEvents with pagination and
// FilterLogEvents with patterns and pagination.
func TestLogs(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-cwlogs"
	group := "/aws/lambda/" + name
	createFunction(t, name, fnSpec{})
	c := srv.logsClient()

	lines := []string{"alpha one", "beta two", "gamma ERROR three", "tab\tseparated"}
	inv := invoke(t, name, map[string]any{"op": "log", "lines": lines})
	first := parseReport(t, inv.logs).requestID

	stream := invocationStream(t, c, group, first, lines)
	if !streamNameRE.MatchString(stream) {
		t.Errorf("stream name %q is not Lambda's YYYY/MM/DD/[$LATEST]<32 hex>", stream)
	}
	ds, err := c.DescribeLogStreams(ctx(t), &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(group),
		OrderBy: logtypes.OrderByLastEventTime, Descending: aws.Bool(true)})
	if err != nil {
		t.Fatal(describe(err))
	}
	if !slices.ContainsFunc(ds.LogStreams, func(ls logtypes.LogStream) bool {
		return aws.ToString(ls.LogStreamName) == stream && aws.ToInt64(ls.LastEventTimestamp) >= aws.ToInt64(ls.FirstEventTimestamp) &&
			aws.ToInt64(ls.FirstEventTimestamp) > 0
	}) {
		t.Errorf("DescribeLogStreams lacks %s with its event times: %+v", stream, ds.LogStreams)
	}

	// Warm invocations (normally in the same environment, hence stream).
	ids := []string{first}
	for i := range 4 {
		inv := invoke(t, name, map[string]any{"op": "log", "lines": []string{fmt.Sprintf("warm %d", i)}})
		ids = append(ids, parseReport(t, inv.logs).requestID)
	}
	for i, id := range ids[1:] {
		if st := invocationStream(t, c, group, id, []string{fmt.Sprintf("warm %d", i)}); st != stream {
			t.Logf("warm invocation %d ran in another environment (%s)", i, st)
		}
	}
	all, _ := streamEvents(t, c, group, stream, 10000)
	// Small pages give the same events.
	paged, pages := streamEvents(t, c, group, stream, 3)
	if strings.Join(paged, "") != strings.Join(all, "") || pages < len(all)/3 {
		t.Errorf("GetLogEvents with limit 3: %d events in %d pages, want the %d of one page", len(paged), pages, len(all))
	}
	// Backward from the end.
	out, err := c.GetLogEvents(ctx(t), &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
		LogStreamName: aws.String(stream), Limit: aws.Int32(2)})
	if err != nil {
		t.Fatal(describe(err))
	}
	if len(out.Events) != 2 || !strings.HasPrefix(aws.ToString(out.Events[1].Message), "REPORT RequestId: ") {
		t.Errorf("the newest two events: %+v", out.Events)
	}

	filter := func(pattern string, limit int32) []logtypes.FilteredLogEvent {
		t.Helper()
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String(pattern)}
		if limit > 0 {
			in.Limit = aws.Int32(limit)
		}
		var evs []logtypes.FilteredLogEvent
		p := cloudwatchlogs.NewFilterLogEventsPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatalf("FilterLogEvents %q: %s", pattern, describe(err))
			}
			evs = append(evs, out.Events...)
		}
		return evs
	}
	msgs := func(evs []logtypes.FilteredLogEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, strings.TrimSuffix(aws.ToString(e.Message), "\n"))
		}
		return out
	}
	if got := msgs(filter("ERROR", 0)); len(got) != 1 || got[0] != "gamma ERROR three" {
		t.Errorf(`filter "ERROR": %q`, got)
	}
	if got := msgs(filter(`?alpha ?beta`, 0)); strings.Join(got, "|") != "alpha one|beta two" {
		t.Errorf(`filter "?alpha ?beta": %q`, got)
	}
	if got := msgs(filter(`"RequestId: `+first+`" -REPORT -START`, 0)); len(got) != 1 || got[0] != "END RequestId: "+first {
		t.Errorf("filter END of the first invocation: %q", got)
	}
	evs := filter("", 4)
	seen := map[string]bool{}
	var inStream []string
	for _, e := range evs {
		if aws.ToString(e.EventId) == "" || seen[aws.ToString(e.EventId)] {
			t.Errorf("filtered event %+v: want a unique eventId", e)
		}
		seen[aws.ToString(e.EventId)] = true
		if aws.ToString(e.LogStreamName) == stream {
			inStream = append(inStream, aws.ToString(e.Message))
		}
	}
	if strings.Join(inStream, "") != strings.Join(all, "") {
		t.Errorf("FilterLogEvents in pages of 4: %d events of %s, GetLogEvents has %d", len(inStream), stream, len(all))
	}

	dg, err := c.DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
	if err != nil {
		t.Fatal(describe(err))
	}
	dg.LogGroups = slices.DeleteFunc(dg.LogGroups, func(g logtypes.LogGroup) bool { return aws.ToString(g.LogGroupName) != group })
	if len(dg.LogGroups) != 1 || aws.ToString(dg.LogGroups[0].Arn) != fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", region, account, group) ||
		aws.ToInt64(dg.LogGroups[0].StoredBytes) == 0 {
		t.Errorf("DescribeLogGroups: %+v", dg.LogGroups)
	}

	// Errors as CloudWatch Logs sends them.
	_, err = c.GetLogEvents(ctx(t), &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/e2e-no-such-function"),
		LogStreamName: aws.String(stream)})
	wantAPIError(t, "GetLogEvents of a missing group", err, 400, "ResourceNotFoundException")
	_, err = c.PutRetentionPolicy(ctx(t), &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group), RetentionInDays: aws.Int32(2)})
	wantAPIError(t, "PutRetentionPolicy 2 days", err, 400, "InvalidParameterException")
	stranger := srv.logsClientWith(cli.Credentials{AccessKeyID: "AKIDE2ESTRANGER", SecretAccessKey: "nope"})
	_, err = stranger.DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{})
	wantAPIError(t, "unknown access key", err, 400, "UnrecognizedClientException")

	t.Run("AccountIsolation", func(t *testing.T) {
		// Another account neither lists nor reads this group.
		_, creds := createAccount(t, "e2e-logs-other", srv.creds)
		lc := srv.logsClientWith(creds)
		groups, err := lc.DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
		if err != nil || len(groups.LogGroups) != 0 {
			t.Errorf("another account lists %v (%v)", groups, err)
		}
		_, err = lc.GetLogEvents(ctx(t), &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
			LogStreamName: aws.String(stream)})
		wantAPIError(t, "GetLogEvents from another account", err, 400, "ResourceNotFoundException")
	})

	// The user CLI prints the same events.
	env := []string{"KINDLING_ENDPOINT=" + srv.url, "KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID,
		"KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey}
	stdout, stderr, code := runCLI(t, env, "logs", name, "--since", "1h")
	if code != 0 || !strings.Contains(stdout, " "+stream+" gamma ERROR three\n") || !strings.Contains(stdout, "END RequestId: "+ids[4]+"\n") {
		t.Errorf("kindling logs: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// TestLogsFollow runs `kindling logs NAME --follow` and sees an invocation
// made after it started.
func TestLogsFollow(t *testing.T) {
	requireServer(t)
	t.Parallel()
	const name = "e2e-cwlogs-follow"
	createFunction(t, name, fnSpec{})
	cmd := exec.Command(kindlingBin, "logs", name, "--follow", "--since", "1m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "KINDLING_ENDPOINT=" + srv.url,
		"KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID, "KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey}
	followLines(t, cmd, func() {
		invoke(t, name, map[string]any{"op": "log", "lines": []string{"followed line"}})
	}, "followed line", "REPORT RequestId: ")
}

// followLines starts cmd, runs act, and waits for each of wants to appear
// in order in cmd's stdout; then it kills cmd.
func followLines(t *testing.T, cmd *exec.Cmd, act func(), wants ...string) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	got := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got <- sc.Text()
		}
		close(got)
		io.Copy(io.Discard, stdout)
	}()
	act()
	timeout := time.After(time.Minute)
	var saw []string
	for _, want := range wants {
		for found := false; !found; {
			select {
			case l, ok := <-got:
				if !ok {
					t.Fatalf("%v exited before printing %q; printed %q; stderr: %s", cmd.Args, want, saw, stderr.String())
				}
				saw = append(saw, l)
				found = strings.Contains(l, want)
			case <-timeout:
				t.Fatalf("%v did not print %q within a minute; printed %q; stderr: %s", cmd.Args, want, saw, stderr.String())
			}
		}
	}
}

// TestLogsRetentionAndRestart runs its own server: logs survive a restart,
// and on a server whose clock runs 50,000 times faster (a day lasts 1.7 s)
// a one-day retention expires them, in the API and in the stored bytes.
func TestLogsRetentionAndRestart(t *testing.T) {
	requireServer(t)
	t.Parallel()
	dir := filepath.Join(workDir, "logs-retention")
	creds := cli.Credentials{AccessKeyID: "AKIDE2ELOGS" + strings.ToUpper(randomHex(4)), SecretAccessKey: randomHex(20)}
	s, err := startServer(dir, &creds)
	if err != nil {
		t.Fatalf("starting a server: %v", err)
	}
	const name = "e2e-logs-retention"
	group := "/aws/lambda/" + name
	if _, err := s.client().CreateFunction(ctx(t), createInput(name, fnSpec{})); err != nil {
		s.stop()
		t.Fatalf("CreateFunction: %s", describe(err))
	}
	waitActive(t, s.client(), name)
	inv := invokeOn(t, s, name, map[string]any{"op": "log", "lines": []string{"kept across a restart"}})
	id := parseReport(t, inv.logs).requestID
	find := func(c *cloudwatchlogs.Client) (bool, string) {
		out, err := c.FilterLogEvents(ctx(t), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group),
			FilterPattern: aws.String(`"RequestId: ` + id + `"`)})
		if err != nil {
			return false, describe(err)
		}
		return len(out.Events) == 3, fmt.Sprintf("%d events of the invocation (START, END, REPORT wanted)", len(out.Events))
	}
	waitLogs(t, 30*time.Second, "the invocation's logs", func() (bool, string) { return find(s.logsClient()) })
	if err := s.stop(); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}

	s, err = startServer(dir, &creds, "--time-scale", "0.00002")
	if err != nil {
		t.Fatalf("restarting the server: %v", err)
	}
	defer func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping the restarted server: %v", err)
		}
	}()
	c := s.logsClient()
	// Without retention nothing expires, however fast the clock.
	if ok, saw := find(c); !ok {
		t.Fatalf("after the restart: %s", saw)
	}
	if _, err := c.PutRetentionPolicy(ctx(t), &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(group),
		RetentionInDays: aws.Int32(1)}); err != nil {
		t.Fatal(describe(err))
	}
	waitLogs(t, 30*time.Second, "expiry after a (scaled) day", func() (bool, string) {
		out, err := c.FilterLogEvents(ctx(t), &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
		if err != nil {
			return false, describe(err)
		}
		dg, err := c.DescribeLogGroups(ctx(t), &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
		if err != nil {
			return false, describe(err)
		}
		if len(dg.LogGroups) != 1 {
			return false, fmt.Sprintf("%d groups", len(dg.LogGroups))
		}
		g := dg.LogGroups[0]
		return len(out.Events) == 0 && aws.ToInt64(g.StoredBytes) == 0 && aws.ToInt32(g.RetentionInDays) == 1,
			fmt.Sprintf("%d events, %d bytes stored, retention %d", len(out.Events), aws.ToInt64(g.StoredBytes), aws.ToInt32(g.RetentionInDays))
	})
}

// awsCLIv2 finds an AWS CLI v2 (`aws logs tail` is v2 only; Debian's
// awscli package is v2), or skips saying how to get one.
func awsCLIv2(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/aws", "/usr/local/bin/aws"}
	if p, err := exec.LookPath("aws"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), "aws-cli/2.") {
			return p
		}
	}
	t.Skip("no AWS CLI v2 (`aws logs tail` needs v2): install it with apt-get install awscli")
	return ""
}

// awsEnv is the environment of an AWS CLI talking to srv and nothing else.
func awsEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + srv.creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey,
		"AWS_DEFAULT_REGION=" + region, "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true"}
}

// TestAWSCLILogs runs scripts/awscli-logs-smoke.sh (aws lambda invoke, aws
// logs tail, filter-log-events, describe-log-streams, retention) and `aws
// logs tail --follow` against the server.
func TestAWSCLILogs(t *testing.T) {
	requireServer(t)
	aws2 := awsCLIv2(t)
	t.Parallel()
	// The script deploys the function itself (create-function from the
	// zip), invokes it both ways, reads its logs, and deletes it.
	const name = "e2e-awscli-logs"
	zip := filepath.Join(t.TempDir(), "behave.zip")
	if err := os.WriteFile(zip, zips["behave"], 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(moduleRoot, "scripts", "awscli-smoke.sh"))
	cmd.Env = append(awsEnv(t), "AWS_CLI="+aws2, "ENDPOINT="+srv.url, "FUNCTION="+name, "ZIP="+zip)
	if sandboxBackend() == "gvisor" {
		cmd.Env = append(cmd.Env, "SNAPSTART=1")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("awscli-smoke.sh: %v\n%s", err, out)
	}
	t.Logf("awscli-smoke.sh:\n%s", out)
	createFunction(t, name, fnSpec{})

	follow := exec.Command(aws2, "--endpoint-url", srv.url, "logs", "tail", "/aws/lambda/"+name, "--follow", "--since", "1m", "--format", "short")
	// The CLI does not flush after each event: unbuffered, so that the
	// events reach the pipe as they are printed.
	follow.Env = append(awsEnv(t), "PYTHONUNBUFFERED=1")
	followLines(t, follow, func() {
		invoke(t, name, map[string]any{"op": "log", "lines": []string{"seen by aws logs tail --follow"}})
	}, "seen by aws logs tail --follow", "REPORT RequestId: ")
}

// TestBoto3 drives the server with Debian's boto3, unmodified, through
// scripts/boto3-smoke.py: deploy, publish, alias, sync and async invoke,
// logs.
func TestBoto3(t *testing.T) {
	requireServer(t)
	if err := exec.Command("/usr/bin/python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("no boto3 for /usr/bin/python3: install it with apt-get install python3-boto3 (make test does)")
	}
	t.Parallel()
	zip := filepath.Join(t.TempDir(), "behave.zip")
	if err := os.WriteFile(zip, zips["behave"], 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", filepath.Join(moduleRoot, "scripts", "boto3-smoke.py"))
	cmd.Env = append(awsEnv(t), "ENDPOINT="+srv.url, "FUNCTION=e2e-boto3", "ZIP="+zip)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3-smoke.py: %v\n%s", err, out)
	}
	t.Logf("boto3-smoke.py:\n%s", out)
}
