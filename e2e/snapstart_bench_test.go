package e2e

// SnapStart's benchmarks of docs/benchmarks.md (issue 5), on a gvisor
// server of their own at time scale 1 (Lambda's real init limit):
//
//	go test ./e2e -run '^$' -bench SnapStart -benchtime 1x -timeout 60m
//
//   - BenchmarkSnapStartRestore/vs-cold: testdata's snapstart function with
//     a 2 s init that fills 64 MiB, MemorySize 1769. Each sample updates
//     the configuration (retiring every environment), invokes $LATEST (a
//     cold start: init runs) and publishes a version, waits for its
//     snapshot, and invokes the version (a restore). Nothing is ever
//     pre-created: every invoke measured finds no environment. First-response
//     latency of the SDK's Invoke for both, and their ratio.
//   - BenchmarkSnapStartRestore/size: the same function with no init sleep,
//     filling 64 MiB and 256 MiB, the same 1 MiB working set per invoke:
//     restore latency of fresh versions at both sizes, and their ratio.

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// snapBench is a SnapStart function on a benchmark server.
type snapBench struct {
	bb   *benchBackend
	name string
	env  map[string]string
}

func newSnapBench(b *testing.B, bb *benchBackend, name string, env map[string]string) *snapBench {
	b.Helper()
	in := createInput(name, fnSpec{code: "snapstart", memory: 1769, timeout: 30, env: env})
	in.SnapStart = &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions}
	if _, err := bb.c.CreateFunction(context.Background(), in); err != nil {
		b.Fatalf("CreateFunction %s: %s", name, describe(err))
	}
	if err := lambda.NewFunctionActiveV2Waiter(bb.c).Wait(context.Background(),
		&lambda.GetFunctionInput{FunctionName: aws.String(name)}, time.Minute); err != nil {
		b.Fatal(err)
	}
	sb := &snapBench{bb: bb, name: name, env: map[string]string{}}
	for k, v := range in.Environment.Variables {
		sb.env[k] = v
	}
	return sb
}

// update changes the configuration (sample i): every environment of the
// function is retired, and the next version differs.
func (sb *snapBench) update(b *testing.B, i int) {
	b.Helper()
	sb.env["SAMPLE"] = strconv.Itoa(i)
	if _, err := sb.bb.c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(sb.name), Environment: &types.Environment{Variables: sb.env},
	}); err != nil {
		b.Fatal(describe(err))
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(sb.bb.c).Wait(context.Background(),
		&lambda.GetFunctionInput{FunctionName: aws.String(sb.name)}, time.Minute); err != nil {
		b.Fatal(err)
	}
}

// publish publishes a version and waits for its snapshot.
func (sb *snapBench) publish(b *testing.B) string {
	b.Helper()
	v, err := sb.bb.c.PublishVersion(context.Background(), &lambda.PublishVersionInput{FunctionName: aws.String(sb.name)})
	if err != nil {
		b.Fatal(describe(err))
	}
	if err := lambda.NewFunctionActiveV2Waiter(sb.bb.c).Wait(context.Background(), &lambda.GetFunctionInput{
		FunctionName: aws.String(sb.name), Qualifier: v.Version}, 5*time.Minute); err != nil {
		b.Fatalf("version %s: %v", aws.ToString(v.Version), err)
	}
	return aws.ToString(v.Version)
}

// drop deletes a measured version, and with it its environments and
// snapshot, so that environments of earlier samples do not fill the worker.
func (sb *snapBench) drop(b *testing.B, version string) {
	b.Helper()
	if _, err := sb.bb.c.DeleteFunction(context.Background(), &lambda.DeleteFunctionInput{
		FunctionName: aws.String(sb.name), Qualifier: aws.String(version)}); err != nil {
		b.Fatal(describe(err))
	}
}

// invoke invokes qualifier and returns the latency and the log tail.
func (sb *snapBench) invoke(b *testing.B, qualifier string) (time.Duration, string) {
	b.Helper()
	fn := sb.name
	if qualifier != "" {
		fn += ":" + qualifier
	}
	t := time.Now()
	out, err := sb.bb.c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn),
		Payload: []byte(`{}`), LogType: types.LogTypeTail})
	d := time.Since(t)
	if err != nil {
		b.Fatalf("Invoke %s: %s", fn, describe(err))
	}
	if out.FunctionError != nil {
		b.Fatalf("Invoke %s: %s", fn, out.Payload)
	}
	logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	return d, string(logs)
}

func BenchmarkSnapStartRestore(b *testing.B) {
	requireBenchServer(b)
	bb := startBenchServer(b, "gvisor", "--time-scale", "1")
	const samples = 7

	b.Run("vs-cold", func(b *testing.B) {
		sb := newSnapBench(b, bb, "bench-snapcold", map[string]string{"INIT_SLEEP_MS": "2000", "INIT_FILL_MB": "64"})
		var cold, restore []time.Duration
		for range b.N {
			for i := range samples {
				sb.update(b, i)
				d, logs := sb.invoke(b, "")
				if !strings.Contains(logs, "Init Duration") {
					b.Fatalf("$LATEST after an update was not a cold start:\n%s", logs)
				}
				cold = append(cold, d)
				v := sb.publish(b)
				d, logs = sb.invoke(b, v)
				if !strings.Contains(logs, "Restore Duration") {
					b.Fatalf("version %s did not start by restore:\n%s", v, logs)
				}
				restore = append(restore, d)
				sb.drop(b, v)
			}
		}
		c, r := percentile(cold, .5), percentile(restore, .5)
		b.ReportMetric(us(c)/1000, "cold-p50-ms")
		b.ReportMetric(us(r)/1000, "restore-p50-ms")
		b.ReportMetric(float64(c)/float64(r), "cold/restore")
		b.Logf("init 2 s, 64 MiB: cold start p50 %.1f ms, restore p50 %.1f ms (%.1fx), %d samples each",
			us(c)/1000, us(r)/1000, float64(c)/float64(r), len(cold))
	})

	b.Run("size", func(b *testing.B) {
		sizes := []int{64, 256}
		fns := make([]*snapBench, len(sizes))
		for k, mb := range sizes {
			fns[k] = newSnapBench(b, bb, fmt.Sprintf("bench-snapsize-%d", mb), map[string]string{"INIT_FILL_MB": strconv.Itoa(mb)})
		}
		res := make([][]time.Duration, len(sizes))
		for range b.N {
			for i := range samples {
				for k, sb := range fns {
					sb.update(b, i)
					v := sb.publish(b)
					d, logs := sb.invoke(b, v)
					if !strings.Contains(logs, "Restore Duration") {
						b.Fatalf("version %s did not start by restore:\n%s", v, logs)
					}
					res[k] = append(res[k], d)
					sb.drop(b, v)
				}
			}
		}
		for k, mb := range sizes {
			b.ReportMetric(us(percentile(res[k], .5))/1000, fmt.Sprintf("restore-%dMiB-p50-ms", mb))
		}
		ratio := float64(percentile(res[1], .5)) / float64(percentile(res[0], .5))
		b.ReportMetric(ratio, "256/64")
		b.Logf("restore p50: 64 MiB %.1f ms, 256 MiB %.1f ms (%.2fx), %d samples each",
			us(percentile(res[0], .5))/1000, us(percentile(res[1], .5))/1000, ratio, len(res[0]))
	})
}
