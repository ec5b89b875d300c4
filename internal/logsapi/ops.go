package logsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"kindling/internal/logs"
)

type handler func(a *API, r *request) (any, error)

var handlers = map[string]handler{
	"DescribeLogGroups":     (*API).describeLogGroups,
	"DescribeLogStreams":    (*API).describeLogStreams,
	"GetLogEvents":          (*API).getLogEvents,
	"FilterLogEvents":       (*API).filterLogEvents,
	"PutRetentionPolicy":    (*API).putRetentionPolicy,
	"DeleteRetentionPolicy": (*API).deleteRetentionPolicy,
	"CreateLogGroup":        (*API).createLogGroup,
	"DeleteLogGroup":        (*API).deleteLogGroup,
}

// decode parses the JSON body into v. Unknown members are ignored, as
// AWS services do for members of newer API versions.
func decode(r *request, v any) error {
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return &apiError{400, "SerializationException", "The request body is not valid JSON for this operation: " + shorten(err.Error())}
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func required(name, v string) error {
	if v == "" {
		return invalid(fmt.Sprintf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", name))
	}
	return nil
}

// limit checks an optional limit in [1, max] and returns it (max when
// absent).
func limit(v *int, max int) (int, error) {
	if v == nil {
		return max, nil
	}
	if *v < 1 || *v > max {
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", *v, max))
	}
	return *v, nil
}

func nonNegative(name string, v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 {
		return 0, invalid(fmt.Sprintf("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to 0", *v, name))
	}
	return *v, nil
}

// groupName takes logGroupName, or logGroupIdentifier (a name or an ARN of
// this region and account).
func (a *API) groupName(r *request, name, ident string) (string, error) {
	if name != "" && ident != "" {
		return "", invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	}
	if ident != "" {
		if rest, ok := strings.CutPrefix(ident, "arn:aws:logs:"); ok {
			prefix := a.cfg.Region + ":" + r.account + ":log-group:"
			n, ok := strings.CutPrefix(rest, prefix)
			if !ok {
				return "", &apiError{400, "ResourceNotFoundException", "The specified log group does not exist."}
			}
			return strings.TrimSuffix(n, ":*"), nil
		}
		name = ident
	}
	return name, required("logGroupName", name)
}

func (a *API) groupARN(account, name string) string {
	return "arn:aws:logs:" + a.cfg.Region + ":" + account + ":log-group:" + name
}

type logGroup struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	RetentionInDays   *int   `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	Arn               string `json:"arn"`
	LogGroupArn       string `json:"logGroupArn"`
	StoredBytes       int64  `json:"storedBytes"`
	LogGroupClass     string `json:"logGroupClass"`
}

func (a *API) describeLogGroups(r *request) (any, error) {
	var in struct {
		LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
		LogGroupNamePattern string `json:"logGroupNamePattern"`
		NextToken           string `json:"nextToken"`
		Limit               *int   `json:"limit"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	n, err := limit(in.Limit, logs.MaxDescribeLimit)
	if err != nil {
		return nil, err
	}
	if in.LogGroupNamePrefix != "" && in.LogGroupNamePattern != "" {
		return nil, invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	var groups []logs.GroupInfo
	var next string
	if in.LogGroupNamePattern != "" {
		// A case-insensitive substring anywhere in the name: filter
		// page by page until a page has something or the end.
		tok := in.NextToken
		for {
			page, nt, err := a.cfg.Store.ListGroups(r.account, "", tok, n)
			if err != nil {
				return nil, err
			}
			for _, g := range page {
				if strings.Contains(strings.ToLower(g.Name), strings.ToLower(in.LogGroupNamePattern)) {
					groups = append(groups, g)
				}
			}
			next, tok = nt, nt
			if nt == "" || len(groups) > 0 {
				break
			}
		}
	} else {
		groups, next, err = a.cfg.Store.ListGroups(r.account, in.LogGroupNamePrefix, in.NextToken, n)
		if err != nil {
			return nil, err
		}
	}
	out := struct {
		LogGroups []logGroup `json:"logGroups"`
		NextToken string     `json:"nextToken,omitempty"`
	}{LogGroups: []logGroup{}, NextToken: next}
	for _, g := range groups {
		lg := logGroup{LogGroupName: g.Name, CreationTime: g.CreationTime, Arn: a.groupARN(r.account, g.Name) + ":*",
			LogGroupArn: a.groupARN(r.account, g.Name), StoredBytes: g.StoredBytes, LogGroupClass: "STANDARD"}
		if g.RetentionDays > 0 {
			lg.RetentionInDays = &g.RetentionDays
		}
		out.LogGroups = append(out.LogGroups, lg)
	}
	return out, nil
}

type logStream struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp *int64 `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  *int64 `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   int64  `json:"lastIngestionTime"`
	Arn                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

func (a *API) describeLogStreams(r *request) (any, error) {
	var in struct {
		LogGroupName        string `json:"logGroupName"`
		LogGroupIdentifier  string `json:"logGroupIdentifier"`
		LogStreamNamePrefix string `json:"logStreamNamePrefix"`
		OrderBy             string `json:"orderBy"`
		Descending          bool   `json:"descending"`
		NextToken           string `json:"nextToken"`
		Limit               *int   `json:"limit"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	group, err := a.groupName(r, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	n, err := limit(in.Limit, logs.MaxDescribeLimit)
	if err != nil {
		return nil, err
	}
	if in.OrderBy != "" && in.OrderBy != "LogStreamName" && in.OrderBy != "LastEventTime" {
		return nil, invalid(fmt.Sprintf("1 validation error detected: Value '%s' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]", shorten(in.OrderBy)))
	}
	streams, next, err := a.cfg.Store.ListStreams(r.account, group, logs.StreamQuery{
		Prefix: in.LogStreamNamePrefix, OrderByLastEvent: in.OrderBy == "LastEventTime", Descending: in.Descending,
		Limit: n, Token: in.NextToken,
	})
	if err != nil {
		return nil, err
	}
	out := struct {
		LogStreams []logStream `json:"logStreams"`
		NextToken  string      `json:"nextToken,omitempty"`
	}{LogStreams: []logStream{}, NextToken: next}
	for _, s := range streams {
		ls := logStream{LogStreamName: s.Name, CreationTime: s.CreationTime, LastIngestionTime: s.LastIngestion,
			Arn: a.groupARN(r.account, group) + ":log-stream:" + s.Name, StoredBytes: s.StoredBytes}
		if s.HasEvents {
			ls.FirstEventTimestamp, ls.LastEventTimestamp = &s.FirstEvent, &s.LastEvent
		}
		out.LogStreams = append(out.LogStreams, ls)
	}
	return out, nil
}

type outputEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

func (a *API) getLogEvents(r *request) (any, error) {
	var in struct {
		LogGroupName       string `json:"logGroupName"`
		LogGroupIdentifier string `json:"logGroupIdentifier"`
		LogStreamName      string `json:"logStreamName"`
		StartTime          *int64 `json:"startTime"`
		EndTime            *int64 `json:"endTime"`
		NextToken          string `json:"nextToken"`
		Limit              *int   `json:"limit"`
		StartFromHead      bool   `json:"startFromHead"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	group, err := a.groupName(r, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if err := required("logStreamName", in.LogStreamName); err != nil {
		return nil, err
	}
	q := logs.GetQuery{FromHead: in.StartFromHead, Token: in.NextToken}
	if q.Limit, err = limit(in.Limit, logs.MaxEventsLimit); err != nil {
		return nil, err
	}
	if q.Start, err = nonNegative("startTime", in.StartTime); err != nil {
		return nil, err
	}
	if q.End, err = nonNegative("endTime", in.EndTime); err != nil {
		return nil, err
	}
	res, err := a.cfg.Store.GetEvents(r.account, group, in.LogStreamName, q)
	if err != nil {
		return nil, err
	}
	out := struct {
		Events            []outputEvent `json:"events"`
		NextForwardToken  string        `json:"nextForwardToken"`
		NextBackwardToken string        `json:"nextBackwardToken"`
	}{Events: make([]outputEvent, 0, len(res.Events)), NextForwardToken: res.Forward, NextBackwardToken: res.Backward}
	for _, e := range res.Events {
		out.Events = append(out.Events, outputEvent{Timestamp: e.Timestamp, Message: e.Message, IngestionTime: e.Ingestion})
	}
	return out, nil
}

type filteredEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

func (a *API) filterLogEvents(r *request) (any, error) {
	var in struct {
		LogGroupName        string   `json:"logGroupName"`
		LogGroupIdentifier  string   `json:"logGroupIdentifier"`
		LogStreamNames      []string `json:"logStreamNames"`
		LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
		StartTime           *int64   `json:"startTime"`
		EndTime             *int64   `json:"endTime"`
		FilterPattern       string   `json:"filterPattern"`
		NextToken           string   `json:"nextToken"`
		Limit               *int     `json:"limit"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	group, err := a.groupName(r, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 100 {
		return nil, invalid("1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100")
	}
	q := logs.FilterQuery{Streams: in.LogStreamNames, StreamPrefix: in.LogStreamNamePrefix, Token: in.NextToken}
	if q.Limit, err = limit(in.Limit, logs.MaxEventsLimit); err != nil {
		return nil, err
	}
	if q.Start, err = nonNegative("startTime", in.StartTime); err != nil {
		return nil, err
	}
	if q.End, err = nonNegative("endTime", in.EndTime); err != nil {
		return nil, err
	}
	if q.Pattern, err = logs.ParsePattern(in.FilterPattern); err != nil {
		return nil, err
	}
	events, next, err := a.cfg.Store.Filter(r.account, group, q)
	if err != nil {
		return nil, err
	}
	out := struct {
		Events    []filteredEvent `json:"events"`
		NextToken string          `json:"nextToken,omitempty"`
	}{Events: make([]filteredEvent, 0, len(events)), NextToken: next}
	for _, e := range events {
		out.Events = append(out.Events, filteredEvent{LogStreamName: e.Stream, Timestamp: e.Timestamp, Message: e.Message,
			IngestionTime: e.Ingestion, EventID: e.ID()})
	}
	return out, nil
}

type empty struct{}

func (a *API) putRetentionPolicy(r *request) (any, error) {
	var in struct {
		LogGroupName    string `json:"logGroupName"`
		RetentionInDays *int   `json:"retentionInDays"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := required("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	if in.RetentionInDays == nil {
		return nil, required("retentionInDays", "")
	}
	return empty{}, a.cfg.Store.PutRetention(r.account, in.LogGroupName, *in.RetentionInDays)
}

func (a *API) deleteRetentionPolicy(r *request) (any, error) {
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := required("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return empty{}, a.cfg.Store.DeleteRetention(r.account, in.LogGroupName)
}

func (a *API) createLogGroup(r *request) (any, error) {
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := required("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return empty{}, a.cfg.Store.CreateGroup(r.account, in.LogGroupName)
}

func (a *API) deleteLogGroup(r *request) (any, error) {
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := required("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return empty{}, a.cfg.Store.DeleteGroup(r.account, in.LogGroupName)
}
