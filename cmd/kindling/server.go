package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr
	"os"
	"os/signal"
	"syscall"
	"time"

	"kindling/internal/server"
)

func serverMain(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var cfg server.Config
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "address to serve the API on")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr("KINDLING_DATA_DIR", "/var/lib/kindling"), "where functions, code, credentials and state persist")
	fs.StringVar(&cfg.Sandbox, "sandbox", "auto", "sandbox backend: auto, gvisor or process")
	fs.StringVar(&cfg.Region, "region", "us-east-1", "AWS region the API reports")
	fs.StringVar(&cfg.AccountID, "account-id", "000000000000", "account id of the root credentials")
	fs.DurationVar(&cfg.KeepAlive, "keep-alive", 10*time.Minute, "how long an idle execution environment is kept (Lambda time)")
	fs.Float64Var(&cfg.TimeScale, "time-scale", 1, "multiplies Lambda's long waits (init limit, keep-alive); tests use small values")
	fs.StringVar(&cfg.AgentPath, "agent", "", "agent binary (default: kindling-agent next to this binary, else this binary)")
	fs.StringVar(&cfg.Runsc, "runsc", "/var/lib/kindling/bin/runsc", "runsc binary of the gvisor backend, built by scripts/build-runsc.sh")
	fs.StringVar(&cfg.RootFS, "rootfs", "/var/lib/kindling/rootfs", "sandbox base userland, built by scripts/build-rootfs.sh")
	fs.IntVar(&cfg.WorkerMemoryMB, "worker-memory", 0, "memory in MB offered to sandboxes (default: 3/4 of the machine's)")
	fs.IntVar(&cfg.AsyncConcurrency, "async-concurrency", 0, "asynchronous events run at once by the pollers (default 32)")
	fs.IntVar(&cfg.AccountConcurrency, "account-concurrency", 1000, "concurrent executions per account (Lambda's ConcurrentExecutions limit)")
	fs.Int64Var(&cfg.LogsMaxBytes, "logs-max-bytes", 256<<20, "budget of the function log store; the oldest events go first")
	verbose := fs.Bool("v", false, "debug logging")
	debugAddr := fs.String("debug-addr", "", "serve Go's /debug/pprof on this address (unauthenticated: keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := server.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kindling: %v\n", err)
		return 1
	}
	if *debugAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers.
			err := http.ListenAndServe(*debugAddr, nil)
			cfg.Logger.Error("debug listener", "err", err)
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	if s.Creds.File != "" {
		fmt.Printf("kindling: credentials in %s (profile %s)\n", s.Creds.File, server.Profile)
	} else {
		fmt.Println("kindling: credentials from KINDLING_ACCESS_KEY_ID / KINDLING_SECRET_ACCESS_KEY")
	}
	fmt.Printf("kindling: listening on http://%s\n", s.Addr())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cerr := s.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "kindling: %v\n", err)
		return 1
	}
	if cerr != nil {
		fmt.Fprintf(os.Stderr, "kindling: shutdown: %v\n", cerr)
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
