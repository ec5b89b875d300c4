package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// errFunctionFailed is returned by invoke when the function itself failed
// (X-Amz-Function-Error set): the error document is already on stdout.
var errFunctionFailed = errors.New("function error")

// deployOptions are the flags of deploy; set records which were given, since
// only given ones change an existing function's configuration.
type deployOptions struct {
	name, path string
	runtime    string
	handler    string
	role       string
	memory     int
	timeout    int
	env        envFlag
	set        map[string]bool
}

func parseDeploy(g *globals, args []string, stderr io.Writer) (*deployOptions, error) {
	o := &deployOptions{env: envFlag{}, set: map[string]bool{}}
	fs := newFlagSet("deploy", g, stderr)
	fs.StringVar(&o.runtime, "runtime", "provided.al2023", "function `runtime`")
	fs.StringVar(&o.handler, "handler", "bootstrap", "function `handler`")
	fs.StringVar(&o.role, "role", "arn:aws:iam::000000000000:role/kindling-function", "execution role `ARN`")
	fs.IntVar(&o.memory, "memory", 128, "memory size in `MB`")
	fs.IntVar(&o.timeout, "timeout", 3, "timeout in `seconds`")
	fs.Var(o.env, "env", "environment variable `K=V` (repeatable; replaces the whole environment)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(pos, 2, "NAME PATH"); err != nil {
		return nil, err
	}
	o.name, o.path = pos[0], pos[1]
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

func cmdDeploy(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	o, err := parseDeploy(g, args, stderr)
	if err != nil {
		return err
	}
	code, err := ReadPackage(o.path)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()

	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(o.name)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return deployCreate(ctx, c, o, code, stdout)
	case err != nil:
		return err
	}
	return deployUpdate(ctx, c, o, code, stdout)
}

func deployCreate(ctx context.Context, c *lambda.Client, o *deployOptions, code []byte, stdout io.Writer) error {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(o.name),
		Runtime:      types.Runtime(o.runtime),
		Handler:      aws.String(o.handler),
		Role:         aws.String(o.role),
		MemorySize:   aws.Int32(int32(o.memory)),
		Timeout:      aws.Int32(int32(o.timeout)),
		Code:         &types.FunctionCode{ZipFile: code},
	}
	if len(o.env) > 0 {
		in.Environment = &types.Environment{Variables: o.env}
	}
	out, err := c.CreateFunction(ctx, in)
	if err != nil {
		return err
	}
	w := lambda.NewFunctionActiveV2Waiter(c)
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(o.name)}, commandTimeout); err != nil {
		return fmt.Errorf("waiting for %s to become Active: %w", o.name, err)
	}
	fmt.Fprintf(stdout, "created %s (%s, CodeSha256 %s)\n", aws.ToString(out.FunctionArn), out.Runtime, aws.ToString(out.CodeSha256))
	return nil
}

func deployUpdate(ctx context.Context, c *lambda.Client, o *deployOptions, code []byte, stdout io.Writer) error {
	out, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
		FunctionName: aws.String(o.name),
		ZipFile:      code,
	})
	if err != nil {
		return err
	}
	if err := waitUpdated(ctx, c, o.name); err != nil {
		return err
	}
	cfg := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(o.name)}
	changed := false
	if o.set["runtime"] {
		cfg.Runtime, changed = types.Runtime(o.runtime), true
	}
	if o.set["handler"] {
		cfg.Handler, changed = aws.String(o.handler), true
	}
	if o.set["role"] {
		cfg.Role, changed = aws.String(o.role), true
	}
	if o.set["memory"] {
		cfg.MemorySize, changed = aws.Int32(int32(o.memory)), true
	}
	if o.set["timeout"] {
		cfg.Timeout, changed = aws.Int32(int32(o.timeout)), true
	}
	if o.set["env"] {
		cfg.Environment, changed = &types.Environment{Variables: o.env}, true
	}
	if changed {
		if _, err := c.UpdateFunctionConfiguration(ctx, cfg); err != nil {
			return err
		}
		if err := waitUpdated(ctx, c, o.name); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "updated %s (CodeSha256 %s)\n", aws.ToString(out.FunctionArn), aws.ToString(out.CodeSha256))
	return nil
}

func waitUpdated(ctx context.Context, c *lambda.Client, name string) error {
	w := lambda.NewFunctionUpdatedV2Waiter(c)
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, commandTimeout); err != nil {
		return fmt.Errorf("waiting for the update of %s: %w", name, err)
	}
	return nil
}

// invokeOptions are the flags of invoke.
type invokeOptions struct {
	name    string
	payload []byte
	noLogs  bool
	async   bool
}

func parseInvoke(g *globals, args []string, stderr io.Writer) (*invokeOptions, error) {
	o := &invokeOptions{}
	fs := newFlagSet("invoke", g, stderr)
	payload := fs.String("payload", "{}", "event `JSON`, or @FILE to read it from FILE")
	fs.BoolVar(&o.noLogs, "no-logs", false, "do not ask for the log tail")
	fs.BoolVar(&o.async, "async", false, "invoke asynchronously (invocation type Event): queue the event and print its request id")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(pos, 1, "NAME"); err != nil {
		return nil, err
	}
	o.name = pos[0]
	if file, ok := strings.CutPrefix(*payload, "@"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: --payload: %v", errUsage, err)
		}
		o.payload = data
	} else {
		o.payload = []byte(*payload)
	}
	return o, nil
}

func cmdInvoke(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	o, err := parseInvoke(g, args, stderr)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	in := &lambda.InvokeInput{
		FunctionName:   aws.String(o.name),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        o.payload,
		LogType:        types.LogTypeTail,
	}
	if o.noLogs {
		in.LogType = types.LogTypeNone
	}
	if o.async {
		in.InvocationType, in.LogType = types.InvocationTypeEvent, types.LogTypeNone
	}
	out, err := c.Invoke(ctx, in)
	if err != nil {
		return err
	}
	if o.async {
		// 202: queued; the function's output goes to its logs
		// ("kindling logs NAME") and its destinations.
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		fmt.Fprintf(stdout, "queued %s (status %d)\n", id, out.StatusCode)
		return nil
	}
	if out.LogResult != nil {
		logs, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			return fmt.Errorf("decoding the log tail: %w", err)
		}
		stderr.Write(logs)
		if len(logs) > 0 && logs[len(logs)-1] != '\n' {
			fmt.Fprintln(stderr)
		}
	}
	stdout.Write(out.Payload)
	if len(out.Payload) > 0 && out.Payload[len(out.Payload)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if out.FunctionError != nil {
		fmt.Fprintf(stderr, "kindling invoke: function error (%s)\n", *out.FunctionError)
		return errFunctionFailed
	}
	return nil
}

func cmdList(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("list", g, stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tSTATE\tLAST MODIFIED")
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, f := range page.Functions {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", aws.ToString(f.FunctionName), f.Runtime,
				aws.ToInt32(f.MemorySize), aws.ToInt32(f.Timeout), f.State, aws.ToString(f.LastModified))
		}
	}
	return tw.Flush()
}

func cmdDelete(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delete", g, stderr)
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
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(pos[0])}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %s\n", pos[0])
	return nil
}
