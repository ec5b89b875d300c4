package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// snapAnswer is what testdata/functions/snapstart returns.
type snapAnswer struct {
	Events      []string `json:"events"`
	InitType    string   `json:"initType"`
	InitNonce   string   `json:"initNonce"`
	InitSum     string   `json:"initSum"`
	Sum         string   `json:"sum"`
	RestoreRand string   `json:"restoreRand"`
	Getrandom   string   `json:"getrandom"`
	Urandom     string   `json:"urandom"`
	FilledMB    int      `json:"filledMB"`
}

// createSnapStart creates a SnapStart function running testdata's snapstart
// with env, and publishes version 1 of it.
func createSnapStart(t *testing.T, name string, env map[string]string) *lambda.PublishVersionOutput {
	t.Helper()
	c := srv.client()
	in := createInput(name, fnSpec{code: "snapstart", memory: 512, env: env})
	in.SnapStart = &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}
	if _, err := c.CreateFunction(ctx(t), in); err != nil {
		t.Fatalf("CreateFunction %s: %s", name, describe(err))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log lines about %s:\n  %s", name, strings.Join(srv.logLinesAbout(name, 40), "\n  "))
		}
		c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
	})
	waitActive(t, c, name)
	got, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunction: %s", describe(err))
	}
	if ss := got.Configuration.SnapStart; ss == nil || ss.ApplyOn != types.SnapStartApplyOnPublishedVersions || ss.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("$LATEST SnapStart = %+v, want ApplyOn PublishedVersions, OptimizationStatus Off", ss)
	}
	v, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("PublishVersion: %s", describe(err))
	}
	return v
}

// waitVersion waits for version 1 of name to leave Pending.
func waitVersion(t *testing.T, name string) *lambda.GetFunctionConfigurationOutput {
	t.Helper()
	c := srv.client()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, err := c.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{
			FunctionName: aws.String(name), Qualifier: aws.String("1")})
		if err != nil {
			t.Fatalf("GetFunctionConfiguration %s:1: %s", name, describe(err))
		}
		if got.State != types.StatePending || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// snapshotFiles lists the files of the snapshots kept by the shared server.
func snapshotFiles(t *testing.T, name string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(srv.dataDir, "snapshots")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+name+string(filepath.Separator)) {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// snapshotListed reports whether `kindling snapshots` output has a row for
// version 1 of name with a non-zero size.
func snapshotListed(out, name string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[0] == name && f[1] == "1" && f[3] != "0" {
			return true
		}
	}
	return false
}

func requireSnapStart(t *testing.T) {
	t.Helper()
	requireServer(t)
	if sandboxBackend() != "gvisor" {
		t.Skip("SnapStart needs gVisor sandboxes (checkpoint/restore); this run uses " + sandboxBackend() +
			" (TestSnapStartProcessBackend covers it); make test runs the suite on gVisor too")
	}
}

// TestSnapStart publishes a SnapStart version whose init is slow and holds
// memory, then starts two clones of its snapshot at once.
func TestSnapStart(t *testing.T) {
	requireSnapStart(t)
	t.Parallel()
	name := "snapstart-" + runID
	v := createSnapStart(t, name, map[string]string{"INIT_SLEEP_MS": "400", "INIT_FILL_MB": "32"})
	if v.State != types.StatePending {
		t.Errorf("PublishVersion State = %s, want Pending until the snapshot is made", v.State)
	}
	if ss := v.SnapStart; ss == nil || ss.OptimizationStatus != types.SnapStartOptimizationStatusOn {
		t.Errorf("PublishVersion SnapStart = %+v, want OptimizationStatus On", ss)
	}
	// The waiter Lambda's SDK offers for versions.
	c := srv.client()
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx(t), &lambda.GetFunctionInput{
		FunctionName: aws.String(name), Qualifier: aws.String("1")}, 3*time.Minute); err != nil {
		t.Fatalf("function-active-v2 on version 1: %s", describe(err))
	}
	if files := snapshotFiles(t, name); len(files) == 0 {
		t.Errorf("no snapshot files of %s under the data directory", name)
	}
	// Disk use is visible: kindling snapshots (root credentials).
	out, errOut, code := runCLI(t, []string{"KINDLING_ENDPOINT=" + srv.url,
		"KINDLING_ACCESS_KEY_ID=" + srv.creds.AccessKeyID, "KINDLING_SECRET_ACCESS_KEY=" + srv.creds.SecretAccessKey}, "snapshots")
	if code != 0 || !snapshotListed(out, name) {
		t.Errorf("kindling snapshots (exit %d) does not list %s version 1 with its size:\n%s%s", code, name, out, errOut)
	}

	// Two clones at once.
	var wg sync.WaitGroup
	answers := make([]snapAnswer, 2)
	invs := make([]*invocation, 2)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invs[i] = invoke(t, name+":1", map[string]int{"sleep_ms": 500})
			invs[i].decode(t, &answers[i])
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, a := range answers {
		want := []string{"init", "before-snapshot", "after-restore", "invoke"}
		if !slices.Equal(a.Events, want) {
			t.Errorf("clone %d: events %v, want %v (hooks in order, init once, before the snapshot)", i, a.Events, want)
		}
		if a.InitType != "snap-start" || a.FilledMB != 32 {
			t.Errorf("clone %d: initType %q filledMB %d, want snap-start and 32", i, a.InitType, a.FilledMB)
		}
		if a.Sum != a.InitSum || a.Sum == "" {
			t.Errorf("clone %d: memory filled at init reads %s now, %s at init", i, a.Sum, a.InitSum)
		}
		logs := invs[i].logs
		if !strings.Contains(logs, "Restore Duration: ") || !strings.Contains(logs, "Billed Restore Duration: ") || strings.Contains(logs, "Init Duration") {
			t.Errorf("clone %d: REPORT should carry Restore Duration and no Init Duration:\n%s", i, logs)
		}
	}
	a, b := answers[0], answers[1]
	if a.InitNonce != b.InitNonce {
		t.Errorf("init state differs between clones (%s, %s): they did not start from one snapshot", a.InitNonce, b.InitNonce)
	}
	if a.Getrandom == b.Getrandom || a.Urandom == b.Urandom || a.RestoreRand == b.RestoreRand {
		t.Errorf("clones read the same random bytes: getrandom %s/%s urandom %s/%s after-restore %s/%s",
			a.Getrandom, b.Getrandom, a.Urandom, b.Urandom, a.RestoreRand, b.RestoreRand)
	}

	// Warm reuse after restore: no restore, no init.
	inv := invoke(t, name+":1", map[string]string{})
	var warm snapAnswer
	inv.decode(t, &warm)
	if n := len(warm.Events); n < 5 || warm.Events[n-1] != "invoke" || slices.Contains(warm.Events[4:], "after-restore") {
		t.Errorf("warm invoke events %v, want a reused clone", warm.Events)
	}
	if strings.Contains(inv.logs, "Restore Duration") || strings.Contains(inv.logs, "Init Duration") {
		t.Errorf("warm invoke reports a restore or init:\n%s", inv.logs)
	}

	// An alias to the version starts from the same snapshot.
	if _, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String(name),
		Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatalf("CreateAlias: %s", describe(err))
	}
	var viaAlias snapAnswer
	invoke(t, name+":live", map[string]string{}).decode(t, &viaAlias)
	if viaAlias.InitNonce != a.InitNonce {
		t.Errorf("alias invoke: init nonce %s, want the snapshot's %s", viaAlias.InitNonce, a.InitNonce)
	}

	// Deleting the version deletes its snapshot.
	if _, err := c.DeleteAlias(ctx(t), &lambda.DeleteAliasInput{FunctionName: aws.String(name), Name: aws.String("live")}); err != nil {
		t.Fatalf("DeleteAlias: %s", describe(err))
	}
	if _, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("DeleteFunction %s:1: %s", name, describe(err))
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(snapshotFiles(t, name)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if files := snapshotFiles(t, name); len(files) > 0 {
		t.Errorf("snapshot files left after the version was deleted: %v", files)
	}
}

// TestSnapStartCorruptSnapshot damages a snapshot: the version still
// serves, by a normal cold start, and the server reports it.
func TestSnapStartCorruptSnapshot(t *testing.T) {
	requireSnapStart(t)
	t.Parallel()
	name := "snapcorrupt-" + runID
	createSnapStart(t, name, map[string]string{"INIT_FILL_MB": "8"})
	if got := waitVersion(t, name); got.State != types.StateActive {
		t.Fatalf("version 1 is %s (%s), want Active", got.State, aws.ToString(got.StateReason))
	}
	files := snapshotFiles(t, name)
	var biggest string
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > size && !strings.HasSuffix(f, ".json") {
			biggest, size = f, st.Size()
		}
	}
	if biggest == "" {
		t.Fatalf("no snapshot image files for %s: %v", name, files)
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	f.ReadAt(buf, size/2)
	buf[0] ^= 0xff
	if _, err := f.WriteAt(buf, size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	inv := invoke(t, name+":1", map[string]string{})
	var a snapAnswer
	inv.decode(t, &a)
	if slices.Contains(a.Events, "after-restore") || a.InitType != "on-demand" {
		t.Errorf("events %v initType %q: a corrupt snapshot must not be restored", a.Events, a.InitType)
	}
	if !strings.Contains(inv.logs, "Init Duration") || strings.Contains(inv.logs, "Restore Duration") {
		t.Errorf("fallback cold start should report Init Duration:\n%s", inv.logs)
	}
	if lines := srv.logLinesAbout("snapshot not used", 5); len(lines) == 0 {
		t.Errorf("the server did not report the unusable snapshot")
	}

	// The damaged snapshot is replaced: once a new one exists, cold
	// starts restore again. Two invokes at once, each keeping its
	// environment busy: the fallback environment serves one, a new one the
	// other.
	damaged := filepath.Dir(biggest)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		fresh := false
		for _, f := range snapshotFiles(t, name) {
			fresh = fresh || (filepath.Dir(f) != damaged && strings.HasSuffix(f, ".kindling-manifest.json"))
		}
		if fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new snapshot of %s 2 minutes after the damaged one was found: %v", name, snapshotFiles(t, name))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wg sync.WaitGroup
	restored := make([]bool, 2)
	for i := range restored {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a snapAnswer
			invoke(t, name+":1", map[string]int{"sleep_ms": 500}).decode(t, &a)
			restored[i] = slices.Contains(a.Events, "after-restore")
		}()
	}
	wg.Wait()
	if !restored[0] && !restored[1] {
		t.Errorf("after the snapshot was remade, no new environment started by restore")
	}
}

// TestSnapStartHookFailures: a failing before-snapshot hook fails the
// version; a failing after-restore hook fails the invoke with
// SnapStartException.
func TestSnapStartHookFailures(t *testing.T) {
	requireSnapStart(t)
	t.Parallel()
	before := "snapbefore-" + runID
	createSnapStart(t, before, map[string]string{"HOOK_FAIL": "before"})
	after := "snapafter-" + runID
	createSnapStart(t, after, map[string]string{"HOOK_FAIL": "after"})

	got := waitVersion(t, before)
	if got.State != types.StateFailed || got.StateReasonCode == "" || aws.ToString(got.StateReason) == "" {
		t.Errorf("version with a failing before-snapshot hook: State %s, reason %q (%s); want Failed with a reason",
			got.State, aws.ToString(got.StateReason), got.StateReasonCode)
	}
	if _, err := invokeRaw(t, srv.client(), before+":1", []byte(`{}`)); err == nil {
		t.Errorf("invoking a Failed SnapStart version succeeded")
	}
	if _, err := srv.client().DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String(before), Qualifier: aws.String("1")}); err != nil {
		t.Errorf("deleting a Failed version: %s", describe(err))
	}

	if got := waitVersion(t, after); got.State != types.StateActive {
		t.Fatalf("version 1 of %s is %s (%s), want Active", after, got.State, aws.ToString(got.StateReason))
	}
	_, err := invokeRaw(t, srv.client(), after+":1", []byte(`{}`))
	wantAPIError(t, "invoke with a failing after-restore hook", err, 400, "SnapStartException")
}

// TestSnapStartProcessBackend: process sandboxes cannot be snapshotted;
// SnapStart versions say so and start normally.
func TestSnapStartProcessBackend(t *testing.T) {
	requireServer(t)
	if sandboxBackend() != "process" {
		t.Skip("checks the process backend; this run uses " + sandboxBackend())
	}
	t.Parallel()
	name := "snapoff-" + runID
	v := createSnapStart(t, name, map[string]string{"INIT_FILL_MB": "1"})
	if v.State != types.StateActive {
		t.Errorf("PublishVersion State = %s, want Active (no snapshot to make)", v.State)
	}
	if ss := v.SnapStart; ss == nil || ss.ApplyOn != types.SnapStartApplyOnPublishedVersions || ss.OptimizationStatus != types.SnapStartOptimizationStatusOff {
		t.Errorf("PublishVersion SnapStart = %+v, want PublishedVersions and Off", ss)
	}
	var a snapAnswer
	inv := invoke(t, name+":1", map[string]string{})
	inv.decode(t, &a)
	if a.InitType != "on-demand" || slices.Contains(a.Events, "before-snapshot") {
		t.Errorf("process backend: %+v, want an on-demand init", a)
	}
	if !strings.Contains(inv.logs, "Init Duration") {
		t.Errorf("no Init Duration:\n%s", inv.logs)
	}
	if lines := srv.logLinesAbout("the version uses normal cold starts", 5); len(lines) == 0 {
		t.Errorf("the server did not say SnapStart is unavailable")
	}
}

// TestSnapStartRestart: snapshots survive a server restart (verified again,
// then restored), and a version whose snapshot was still being made when
// the server stopped is made at the next start.
func TestSnapStartRestart(t *testing.T) {
	requireSnapStart(t)
	t.Parallel()
	dir := filepath.Join(workDir, "snaprestart")
	s, err := startServer(dir, nil)
	if err != nil {
		t.Fatalf("starting a server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLog(os.Stderr, 60)
		}
	})
	const name = "e2e-snaprestart"
	c := s.client()
	in := createInput(name, fnSpec{code: "snapstart", memory: 512, env: map[string]string{"INIT_FILL_MB": "8", "INIT_SLEEP_MS": "300"}})
	in.SnapStart = &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}
	if _, err := c.CreateFunction(ctx(t), in); err != nil {
		t.Fatalf("CreateFunction: %s", describe(err))
	}
	waitActive(t, c, name)
	publish := func() string {
		v, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatalf("PublishVersion: %s", describe(err))
		}
		return aws.ToString(v.Version)
	}
	v1 := publish()
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx(t), &lambda.GetFunctionInput{
		FunctionName: aws.String(name), Qualifier: aws.String(v1)}, 3*time.Minute); err != nil {
		t.Fatalf("version %s: %s", v1, describe(err))
	}
	// Version 2 differs (a 3 s init), and the server stops while its
	// snapshot is being made.
	in.Environment.Variables["INIT_SLEEP_MS"] = "3000"
	if _, err := c.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(name), Environment: in.Environment}); err != nil {
		t.Fatalf("UpdateFunctionConfiguration: %s", describe(err))
	}
	waitUpdated(t, c, name)
	v2 := publish()
	if err := s.stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}

	s2, err := startServer(dir, nil)
	if err != nil {
		t.Fatalf("restarting on the same data dir: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s2.dumpLog(os.Stderr, 60)
		}
		if err := s2.stop(); err != nil {
			t.Errorf("stopping the restarted server: %v", err)
		}
	})
	c2 := s2.client()
	if lines := s2.logLinesAbout("resuming the snapshot of a pending version", 5); len(lines) != 1 {
		t.Errorf("the restarted server should resume version %s's snapshot once; its log says: %q", v2, lines)
	}
	for _, v := range []string{v1, v2} {
		if err := lambda.NewFunctionActiveV2Waiter(c2).Wait(ctx(t), &lambda.GetFunctionInput{
			FunctionName: aws.String(name), Qualifier: aws.String(v)}, 3*time.Minute); err != nil {
			t.Fatalf("version %s after the restart: %s", v, describe(err))
		}
		var a snapAnswer
		inv := invokeOn(t, s2, name+":"+v, map[string]string{})
		inv.decode(t, &a)
		if !slices.Contains(a.Events, "after-restore") || !strings.Contains(inv.logs, "Restore Duration") {
			t.Errorf("version %s after the restart did not start by restore: %v\n%s", v, a.Events, inv.logs)
		}
	}
}
