package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"kindling/internal/errdefs"
)

func TestParseVersion(t *testing.T) {
	for q, want := range map[string]int{"1": 1, "42": 42, "9007199254740991": 1<<53 - 1} {
		if n, ok := ParseVersion(q); !ok || n != want {
			t.Errorf("ParseVersion(%q) = %d, %v", q, n, ok)
		}
	}
	for _, q := range []string{"", "0", "01", "-1", "1a", "$LATEST", "prod", "9007199254740992", "99999999999999999999"} {
		if _, ok := ParseVersion(q); ok {
			t.Errorf("ParseVersion(%q) accepted", q)
		}
	}
	if !IsVersionQualifier("007") || IsVersionQualifier("$LATEST") || IsVersionQualifier("v1") || IsVersionQualifier("") {
		t.Error("IsVersionQualifier")
	}
}

func mustPublish(t *testing.T, st *Store, name string) (*Function, bool) {
	t.Helper()
	v, created, err := st.Publish(context.Background(), acct, name, PublishOptions{})
	if err != nil {
		t.Fatalf("publish %s: %v", name, err)
	}
	return v, created
}

func setMemory(t *testing.T, st *Store, name string, mb int) *Function {
	t.Helper()
	f, err := st.Update(context.Background(), acct, name, func(f *Function) error { f.MemoryMB = mb; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPublish(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	f := newFn("pub")
	if err := st.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(Event{Kind: EvReady}); err != nil {
		t.Fatal(err)
	}

	v1, created := mustPublish(t, st, "pub")
	if !created || v1.Version != "1" || v1.QualifiedARN() != "arn:aws:lambda:us-east-1:123456789012:function:pub:1" ||
		v1.State != StateActive || v1.LastUpdateStatus != UpdateSuccessful || v1.RevisionID == f.RevisionID ||
		v1.CodeSha256 != f.CodeSha256 || v1.Env["A"] != "1" || v1.LastVersion != 0 || v1.Tags != nil {
		t.Fatalf("v1 = %+v", v1)
	}
	latest, _ := st.Get(ctx, acct, "pub")
	if latest.LastVersion != 1 || latest.RevisionID == f.RevisionID || !latest.LastModified.Equal(f.LastModified) ||
		latest.ContentRevision != f.ContentRevision {
		t.Errorf("$LATEST after publish: %+v", latest)
	}

	// Nothing changed: the same version again.
	again, created := mustPublish(t, st, "pub")
	if created || again.Version != "1" || again.RevisionID != v1.RevisionID {
		t.Errorf("unchanged publish: created %v, %+v", created, again)
	}

	// A configuration change makes version 2; version 1 keeps its own.
	setMemory(t, st, "pub", 512)
	desc := "second"
	v2, created, err := st.Publish(ctx, acct, "pub", PublishOptions{Description: &desc})
	if err != nil || !created || v2.Version != "2" || v2.MemoryMB != 512 || v2.Description != "second" {
		t.Fatalf("v2 = %+v, %v", v2, err)
	}
	got1, err := st.GetVersion(ctx, acct, "pub", "1")
	if err != nil || got1.MemoryMB != 128 || got1.RevisionID != v1.RevisionID {
		t.Errorf("version 1 changed: %+v, %v", got1, err)
	}

	// A deleted number is never reused, even for unchanged content.
	if err := st.DeleteVersion(ctx, acct, "pub", "2"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteVersion(ctx, acct, "pub", "2"); err != nil {
		t.Errorf("deleting a deleted version: %v", err)
	}
	v3, created := mustPublish(t, st, "pub")
	if !created || v3.Version != "3" {
		t.Errorf("after deleting 2: %+v", v3)
	}

	// Preconditions run on $LATEST and abort.
	boom := errors.New("precondition")
	_, _, err = st.Publish(ctx, acct, "pub", PublishOptions{Check: func(l *Function) error {
		if l.Version != LatestVersion || l.LastVersion != 3 {
			t.Errorf("Check got %+v", l)
		}
		return boom
	}})
	if err != boom {
		t.Errorf("Check error: %v", err)
	}

	_, _, err = st.Publish(ctx, acct, "nope", PublishOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope") {
		t.Errorf("missing function: %v", err)
	}
	_, err = st.GetVersion(ctx, acct, "pub", "2")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:pub:2") {
		t.Errorf("deleted version: %v", err)
	}
}

// TestPublishConcurrent: concurrent update+publish pairs get distinct
// numbers, 1..n with none skipped (no crash in between).
func TestPublishConcurrent(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("race")); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	versions := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Update(ctx, acct, "race", func(f *Function) error { f.MemoryMB = 128 + i; return nil }); err != nil {
				errs[i] = err
				return
			}
			v, _, err := st.Publish(ctx, acct, "race", PublishOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			versions[i] = v.Version
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		seen[versions[i]]++
	}
	vs, _, err := st.ListVersions(ctx, acct, "race", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Publishes that found nothing new since another's return that one,
	// so there may be fewer versions than publishes, but every number
	// handed out exists once.
	if len(vs)-1 != len(seen) {
		t.Errorf("%d versions listed, %d distinct returned (%v)", len(vs)-1, len(seen), seen)
	}
	for i, v := range vs[1:] {
		if v.Version != fmt.Sprint(i+1) {
			t.Errorf("version %d is %q", i+1, v.Version)
		}
	}
}

func TestListVersions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("lv")); err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		setMemory(t, st, "lv", 200+i)
		mustPublish(t, st, "lv")
	}
	var got []string
	marker := ""
	for pages := 0; ; pages++ {
		vs, next, err := st.ListVersions(ctx, acct, "lv", marker, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			got = append(got, v.Version)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("does not end")
		}
		marker = next
	}
	if want := "$LATEST 1 2 3 4 5 6 7 8 9 10 11"; strings.Join(got, " ") != want {
		t.Errorf("listed %v, want %s", got, want)
	}
	if _, _, err := st.ListVersions(ctx, acct, "nope", "", 5); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing function: %v", err)
	}
}

func TestDeleteFunctionRemovesVersionsAndAliases(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("gone")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, st, "gone")
	if err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "gone", Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	err := st.DeleteVersion(ctx, acct, "gone", "1")
	if !errors.Is(err, errdefs.ErrConflict) || !strings.HasSuffix(err.Error(), "Unable to delete version because the following aliases reference it: [live]") {
		t.Errorf("delete aliased version: %v", err)
	}
	if err := st.Delete(ctx, acct, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, newFn("gone")); err != nil {
		t.Fatal(err)
	}
	vs, _, err := st.ListVersions(ctx, acct, "gone", "", 50)
	if err != nil || len(vs) != 1 {
		t.Errorf("versions of the new incarnation: %d, %v", len(vs), err)
	}
	as, _, err := st.ListAliases(ctx, acct, "gone", "", "", 50)
	if err != nil || len(as) != 0 {
		t.Errorf("aliases of the new incarnation: %d, %v", len(as), err)
	}
	if v, _ := mustPublish(t, st, "gone"); v.Version != "1" {
		t.Errorf("new incarnation's first version is %s", v.Version)
	}
}

func TestLookupQualified(t *testing.T) {
	ctx := context.Background()
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			st := openStore(t)
			defer st.Close()
			if err := st.Create(ctx, newFn("q")); err != nil {
				t.Fatal(err)
			}
			mustPublish(t, st, "q")
			setMemory(t, st, "q", 256)
			mustPublish(t, st, "q")
			a := &Alias{Account: acct, Function: "q", Name: "split", FunctionVersion: "1", Weights: map[string]float64{"2": 0.25}}
			if err := st.CreateAlias(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "q", Name: "edge", FunctionVersion: LatestVersion}); err != nil {
				t.Fatal(err)
			}
			if cached {
				st.Lookup(ctx, acct, "q") //nolint:errcheck // starts the cache
				waitLoaded(t, st)
			}
			for _, tc := range []struct {
				q       string
				u       float64
				version string
			}{
				{"", 0, LatestVersion}, {LatestVersion, 0, LatestVersion}, {"1", 0, "1"}, {"2", 0.9, "2"},
				{"split", 0, "2"}, {"split", 0.2499, "2"}, {"split", 0.25, "1"}, {"split", 0.99, "1"},
				{"edge", 0.5, LatestVersion},
			} {
				f, err := st.LookupQualified(ctx, acct, "q", tc.q, tc.u)
				if err != nil || f.Version != tc.version {
					t.Errorf("LookupQualified(%q, %v) = %v, %v; want version %s", tc.q, tc.u, f, err, tc.version)
				}
			}
			for _, q := range []string{"3", "0", "01", "nope", "a$b"} {
				_, err := st.LookupQualified(ctx, acct, "q", q, 0)
				want := "Function not found: arn:aws:lambda:us-east-1:123456789012:function:q:" + q
				if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), want) {
					t.Errorf("LookupQualified(%q): %v", q, err)
				}
			}
			// Deletions are seen at once (own writes).
			if err := st.DeleteAlias(ctx, acct, "q", "edge"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.LookupQualified(ctx, acct, "q", "edge", 0); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("deleted alias: %v", err)
			}
		})
	}
}

func TestGetQualified(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.Create(ctx, newFn("g")); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, st, "g")
	if err := st.CreateAlias(ctx, &Alias{Account: acct, Function: "g", Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	f, a, err := st.GetQualified(ctx, acct, "g", "live")
	if err != nil || f.Version != "1" || a == nil || a.Name != "live" {
		t.Errorf("alias: %+v %+v %v", f, a, err)
	}
	f, a, err = st.GetQualified(ctx, acct, "g", "")
	if err != nil || f.Version != LatestVersion || a != nil {
		t.Errorf("unqualified: %+v %+v %v", f, a, err)
	}
	for _, tc := range []struct{ name, q, msg string }{
		{"g", "dead", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:g:dead"},
		{"g", "7", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:g:7"},
		{"none", "$LATEST", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:none:$LATEST"},
		{"none", "live", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:none:live"},
	} {
		_, _, err := st.GetQualified(ctx, acct, tc.name, tc.q)
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.HasSuffix(err.Error(), tc.msg) {
			t.Errorf("%s:%s: %v", tc.name, tc.q, err)
		}
	}
}
