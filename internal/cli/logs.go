package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// logsPollInterval is how often `logs --follow` asks for new events.
var logsPollInterval = time.Second

// logsClient builds a CloudWatch Logs client for g, like client.
func (g *globals) logsClient() (*cloudwatchlogs.Client, error) {
	file := g.credentialsFile
	if file == "" {
		file = filepath.Join(g.dataDir, "credentials")
	}
	creds, err := loadCredentials(g.getenv, file)
	if err != nil {
		return nil, err
	}
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		Region:       g.region,
		BaseEndpoint: aws.String(g.endpoint),
		Credentials: aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")),
	}), nil
}

// cmdLogs prints a function's log events (log group /aws/lambda/NAME) from
// --since ago, one per line as "TIME STREAM MESSAGE", and with --follow
// keeps polling FilterLogEvents for new ones until interrupted, as `aws
// logs tail --follow` does: each poll starts at the newest timestamp seen,
// and events already printed at that timestamp are skipped by eventId.
func cmdLogs(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs", g, stderr)
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	since := fs.Duration("since", 10*time.Minute, "print events from this long ago")
	pattern := fs.String("filter", "", "CloudWatch Logs filter `PATTERN` (terms, \"phrases\", ?any, -none)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(pos, 1, "NAME"); err != nil {
		return err
	}
	if *since < 0 {
		return fmt.Errorf("%w: --since must not be negative", errUsage)
	}
	c, err := g.logsClient()
	if err != nil {
		return err
	}
	group := "/aws/lambda/" + pos[0]
	start := time.Now().Add(-*since).UnixMilli()
	// seen holds the ids of the events printed at timestamp start.
	seen := map[string]bool{}
	for {
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), StartTime: aws.Int64(start)}
		if *pattern != "" {
			in.FilterPattern = pattern
		}
		p := cloudwatchlogs.NewFilterLogEventsPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			var nf *types.ResourceNotFoundException
			if errors.As(err, &nf) && *follow {
				break // no logs yet: the group appears with the first event
			}
			if err != nil {
				return err
			}
			for _, e := range out.Events {
				ts, id := aws.ToInt64(e.Timestamp), aws.ToString(e.EventId)
				if ts < start || (ts == start && seen[id]) {
					continue
				}
				if ts > start {
					start = ts
					clear(seen)
				}
				seen[id] = true
				fmt.Fprintf(stdout, "%s %s %s\n", time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z"),
					aws.ToString(e.LogStreamName), strings.TrimRight(aws.ToString(e.Message), "\n"))
			}
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logsPollInterval):
		}
	}
}
