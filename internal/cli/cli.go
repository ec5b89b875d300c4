// Package cli is Kindling's user command line, the common loop of a function
// author: deploy a directory or zip, invoke it and read its logs, list and
// delete functions. It speaks to a Kindling server (or to AWS Lambda itself)
// through the AWS SDK for Go v2 Lambda client, signing with the credentials
// the server wrote into its data directory, so that no AWS configuration is
// needed on the machine.
//
// Run is called by cmd/kindling with the arguments after the program name;
// "server" and the other daemon subcommands are not handled here.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

const (
	defaultEndpoint    = "http://127.0.0.1:9000"
	defaultDataDir     = "/var/lib/kindling"
	defaultRegion      = "us-east-1"
	credentialsProfile = "kindling"

	// exitUsage is the exit status for a malformed command line, exitFail
	// for a failed request or a function error.
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Commands lists the subcommands Run handles, for the caller's dispatch.
var Commands = []string{"deploy", "invoke", "list", "delete", "logs", "account", "snapshots"}

// errUsage marks command-line errors (exit status 2).
var errUsage = errors.New("usage")

// globals are the options every subcommand accepts, before or after its name.
type globals struct {
	endpoint        string
	dataDir         string
	credentialsFile string
	region          string
	getenv          func(string) string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.endpoint, "endpoint", g.endpoint, "Kindling (Lambda API) endpoint `URL` (env KINDLING_ENDPOINT)")
	fs.StringVar(&g.dataDir, "data-dir", g.dataDir, "server data `DIR` holding the credentials file (env KINDLING_DATA_DIR)")
	fs.StringVar(&g.credentialsFile, "credentials", g.credentialsFile, "credentials `FILE` (default DATA_DIR/credentials, profile kindling)")
	fs.StringVar(&g.region, "region", g.region, "AWS `region` to sign for")
}

func defaultGlobals(getenv func(string) string) *globals {
	g := &globals{endpoint: defaultEndpoint, dataDir: defaultDataDir, region: defaultRegion, getenv: getenv}
	if v := getenv("KINDLING_ENDPOINT"); v != "" {
		g.endpoint = v
	}
	if v := getenv("KINDLING_DATA_DIR"); v != "" {
		g.dataDir = v
	}
	return g
}

// client builds the Lambda client for g: static credentials from the
// environment or the credentials file, the endpoint as BaseEndpoint.
func (g *globals) client() (*lambda.Client, error) {
	file := g.credentialsFile
	if file == "" {
		file = filepath.Join(g.dataDir, "credentials")
	}
	creds, err := loadCredentials(g.getenv, file)
	if err != nil {
		return nil, err
	}
	return lambda.New(lambda.Options{
		Region:       g.region,
		BaseEndpoint: aws.String(g.endpoint),
		Credentials: aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")),
	}), nil
}

// Run executes one CLI command. args excludes the program name; output goes
// to stdout, diagnostics and function logs to stderr. The result is the
// process exit status: 0 on success, 1 when a request fails or the invoked
// function returns an error, 2 for a malformed command line.
func Run(args []string, stdout, stderr io.Writer) int {
	return run(context.Background(), args, os.Getenv, stdout, stderr)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	g := defaultGlobals(getenv)
	top := flag.NewFlagSet("kindling", flag.ContinueOnError)
	top.SetOutput(stderr)
	g.register(top)
	top.Usage = func() { usage(stderr, top) }
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if top.NArg() == 0 {
		usage(stderr, top)
		return exitUsage
	}
	name, rest := top.Arg(0), top.Args()[1:]
	var cmd func(context.Context, *globals, []string, io.Writer, io.Writer) error
	switch name {
	case "deploy":
		cmd = cmdDeploy
	case "invoke":
		cmd = cmdInvoke
	case "list":
		cmd = cmdList
	case "delete":
		cmd = cmdDelete
	case "logs":
		cmd = cmdLogs
	case "account":
		cmd = cmdAccount
	case "snapshots":
		cmd = cmdSnapshots
	case "help":
		usage(stdout, top)
		return exitOK
	default:
		fmt.Fprintf(stderr, "kindling: unknown command %q\n", name)
		usage(stderr, top)
		return exitUsage
	}
	err := cmd(ctx, g, rest, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "kindling %s: %v\n", name, err)
		return exitUsage
	case errors.Is(err, errFunctionFailed):
		return exitFail
	default:
		fmt.Fprintf(stderr, "kindling %s: %s\n", name, describe(err))
		return exitFail
	}
}

func usage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprint(w, `usage: kindling [global flags] COMMAND [flags] ARGS

commands:
  deploy NAME PATH   create or update a function from a directory or .zip
                     [--runtime provided.al2023] [--memory MB] [--timeout SEC]
                     [--env K=V]... [--handler H] [--role ARN]
  invoke NAME        invoke synchronously, print the result and the log tail
                     (--async: queue an Event invocation instead)
                     [--payload JSON | --payload @FILE] [--no-logs]
  list               list functions
  delete NAME        delete a function
  logs NAME          print the function's logs (CloudWatch Logs API)
                     [--since 10m] [--follow] [--filter PATTERN]
  account create NAME
                     create an account with its own key pair (root
                     credentials only); prints it as a credentials profile
  account list       list the accounts created
  snapshots          list the SnapStart snapshots kept and their disk use
                     (root credentials only)
  server             run the Kindling server (see kindling server --help)

global flags (also accepted after COMMAND):
`)
	top.SetOutput(w)
	top.PrintDefaults()
}

// parseInterleaved parses flags of fs anywhere among args (the standard
// package stops at the first positional argument) and returns the positional
// arguments in order. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" if rest follows one: everything is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a FlagSet for subcommand name with the globals bound.
func newFlagSet(name string, g *globals, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kindling "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
	return fs
}

func wantArgs(pos []string, n int, names string) error {
	if len(pos) != n {
		return fmt.Errorf("%w: want %s, got %d argument(s)", errUsage, names, len(pos))
	}
	return nil
}

// envFlag collects repeated --env K=V flags.
type envFlag map[string]string

func (e envFlag) String() string {
	var parts []string
	for k, v := range e {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want K=V, got %q", s)
	}
	e[k] = v
	return nil
}

// describe renders an SDK error as "Code: message (HTTP status)" when the
// server answered with an AWS error, and as is otherwise.
func describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err.Error()
}

// commandTimeout bounds every command, waits included.
const commandTimeout = 10 * time.Minute
