package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func TestZipDirKeepsModesAndLayout(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bootstrap"), "#!/bin/sh\necho hi\n", 0o755)
	writeFile(t, filepath.Join(dir, "lib", "data.txt"), "data", 0o644)
	if err := os.Symlink("lib/data.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	data, err := ZipDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*zip.File{}
	var names []string
	for _, f := range zr.File {
		got[f.Name] = f
		names = append(names, f.Name)
	}
	if want := "bootstrap,lib/,lib/data.txt,link"; strings.Join(names, ",") != want {
		t.Fatalf("entries = %v, want %s", names, want)
	}
	bs := got["bootstrap"]
	if bs.CreatorVersion>>8 != 3 {
		t.Errorf("bootstrap creator = %d, want Unix (3)", bs.CreatorVersion>>8)
	}
	if mode := bs.ExternalAttrs >> 16; mode&0o777 != 0o755 || mode&0o170000 != 0o100000 {
		t.Errorf("bootstrap external mode = %o, want regular 0755", mode)
	}
	if m := bs.Mode(); m.Perm() != 0o755 || !m.IsRegular() {
		t.Errorf("bootstrap Mode() = %v", m)
	}
	if m := got["lib/data.txt"].Mode(); m.Perm() != 0o644 {
		t.Errorf("data.txt Mode() = %v", m)
	}
	if !got["lib/"].Mode().IsDir() {
		t.Errorf("lib/ is not a directory entry: %v", got["lib/"].Mode())
	}
	rc, err := got["link"].Open()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(rc)
	rc.Close()
	if string(content) != "data" {
		t.Errorf("symlink entry content = %q, want the target's", content)
	}

	again, err := ZipDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Error("zipping the same tree twice gave different bytes")
	}
}

func TestZipDirRefusesLinksOut(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "s", 0o600)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bootstrap"), "x", 0o755)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := ZipDir(dir); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("ZipDir with a link out = %v, want an 'outside' error", err)
	}
}

func TestReadPackage(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fn", "bootstrap"), "x", 0o755)
	zipped, err := ReadPackage(filepath.Join(dir, "fn"))
	if err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, zipped, 0o644); err != nil {
		t.Fatal(err)
	}
	fromFile, err := ReadPackage(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromFile, zipped) {
		t.Error("a .zip is not passed through unchanged")
	}
	notZip := filepath.Join(dir, "bootstrap.txt")
	writeFile(t, notZip, "plain", 0o644)
	if _, err := ReadPackage(notZip); err == nil {
		t.Error("ReadPackage accepted a file that is not a zip")
	}
	if _, err := ReadPackage(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadPackage accepted a missing path")
	}
}

func TestParseCredentialsFile(t *testing.T) {
	const file = `# written by kindling
[default]
aws_access_key_id = DEFAULTKEY
aws_secret_access_key = defaultsecret

[kindling]
aws_access_key_id=AKIDKINDLING
 AWS_SECRET_ACCESS_KEY  =  s3cr3t/with+chars=
; comment
region = us-east-1

[profile other]
aws_access_key_id = OTHER
aws_secret_access_key = othersecret
`
	for _, tc := range []struct {
		profile string
		want    Credentials
	}{
		{"kindling", Credentials{"AKIDKINDLING", "s3cr3t/with+chars="}},
		{"default", Credentials{"DEFAULTKEY", "defaultsecret"}},
		{"other", Credentials{"OTHER", "othersecret"}},
	} {
		got, err := ParseCredentialsFile(strings.NewReader(file), tc.profile)
		if err != nil {
			t.Errorf("profile %s: %v", tc.profile, err)
			continue
		}
		if got != tc.want {
			t.Errorf("profile %s = %+v, want %+v", tc.profile, got, tc.want)
		}
	}

	for name, bad := range map[string]string{
		"missing profile": "[default]\naws_access_key_id=a\naws_secret_access_key=b\n",
		"missing secret":  "[kindling]\naws_access_key_id=a\n",
		"bad header":      "[kindling\naws_access_key_id=a\n",
		"bad line":        "[kindling]\njunk\n",
		"empty":           "",
	} {
		if got, err := ParseCredentialsFile(strings.NewReader(bad), "kindling"); err == nil {
			t.Errorf("%s: accepted, got %+v", name, got)
		}
	}
}

func TestLoadCredentialsEnvOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, path, "[kindling]\naws_access_key_id=FILEKEY\naws_secret_access_key=filesecret\n", 0o600)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	got, err := loadCredentials(getenv, path)
	if err != nil || got != (Credentials{"FILEKEY", "filesecret"}) {
		t.Fatalf("from file: %+v, %v", got, err)
	}
	env["KINDLING_ACCESS_KEY_ID"], env["KINDLING_SECRET_ACCESS_KEY"] = "ENVKEY", "envsecret"
	got, err = loadCredentials(getenv, path)
	if err != nil || got != (Credentials{"ENVKEY", "envsecret"}) {
		t.Fatalf("from env: %+v, %v", got, err)
	}
	delete(env, "KINDLING_SECRET_ACCESS_KEY")
	if _, err := loadCredentials(getenv, path); err == nil {
		t.Error("half-set environment accepted")
	}
	delete(env, "KINDLING_ACCESS_KEY_ID")
	if _, err := loadCredentials(getenv, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestParseDeployInterleaved(t *testing.T) {
	g := defaultGlobals(func(string) string { return "" })
	o, err := parseDeploy(g, []string{
		"--memory", "256", "fn", "--env", "A=1", "./dir", "--env=B=x=y",
		"--timeout=10", "--endpoint", "http://h:1",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.name != "fn" || o.path != "./dir" {
		t.Errorf("positional = %q %q", o.name, o.path)
	}
	if o.memory != 256 || o.timeout != 10 || o.runtime != "provided.al2023" || o.handler != "bootstrap" {
		t.Errorf("options = %+v", o)
	}
	if len(o.env) != 2 || o.env["A"] != "1" || o.env["B"] != "x=y" {
		t.Errorf("env = %v", o.env)
	}
	if !o.set["memory"] || !o.set["timeout"] || !o.set["env"] || o.set["runtime"] || o.set["handler"] {
		t.Errorf("set = %v", o.set)
	}
	if g.endpoint != "http://h:1" {
		t.Errorf("global --endpoint after the command not applied: %q", g.endpoint)
	}

	for _, bad := range [][]string{
		{"fn"},
		{"fn", "dir", "extra"},
		{"fn", "dir", "--env", "NOEQUALS"},
		{"fn", "dir", "--memory", "lots"},
		{"fn", "dir", "--bogus"},
	} {
		if _, err := parseDeploy(g, bad, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("parseDeploy(%q) = %v, want a usage error", bad, err)
		}
	}
	o, err = parseDeploy(g, []string{"--", "-fn", "dir"}, io.Discard)
	if err != nil || o.name != "-fn" {
		t.Errorf("after --: %+v, %v", o, err)
	}
}

func TestParseInvokePayload(t *testing.T) {
	g := defaultGlobals(func(string) string { return "" })
	o, err := parseInvoke(g, []string{"fn"}, io.Discard)
	if err != nil || string(o.payload) != "{}" || o.noLogs {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	o, err = parseInvoke(g, []string{"fn", "--payload", `{"a":1}`, "--no-logs"}, io.Discard)
	if err != nil || string(o.payload) != `{"a":1}` || !o.noLogs || o.name != "fn" {
		t.Fatalf("inline: %+v, %v", o, err)
	}
	file := filepath.Join(t.TempDir(), "event.json")
	writeFile(t, file, `{"from":"file"}`, 0o644)
	o, err = parseInvoke(g, []string{"--payload", "@" + file, "fn"}, io.Discard)
	if err != nil || string(o.payload) != `{"from":"file"}` {
		t.Fatalf("@file: %+v, %v", o, err)
	}
	if _, err := parseInvoke(g, []string{"fn", "--payload", "@/nonexistent/x"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("missing @file: %v", err)
	}
	if _, err := parseInvoke(g, []string{}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("no name: %v", err)
	}
}

func TestGlobalDefaultsFromEnv(t *testing.T) {
	env := map[string]string{"KINDLING_ENDPOINT": "http://e:2", "KINDLING_DATA_DIR": "/d"}
	g := defaultGlobals(func(k string) string { return env[k] })
	if g.endpoint != "http://e:2" || g.dataDir != "/d" || g.region != "us-east-1" {
		t.Errorf("globals = %+v", g)
	}
	g = defaultGlobals(func(string) string { return "" })
	if g.endpoint != defaultEndpoint || g.dataDir != defaultDataDir {
		t.Errorf("defaults = %+v", g)
	}
}

func TestRunUsageErrors(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, args := range [][]string{{}, {"frobnicate"}, {"--nope"}, {"invoke"}, {"delete", "a", "b"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, getenv, &out, &errb); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, getenv, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "deploy NAME PATH") {
		t.Errorf("help = %d, %q", code, out.String())
	}
}

// TestRunInvokeAgainstFakeAPI checks the invoke command's output contract
// against a stand-in for the Lambda Invoke API: payload on stdout, decoded
// log tail on stderr, exit status 1 on a function error, and a SigV4
// signature made with the file's credentials.
func TestRunInvokeAgainstFakeAPI(t *testing.T) {
	var sawAuth, sawBody, sawLogType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sawAuth, sawBody, sawLogType = r.Header.Get("Authorization"), string(body), r.Header.Get("X-Amz-Log-Type")
		if r.URL.Path != "/2015-03-31/functions/fn/invocations" {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			io.WriteString(w, `{"Type":"User","message":"Function not found: `+r.URL.Path+`"}`)
			return
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		if sawLogType == "Tail" {
			w.Header().Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte("START RequestId: 1 Version: $LATEST\nhello log\n")))
		}
		if strings.Contains(sawBody, "fail") {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			io.WriteString(w, `{"errorMessage":"boom","errorType":"behaveError"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	dataDir := t.TempDir()
	writeFile(t, filepath.Join(dataDir, "credentials"), "[kindling]\naws_access_key_id=AKIDTEST\naws_secret_access_key=secret\n", 0o600)
	getenv := func(string) string { return "" }
	base := []string{"--endpoint", srv.URL, "--data-dir", dataDir}

	var out, errb bytes.Buffer
	code := run(context.Background(), append(base, "invoke", "fn", "--payload", `{"x":1}`), getenv, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != "{\"ok\":true}\n" {
		t.Errorf("stdout = %q", out.String())
	}
	if !strings.Contains(errb.String(), "hello log") {
		t.Errorf("stderr lacks the log tail: %q", errb.String())
	}
	if !strings.Contains(sawAuth, "Credential=AKIDTEST/") || !strings.Contains(sawAuth, "/us-east-1/lambda/aws4_request") {
		t.Errorf("Authorization = %q", sawAuth)
	}
	if sawBody != `{"x":1}` || sawLogType != "Tail" {
		t.Errorf("request body %q, log type %q", sawBody, sawLogType)
	}

	out.Reset()
	errb.Reset()
	code = run(context.Background(), append(base, "invoke", "fn", "--no-logs", "--payload", `{"fail":1}`), getenv, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "behaveError") || sawLogType == "Tail" {
		t.Errorf("function error: exit %d, stdout %q, log type %q", code, out.String(), sawLogType)
	}

	// --credentials names another file; it wins over DATA_DIR/credentials.
	other := filepath.Join(t.TempDir(), "creds")
	writeFile(t, other, "[kindling]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=s2\n", 0o600)
	code = run(context.Background(), append(base, "invoke", "fn", "--credentials", other), getenv, io.Discard, io.Discard)
	if code != 0 || !strings.Contains(sawAuth, "Credential=AKIDOTHER/") {
		t.Errorf("--credentials: exit %d, Authorization %q", code, sawAuth)
	}

	out.Reset()
	errb.Reset()
	code = run(context.Background(), append(base, "invoke", "missing"), getenv, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "ResourceNotFoundException") {
		t.Errorf("missing function: exit %d, stderr %q", code, errb.String())
	}
}
