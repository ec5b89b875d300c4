package logs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/clock"
	"kindling/internal/errdefs"
	"kindling/internal/natsembed"
)

const (
	acct  = "000000000000"
	other = "111111111111"
	grp   = "/aws/lambda/fn"
	strm  = "2024/01/02/[$LATEST]0123456789abcdef0123456789abcdef"
)

// fakeNow is a settable wall clock.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func newStore(t *testing.T, cfg Config) (*Store, *fakeNow) {
	t.Helper()
	fn := &fakeNow{t: time.UnixMilli(1_700_000_000_000)}
	if cfg.Now == nil {
		cfg.Now = fn.now
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fn
}

func sync1(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func messages(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

func TestInvocationLines(t *testing.T) {
	s, fn := newStore(t, Config{})
	at := fn.now()
	s.Platform(acct, grp, strm, at, "START RequestId: r1 Version: $LATEST\n")
	s.Append(acct, grp, strm, at, []byte("hello\nwor"))
	s.Append(acct, grp, strm, at, []byte("ld\nunfinished"))
	s.Platform(acct, grp, strm, at, "END RequestId: r1\n")
	s.Platform(acct, grp, strm, at, "REPORT RequestId: r1\tDuration: 1.00 ms\t\n")
	sync1(t, s)
	res, err := s.GetEvents(acct, grp, strm, GetQuery{Limit: 100, FromHead: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"START RequestId: r1 Version: $LATEST\n", "hello\n", "world\n", "unfinished", "END RequestId: r1\n",
		"REPORT RequestId: r1\tDuration: 1.00 ms\t\n"}
	if got := messages(res.Events); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events = %q\nwant     %q", got, want)
	}
	for _, e := range res.Events {
		if e.Timestamp != at.UnixMilli() || e.Ingestion != at.UnixMilli() {
			t.Errorf("event %q at %d/%d, want %d", e.Message, e.Timestamp, e.Ingestion, at.UnixMilli())
		}
	}
}

func fill(t *testing.T, s *Store, fn *fakeNow, stream string, n int) {
	t.Helper()
	for i := range n {
		s.Append(acct, grp, stream, fn.now(), fmt.Appendf(nil, "line %d\n", i))
		fn.add(time.Millisecond)
	}
	sync1(t, s)
}

func TestGetEventsTokens(t *testing.T) {
	s, fn := newStore(t, Config{})
	fill(t, s, fn, strm, 25)
	get := func(q GetQuery) GetResult {
		t.Helper()
		q.Limit = 10
		r, err := s.GetEvents(acct, grp, strm, q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Forward from the head: 10, 10, 5, then the same token back.
	var got []string
	r := get(GetQuery{FromHead: true})
	for range 3 {
		got = append(got, messages(r.Events)...)
		r = get(GetQuery{Token: r.Forward})
	}
	if len(got) != 25 || got[0] != "line 0\n" || got[24] != "line 24\n" {
		t.Fatalf("forward pages: %q", got)
	}
	if len(r.Events) != 0 {
		t.Fatalf("past the end: %q", messages(r.Events))
	}
	end := r.Forward
	if r2 := get(GetQuery{Token: end}); r2.Forward != end || len(r2.Events) != 0 {
		t.Errorf("at the end: token %q -> %q, %d events", end, r2.Forward, len(r2.Events))
	}
	// New events show up behind that token.
	fill(t, s, fn, strm, 2)
	if r2 := get(GetQuery{Token: end}); len(r2.Events) != 2 || r2.Events[0].Message != "line 0\n" {
		t.Errorf("after appending: %q", messages(r2.Events))
	}
	// Default: the newest first page, then backward.
	r = get(GetQuery{})
	if m := messages(r.Events); len(m) != 10 || m[9] != "line 1\n" {
		t.Errorf("tail page: %q", m)
	}
	r = get(GetQuery{Token: r.Backward})
	if m := messages(r.Events); len(m) != 10 || m[0] != "line 7\n" || m[9] != "line 16\n" {
		t.Errorf("backward page: %q", m)
	}
	// Time range: [start, end).
	base := int64(1_700_000_000_000)
	r = get(GetQuery{FromHead: true, Start: base + 3, End: base + 6})
	if m := messages(r.Events); strings.Join(m, "") != "line 3\nline 4\nline 5\n" {
		t.Errorf("time range: %q", m)
	}
	if _, err := s.GetEvents(acct, grp, "nope", GetQuery{Limit: 1}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing stream: %v", err)
	}
	if _, err := s.GetEvents(acct, grp, strm, GetQuery{Limit: 1, Token: "zz"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad token: %v", err)
	}
}

func TestFilter(t *testing.T) {
	s, fn := newStore(t, Config{})
	// Two streams, interleaved in time.
	for i := range 20 {
		st := fmt.Sprintf("s%d", i%2)
		msg := fmt.Sprintf("event %d", i)
		if i%5 == 0 {
			msg += " ERROR"
		}
		s.Append(acct, grp, st, fn.now(), []byte(msg+"\n"))
		fn.add(time.Millisecond)
	}
	sync1(t, s)
	var all []FilteredEvent
	tok := ""
	for pages := 0; ; pages++ {
		evs, next, err := s.Filter(acct, grp, FilterQuery{Limit: 7, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("no end of pages")
		}
		tok = next
	}
	if len(all) != 20 {
		t.Fatalf("%d events, want 20", len(all))
	}
	for i, e := range all {
		if want := fmt.Sprintf("event %d", i); !strings.HasPrefix(e.Message, want) || e.Stream != fmt.Sprintf("s%d", i%2) {
			t.Errorf("event %d = %q in %s", i, e.Message, e.Stream)
		}
	}
	p, _ := ParsePattern("ERROR -15")
	evs, _, err := s.Filter(acct, grp, FilterQuery{Limit: 100, Pattern: p})
	if err != nil || len(evs) != 3 {
		t.Errorf("pattern: %d events, %v", len(evs), err)
	}
	evs, _, _ = s.Filter(acct, grp, FilterQuery{Limit: 100, Streams: []string{"s1"}})
	if len(evs) != 10 {
		t.Errorf("one stream: %d events", len(evs))
	}
	if _, _, err := s.Filter(other, grp, FilterQuery{Limit: 1}); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "not found: The specified log group does not exist." {
		t.Errorf("another account: %v", err)
	}
}

func TestListGroupsAndStreams(t *testing.T) {
	s, fn := newStore(t, Config{})
	for i := range 5 {
		s.Append(acct, fmt.Sprintf("/aws/lambda/f%d", i), "st", fn.now(), []byte("x\n"))
	}
	s.Append(other, "/aws/lambda/theirs", "st", fn.now(), []byte("x\n"))
	fill(t, s, fn, "b", 1)
	fill(t, s, fn, "a", 1)
	var names []string
	tok := ""
	for {
		gs, next, err := s.ListGroups(acct, "/aws/lambda/f", tok, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			names = append(names, g.Name)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if strings.Join(names, ",") != "/aws/lambda/f0,/aws/lambda/f1,/aws/lambda/f2,/aws/lambda/f3,/aws/lambda/f4,/aws/lambda/fn" {
		t.Errorf("groups: %q", names)
	}
	sts, _, err := s.ListStreams(acct, grp, StreamQuery{Limit: 50, OrderByLastEvent: true, Descending: true})
	if err != nil || len(sts) != 2 || sts[0].Name != "a" || !sts[0].HasEvents {
		t.Errorf("streams by last event: %+v, %v", sts, err)
	}
	sts, next, _ := s.ListStreams(acct, grp, StreamQuery{Limit: 1})
	if len(sts) != 1 || sts[0].Name != "a" || next == "" {
		t.Fatalf("first page: %+v %q", sts, next)
	}
	sts, next, _ = s.ListStreams(acct, grp, StreamQuery{Limit: 1, Token: next})
	if len(sts) != 1 || sts[0].Name != "b" || next != "" {
		t.Errorf("second page: %+v %q", sts, next)
	}
	if _, _, err := s.ListStreams(acct, grp, StreamQuery{Limit: 1, Prefix: "a", OrderByLastEvent: true}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("prefix with LastEventTime: %v", err)
	}
}

func TestBudgetEvictsOldestFirst(t *testing.T) {
	line := strings.Repeat("x", 100-EventOverhead-1) + "\n" // 100 bytes stored
	s, fn := newStore(t, Config{MaxBytes: 1000})
	for i := range 15 {
		s.Append(acct, fmt.Sprintf("/aws/lambda/g%d", i%3), "st", fn.now(), []byte(line))
		sync1(t, s) // one batch per line (the writer would gather them)
	}
	var total int64
	var kept []string
	for i := range 3 {
		gs, _, _ := s.ListGroups(acct, fmt.Sprintf("/aws/lambda/g%d", i), "", 50)
		total += gs[0].StoredBytes
		kept = append(kept, fmt.Sprint(gs[0].StoredBytes))
	}
	if total != 1000 {
		t.Errorf("stored %d bytes (%v), want the budget, 1000", total, kept)
	}
	// The five oldest batches (two of g0 and g1, one of g2) went.
	if strings.Join(kept, ",") != "300,300,400" {
		t.Errorf("per group: %v", kept)
	}
}

func TestRetention(t *testing.T) {
	// At scale 1e-6 a day is 86.4 ms.
	s, fn := newStore(t, Config{Clock: clock.Scaled(1e-6)})
	fill(t, s, fn, strm, 3)
	if err := s.PutRetention(acct, grp, 2); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("2 days: %v", err)
	}
	if err := s.PutRetention(other, grp, 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("another account's group: %v", err)
	}
	if err := s.PutRetention(acct, grp, 1); err != nil {
		t.Fatal(err)
	}
	fn.add(80 * time.Millisecond)
	if r, _ := s.GetEvents(acct, grp, strm, GetQuery{Limit: 10, FromHead: true}); len(r.Events) != 3 {
		t.Fatalf("before expiry: %d events", len(r.Events))
	}
	fn.add(10 * time.Millisecond)
	// Hidden at once, freed by the sweep.
	if r, _ := s.GetEvents(acct, grp, strm, GetQuery{Limit: 10, FromHead: true}); len(r.Events) != 0 {
		t.Errorf("after expiry: %d events", len(r.Events))
	}
	s.Sweep()
	gs, _, _ := s.ListGroups(acct, grp, "", 1)
	if len(gs) != 1 || gs[0].StoredBytes != 0 || gs[0].RetentionDays != 1 {
		t.Errorf("after the sweep: %+v", gs)
	}
	if _, err := s.GetEvents(acct, grp, strm, GetQuery{Limit: 1}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the emptied stream is gone: %v", err)
	}
}

func TestDropsWhenLagging(t *testing.T) {
	s, fn := newStore(t, Config{QueueBytes: 10})
	// The writer may take some; what does not fit is counted, never
	// blocked on.
	for range 1000 {
		s.Append(acct, grp, strm, fn.now(), []byte("0123456789\n"))
	}
	sync1(t, s)
	r, _ := s.GetEvents(acct, grp, strm, GetQuery{Limit: 10000, FromHead: true})
	if uint64(len(r.Events))+s.Dropped() != 1000 {
		t.Errorf("%d stored + %d dropped != 1000", len(r.Events), s.Dropped())
	}
}

func TestGroupsCreateDelete(t *testing.T) {
	s, fn := newStore(t, Config{})
	if err := s.CreateGroup(acct, "my/group"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(acct, "my/group"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("again: %v", err)
	}
	if err := s.CreateGroup(acct, "bad group"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	fill(t, s, fn, strm, 2)
	if err := s.DeleteGroup(acct, grp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Filter(acct, grp, FilterQuery{Limit: 1}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleted group: %v", err)
	}
}

func TestDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *natsembed.Server {
		ns, err := natsembed.Start(natsembed.Config{StoreDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	ns := start()
	s, fn := newStore(t, Config{JetStream: ns.JetStream(), Clock: clock.Scaled(1e-6)})
	fill(t, s, fn, strm, 5)
	fill(t, s, fn, "other", 5)
	if err := s.PutRetention(acct, grp, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(acct, "empty"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ns.Shutdown()

	ns = start()
	defer ns.Shutdown()
	s2, err := Open(context.Background(), Config{JetStream: ns.JetStream(), Now: fn.now, Clock: clock.Scaled(1e-6)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r, err := s2.GetEvents(acct, grp, strm, GetQuery{Limit: 100, FromHead: true})
	if err != nil || len(r.Events) != 5 || r.Events[4].Message != "line 4\n" {
		t.Fatalf("after restart: %q, %v", messages(r.Events), err)
	}
	gs, _, _ := s2.ListGroups(acct, "", "", 50)
	if len(gs) != 2 || gs[0].Name != grp || gs[0].RetentionDays != 3 || gs[1].Name != "empty" {
		t.Errorf("groups after restart: %+v", gs)
	}
	// New events get new ids.
	s2.Append(acct, grp, strm, fn.now(), []byte("after\n"))
	sync1(t, s2)
	r, _ = s2.GetEvents(acct, grp, strm, GetQuery{Limit: 100, FromHead: true})
	if len(r.Events) != 6 || r.Events[5].Seq <= r.Events[4].Seq {
		t.Errorf("appended after restart: %+v", r.Events)
	}
	// Expiry purges the journal too: a third start sees nothing of grp.
	fn.add(time.Second)
	s2.Sweep()
	s2.Close()
	ns.Shutdown()
	ns = start()
	defer ns.Shutdown()
	s3, err := Open(context.Background(), Config{JetStream: ns.JetStream(), Now: fn.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if evs, _, err := s3.Filter(acct, grp, FilterQuery{Limit: 100}); err != nil || len(evs) != 0 {
		t.Errorf("after expiry and restart: %d events, %v", len(evs), err)
	}
}
