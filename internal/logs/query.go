package logs

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"kindling/internal/errdefs"
)

// Limits of the paginated calls, as CloudWatch Logs has them.
const (
	MaxDescribeLimit = 50
	MaxEventsLimit   = 10000
	// maxResponseBytes caps the events of one GetLogEvents or
	// FilterLogEvents answer, as CloudWatch Logs does (1 MB).
	maxResponseBytes = 1 << 20
)

// GroupInfo describes a log group.
type GroupInfo struct {
	Name          string
	CreationTime  int64
	RetentionDays int // 0: never expire
	StoredBytes   int64
}

// ListGroups returns account's groups whose names start with prefix, in
// name order, at most limit (1-50) after the position token (from a
// previous call; "" to start). next is "" on the last page.
func (s *Store) ListGroups(account, prefix, token string, limit int) (groups []GroupInfo, next string, err error) {
	var after string
	if token != "" {
		p, err := decodeCursor(token, 1)
		if err != nil {
			return nil, "", err
		}
		after = p[0]
	}
	s.mu.RLock()
	for k, g := range s.groups {
		if k.account == account && strings.HasPrefix(k.name, prefix) && (token == "" || k.name > after) {
			groups = append(groups, GroupInfo{Name: k.name, CreationTime: g.created, RetentionDays: g.retention, StoredBytes: g.bytes})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(groups, func(a, b GroupInfo) int { return strings.Compare(a.Name, b.Name) })
	if len(groups) > limit {
		groups = groups[:limit]
		next = encodeCursor(groups[limit-1].Name)
	}
	return groups, next, nil
}

// StreamInfo describes a log stream. The event times are those of its
// events still kept; HasEvents is false when retention has hidden them all.
type StreamInfo struct {
	Name                  string
	CreationTime          int64
	FirstEvent, LastEvent int64
	LastIngestion         int64
	StoredBytes           int64
	HasEvents             bool
}

// StreamQuery selects and orders DescribeLogStreams' answer.
type StreamQuery struct {
	Prefix           string
	OrderByLastEvent bool
	Descending       bool
	Limit            int // 1-50
	Token            string
}

// ListStreams lists a group's streams.
func (s *Store) ListStreams(account, groupName string, q StreamQuery) (streams []StreamInfo, next string, err error) {
	if q.OrderByLastEvent && q.Prefix != "" {
		return nil, "", fmt.Errorf("%w: Cannot order by LastEventTime with a logStreamNamePrefix.", errdefs.ErrInvalid)
	}
	now := s.now()
	s.mu.RLock()
	g := s.groups[groupKey{account, groupName}]
	if g == nil {
		s.mu.RUnlock()
		return nil, "", errNoGroup
	}
	cut := s.cutoff(g, now)
	for _, st := range g.streams {
		if !strings.HasPrefix(st.name, q.Prefix) {
			continue
		}
		info := StreamInfo{Name: st.name, CreationTime: st.created, LastIngestion: st.lastIngest, StoredBytes: st.bytes}
		if live := visible(st, cut); len(live) > 0 {
			info.HasEvents = true
			info.FirstEvent, info.LastEvent = live[0].Timestamp, live[len(live)-1].Timestamp
		}
		streams = append(streams, info)
	}
	s.mu.RUnlock()
	// key orders the streams; the cursor is the key of the last one sent.
	key := func(i StreamInfo) string { return i.Name }
	if q.OrderByLastEvent {
		key = func(i StreamInfo) string { return fmt.Sprintf("%020d\x01%s", i.LastEvent, i.Name) }
	}
	slices.SortFunc(streams, func(a, b StreamInfo) int {
		c := strings.Compare(key(a), key(b))
		if q.Descending {
			c = -c
		}
		return c
	})
	if q.Token != "" {
		p, err := decodeCursor(q.Token, 1)
		if err != nil {
			return nil, "", err
		}
		i := sort.Search(len(streams), func(i int) bool {
			if q.Descending {
				return key(streams[i]) < p[0]
			}
			return key(streams[i]) > p[0]
		})
		streams = streams[i:]
	}
	if len(streams) > q.Limit {
		streams = streams[:q.Limit]
		next = encodeCursor(key(streams[q.Limit-1]))
	}
	return streams, next, nil
}

// visible returns st's events not past retention (cut from cutoff).
func visible(st *stream, cut int64) []Event {
	live := st.live()
	if cut == 0 {
		return live
	}
	return live[sort.Search(len(live), func(i int) bool { return live[i].Timestamp >= cut }):]
}

// timeRange returns the part of events (sorted by timestamp) with start <=
// timestamp < end; 0 leaves a side open.
func timeRange(events []Event, start, end int64) []Event {
	if start > 0 {
		events = events[sort.Search(len(events), func(i int) bool { return events[i].Timestamp >= start }):]
	}
	if end > 0 {
		events = events[:sort.Search(len(events), func(i int) bool { return events[i].Timestamp >= end })]
	}
	return events
}

// GetQuery is GetLogEvents' request.
type GetQuery struct {
	Start, End int64 // ms; 0 = open
	Limit      int   // 1-10000
	FromHead   bool
	Token      string
}

// GetResult is GetLogEvents' answer.
type GetResult struct {
	Events            []Event
	Forward, Backward string
}

// GetEvents reads one stream, as GetLogEvents does: a page of up to Limit
// events (and at most 1 MB) from the head, the tail, or a token's position;
// the tokens of the next pages, which are the ones passed in when there is
// nothing new in their direction.
func (s *Store) GetEvents(account, groupName, streamName string, q GetQuery) (GetResult, error) {
	var tok streamToken
	hasTok := q.Token != ""
	if hasTok {
		var err error
		if tok, err = parseStreamToken(q.Token); err != nil {
			return GetResult{}, err
		}
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[groupKey{account, groupName}]
	if g == nil {
		return GetResult{}, errNoGroup
	}
	st := g.streams[streamName]
	if st == nil {
		return GetResult{}, errNoStream
	}
	evs := timeRange(visible(st, s.cutoff(g, now)), q.Start, q.End)
	forward := q.FromHead
	if hasTok {
		forward = tok.forward
		i := sort.Search(len(evs), func(i int) bool { return evs[i].Seq >= tok.seq })
		if forward {
			evs = evs[i:]
		} else {
			evs = evs[:i]
		}
	}
	var page []Event
	if forward {
		page = takeHead(evs, q.Limit)
	} else {
		page = takeTail(evs, q.Limit)
	}
	var res GetResult
	res.Events = slices.Clone(page)
	switch {
	case len(page) > 0:
		res.Forward = streamToken{forward: true, seq: page[len(page)-1].Seq + 1}.String()
		res.Backward = streamToken{seq: page[0].Seq}.String()
	case hasTok:
		res.Forward = streamToken{forward: true, seq: tok.seq}.String()
		res.Backward = streamToken{seq: tok.seq}.String()
	default:
		// An empty range: both tokens point where new events will come
		// (or, from the head, where the range starts).
		pos := st.nextSeq()
		if len(evs) > 0 {
			pos = evs[0].Seq
		}
		res.Forward = streamToken{forward: true, seq: pos}.String()
		res.Backward = streamToken{seq: pos}.String()
	}
	return res, nil
}

// nextSeq is a Seq past every event of st.
func (st *stream) nextSeq() uint64 {
	if live := st.live(); len(live) > 0 {
		return live[len(live)-1].Seq + 1
	}
	return 0
}

func takeHead(evs []Event, limit int) []Event {
	var bytes int64
	for i := range evs {
		bytes += evs[i].size()
		if i == limit || (bytes > maxResponseBytes && i > 0) {
			return evs[:i]
		}
	}
	return evs
}

func takeTail(evs []Event, limit int) []Event {
	var bytes int64
	for n := 0; n < len(evs); n++ {
		bytes += evs[len(evs)-1-n].size()
		if n == limit || (bytes > maxResponseBytes && n > 0) {
			return evs[len(evs)-n:]
		}
	}
	return evs
}

// FilterQuery is FilterLogEvents' request.
type FilterQuery struct {
	Streams      []string // only these streams (or all when empty)
	StreamPrefix string
	Start, End   int64 // ms; 0 = open
	Pattern      *Pattern
	Limit        int // 1-10000
	Token        string
}

// FilteredEvent is an event with its stream.
type FilteredEvent struct {
	Stream string
	Event
}

// Filter searches a group's streams for events matching the query, in
// timestamp order across streams. next is "" when there is no more now;
// events stored later, with later timestamps, are found by the same query
// with Start moved on (what `aws logs tail --follow` does).
func (s *Store) Filter(account, groupName string, q FilterQuery) (events []FilteredEvent, next string, err error) {
	if len(q.Streams) > 0 && q.StreamPrefix != "" {
		return nil, "", fmt.Errorf("%w: Cannot specify both logStreamNames and logStreamNamePrefix.", errdefs.ErrInvalid)
	}
	var cur filterCursor
	hasCur := q.Token != ""
	if hasCur {
		if cur, err = parseFilterCursor(q.Token); err != nil {
			return nil, "", err
		}
	}
	now := s.now()
	s.mu.RLock()
	g := s.groups[groupKey{account, groupName}]
	if g == nil {
		s.mu.RUnlock()
		return nil, "", errNoGroup
	}
	cut := s.cutoff(g, now)
	var selected []*stream
	if len(q.Streams) > 0 {
		for _, name := range q.Streams {
			if st := g.streams[name]; st != nil && !slices.Contains(selected, st) {
				selected = append(selected, st)
			}
		}
	} else {
		for _, st := range g.streams {
			if strings.HasPrefix(st.name, q.StreamPrefix) {
				selected = append(selected, st)
			}
		}
	}
	// Each stream is already in (timestamp, seq) order: take up to
	// Limit+1 matches of each, then merge.
	for _, st := range selected {
		evs := timeRange(visible(st, cut), max(q.Start, cur.ts), q.End)
		n := 0
		for i := range evs {
			e := &evs[i]
			if hasCur && !cur.after(e.Timestamp, e.Seq) {
				continue
			}
			if !q.Pattern.Match(e.Message) {
				continue
			}
			events = append(events, FilteredEvent{Stream: st.name, Event: *e})
			if n++; n > q.Limit {
				break
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(events, func(a, b FilteredEvent) int {
		if a.Timestamp != b.Timestamp {
			return cmpInt(a.Timestamp, b.Timestamp)
		}
		return cmpInt(a.Seq, b.Seq)
	})
	var bytes int64
	for i := range events {
		bytes += events[i].size()
		if i == q.Limit || (bytes > maxResponseBytes && i > 0) {
			events = events[:i]
			last := events[i-1]
			next = filterCursor{ts: last.Timestamp, seq: last.Seq}.String()
			break
		}
	}
	return events, next, nil
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// validGroupName checks a log group name as CloudWatch Logs does.
func validGroupName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("%w: Log group name must be 1 to 512 characters.", errdefs.ErrInvalid)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/#", c)) {
			return fmt.Errorf("%w: Log group name %s contains characters that are not allowed.", errdefs.ErrInvalid, strconv.Quote(name))
		}
	}
	return nil
}

// CreateGroup creates an empty group.
func (s *Store) CreateGroup(account, name string) error {
	if err := validGroupName(name); err != nil {
		return err
	}
	created := s.now().UnixMilli()
	s.mu.Lock()
	k := groupKey{account, name}
	if s.groups[k] != nil {
		s.mu.Unlock()
		return errExists
	}
	s.ensureGroup(k, created)
	s.mu.Unlock()
	if s.j != nil {
		return s.j.putGroup(groupMeta{Account: account, Group: name, Created: created})
	}
	return nil
}

// DeleteGroup deletes a group and all its events.
func (s *Store) DeleteGroup(account, name string) error {
	s.mu.Lock()
	k := groupKey{account, name}
	g := s.groups[k]
	if g == nil {
		s.mu.Unlock()
		return errNoGroup
	}
	for _, st := range g.streams {
		s.dropPrefix(st, len(st.live()))
	}
	delete(s.groups, k)
	s.mu.Unlock()
	if s.j == nil {
		return nil
	}
	if err := s.j.deleteGroup(account, name); err != nil {
		return err
	}
	return s.j.purgeGroup(account, name)
}

// PutRetention sets a group's retention in days (one of RetentionDays).
func (s *Store) PutRetention(account, name string, days int) error {
	if !slices.Contains(RetentionDays, days) {
		return fmt.Errorf("%w: 1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: %v",
			errdefs.ErrInvalid, days, RetentionDays)
	}
	return s.setRetention(account, name, days)
}

// DeleteRetention makes a group keep its events forever (within the
// store's budget).
func (s *Store) DeleteRetention(account, name string) error {
	return s.setRetention(account, name, 0)
}

func (s *Store) setRetention(account, name string, days int) error {
	s.mu.Lock()
	g := s.groups[groupKey{account, name}]
	if g == nil {
		s.mu.Unlock()
		return errNoGroup
	}
	g.retention = days
	meta := groupMeta{Account: account, Group: name, Created: g.created, Retention: days}
	s.mu.Unlock()
	if s.j != nil {
		return s.j.putGroup(meta)
	}
	return nil
}
