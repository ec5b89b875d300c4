// Package server wires Kindling's components together in one process: the
// embedded NATS server, the config service, the code store, the frontend,
// the assignment service, placement, the capacity manager and one worker
// with its sandbox backend. Each component lives in its own package and
// talks to the others through the interfaces it declares, so that they can
// later run in separate processes without changing their logic.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"kindling/internal/accounts"
	"kindling/internal/assignment"
	"kindling/internal/capacity"
	"kindling/internal/clock"
	"kindling/internal/codestore"
	"kindling/internal/config"
	"kindling/internal/frontend"
	"kindling/internal/logs"
	"kindling/internal/logsapi"
	"kindling/internal/natsembed"
	"kindling/internal/placement"
	"kindling/internal/router"
	"kindling/internal/sandbox"
	"kindling/internal/sandbox/gvisor"
	"kindling/internal/sandbox/process"
	"kindling/internal/sigv4"
	"kindling/internal/snapshot"
	"kindling/internal/snapstart"
	"kindling/internal/sqs"
	"kindling/internal/worker"
)

// Config is the server's configuration; cmd/kindling fills it from flags.
type Config struct {
	Listen    string
	DataDir   string
	Sandbox   string // auto, process or gvisor
	Region    string
	AccountID string
	// KeepAlive is how long idle environments are kept (Lambda time).
	KeepAlive time.Duration
	// TimeScale multiplies Lambda's long waits (init limit, keep-alive).
	TimeScale float64
	// Runsc is the runsc binary of the gvisor backend ("" = its default).
	Runsc string
	// AgentPath is the agent binary; "" finds it next to the executable.
	AgentPath string
	// RootFS is the sandboxes' shared read-only base userland.
	RootFS string
	// WorkerMemoryMB is the memory offered to sandboxes (0: 3/4 of RAM).
	WorkerMemoryMB int
	// AsyncConcurrency bounds the asynchronous events run at once (0:
	// the pollers' default).
	AsyncConcurrency int
	// AccountConcurrency is every account's concurrency limit (0:
	// router.DefaultAccountLimit).
	AccountConcurrency int
	// LogsMaxBytes is the log store's budget (0: logs.DefaultMaxBytes).
	LogsMaxBytes int64
	Logger       *slog.Logger
}

// Server is a running Kindling.
type Server struct {
	cfg      Config
	Creds    Credentials
	nats     *natsembed.Server
	backend  sandbox.Backend
	worker   *worker.Worker
	logs     *logs.Store
	accounts *accounts.Store
	async    *asyncParts
	assign   *assignment.Manager
	snaps    *snapstart.Manager
	http     *http.Server
	ln       net.Listener
	ready    atomic.Bool
	stopHB   chan struct{}
}

// New starts every component and listens, but does not serve yet: call
// Serve.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, stopHB: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	clk := clock.Scaled(cfg.TimeScale)

	if s.Creds, err = loadCredentials(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}

	if s.nats, err = natsembed.Start(natsembed.Config{StoreDir: filepath.Join(cfg.DataDir, "nats")}); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	functions, err := config.OpenWith(ctx, s.nats.JetStream(), config.Options{Region: cfg.Region})
	if err != nil {
		return nil, fmt.Errorf("config service: %w", err)
	}
	code, err := codestore.Open(filepath.Join(cfg.DataDir, "code"))
	if err != nil {
		return nil, fmt.Errorf("code store: %w", err)
	}

	if s.backend, err = newBackend(cfg); err != nil {
		return nil, err
	}
	if err := s.backend.Reap(); err != nil {
		log.Warn("reaping sandboxes of an earlier run", "err", err)
	}
	log.Info("sandbox backend", "name", s.backend.Name())

	if s.logs, err = logs.Open(ctx, logs.Config{
		JetStream: s.nats.JetStream(),
		MaxBytes:  cfg.LogsMaxBytes,
		Clock:     clk,
		Logger:    log,
	}); err != nil {
		return nil, fmt.Errorf("log store: %w", err)
	}

	images, err := snapshot.Open(filepath.Join(cfg.DataDir, "snapshots"), log)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	s.worker = worker.New(worker.Config{
		Snapshots: images,
		// A snapshot found damaged (or gone) is replaced; cold starts of
		// its version run init meanwhile. (s.snaps is set below, before
		// the server takes invokes.)
		SnapshotUnusable: func(fn *config.Function, err error) { s.snaps.Remake(fn) },
		Logs:             logSink{s.logs},
		Backend:          s.backend,
		Region:           cfg.Region,
		Clock:            clk,
		MemoryMB:         cfg.WorkerMemoryMB,
		CodeDir: func(key string) (string, error) {
			c, err := code.Get(key)
			return c.Dir, err
		},
		Logger: log,
	})
	s.snaps = snapstart.New(snapstart.Config{Worker: s.worker, Images: images, Versions: functions, Logger: log,
		MakeRoom: func(mb int) bool { return s.assign.EvictIdle(mb) }}) // s.assign is set below
	if !s.snaps.Available() {
		log.Info("SnapStart: the " + s.backend.Name() + " sandbox backend cannot checkpoint; versions published with SnapStart get OptimizationStatus Off")
	}
	fleet := capacity.NewFleet(5 * time.Second)
	const workerID = "local"
	s.heartbeat(fleet, workerID)
	s.assign = assignment.NewManager(assignment.Config{
		Placer: &placement.Placer{
			Fleet:   fleet,
			Workers: map[string]*worker.Worker{workerID: s.worker},
			Now:     time.Now,
		},
		Clock:     clk,
		KeepAlive: cfg.KeepAlive,
		Logger:    log,
	})

	// Credentials map to accounts: the root key pair to --account-id, the
	// others (kindling account create) through the accounts table.
	if s.accounts, err = accounts.Open(ctx, s.nats.JetStream(), sigv4.Credentials{
		AccessKeyID: s.Creds.AccessKeyID, SecretAccessKey: s.Creds.SecretAccessKey, AccountID: cfg.AccountID,
	}); err != nil {
		return nil, err
	}
	verifier := &sigv4.Verifier{Region: cfg.Region, Lookup: s.accounts.Lookup}
	if s.async, err = openAsync(ctx, s.nats, verifier, cfg.Region, log); err != nil {
		return nil, err
	}
	limits, err := openLimits(ctx, functions, cfg.AccountConcurrency, s.assign, log)
	if err != nil {
		return nil, err
	}
	invoker := &router.Router{Assign: s.assign, Limits: limits}
	s.async.startPollers(functions, invoker, clk, cfg.Region, cfg.AsyncConcurrency)
	fe := frontend.New(frontend.Config{
		Verifier:     verifier,
		Functions:    functions,
		Code:         code,
		Invoker:      invoker,
		Region:       cfg.Region,
		Clock:        clk,
		Logger:       log,
		Ready:        s.ready.Load,
		Events:       s.async.queue,
		EventConfigs: s.async.configs,
		Limits:       limits,
		Provisioner:  s.assign,
		Retire:       s.assign.RetireARN,
		SnapStart:    s.snaps,
	})
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, err
	}
	mux := &serviceMux{lambda: fe, targets: map[string]http.Handler{},
		admin: &accounts.API{Store: s.accounts, Verifier: verifier, RootAccount: cfg.AccountID, Logger: log,
			Reports: map[string]func(*http.Request) (any, error){"snapshots": s.snapshotsReport}}}
	mux.targets[sqs.TargetPrefix] = s.async.sqs
	mux.targets[logsapi.TargetPrefix] = logsapi.New(logsapi.Config{
		Verifier: verifier,
		Store:    s.logs,
		Region:   cfg.Region,
		Logger:   log,
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Snapshots an earlier run left unmade.
	if err := s.snaps.Resume(ctx); err != nil {
		log.Warn("SnapStart: resuming pending versions", "err", err)
	}
	if s.snaps.Available() {
		s.snaps.Verify()
	}
	// Connections queue on the bound listener until Serve; from here on the
	// server can take invokes.
	s.ready.Store(true)
	return s, nil
}

func newBackend(cfg Config) (sandbox.Backend, error) {
	agent, args, err := agentPath(cfg.AgentPath)
	if err != nil {
		return nil, err
	}
	// Reap empties the cgroup parent, so each data directory (each
	// server) gets its own.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	parent := "kindling-" + hex.EncodeToString(sum[:4])
	stateDir := filepath.Join(cfg.DataDir, "sandboxes")
	// The agent's own diagnostics (not function logs) go to the server's
	// log.
	newProcess := func() (sandbox.Backend, error) {
		return process.New(process.Config{
			AgentPath:    agent,
			AgentArgs:    args,
			CgroupParent: parent,
			RootFS:       cfg.RootFS,
			StateDir:     stateDir,
			AgentOutput:  os.Stderr,
		})
	}
	newGVisor := func() (sandbox.Backend, error) {
		return gvisor.New(gvisor.Config{
			Runsc:        cfg.Runsc,
			AgentPath:    agent,
			CgroupParent: parent + "-gvisor",
			RootFS:       cfg.RootFS,
			StateDir:     filepath.Join(cfg.DataDir, "gvisor"),
			AgentOutput:  os.Stderr,
		})
	}
	switch cfg.Sandbox {
	case "process":
		return newProcess()
	case "gvisor":
		return newGVisor()
	case "auto", "":
		// gVisor, the isolation for tenants, when this machine can run it
		// (the whole end-to-end suite passes on it, issue 4); else the
		// process backend, saying why (New names the command that fixes
		// a missing prerequisite).
		b, err := newGVisor()
		if err == nil {
			return b, nil
		}
		if cfg.Logger != nil {
			cfg.Logger.Warn("gvisor sandboxes unavailable, using process sandboxes (for trusted code only)", "reason", err)
		}
		return newProcess()
	}
	return nil, fmt.Errorf("--sandbox %q: want auto, gvisor or process", cfg.Sandbox)
}

// agentPath finds the agent: the given path, else kindling-agent next to
// this executable, else this executable itself (which runs the agent when
// started as "kindling agent"; slower to start, as it is larger).
func agentPath(given string) (path string, args []string, err error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", nil, fmt.Errorf("--agent: %w", err)
		}
		return given, nil, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	next := filepath.Join(filepath.Dir(self), "kindling-agent")
	if _, err := os.Stat(next); err == nil {
		return next, nil, nil
	}
	return self, []string{"agent"}, nil
}

// heartbeat reports the worker's capacity to the fleet, as a remote worker
// would over NATS.
func (s *Server) heartbeat(fleet *capacity.Fleet, id string) {
	beat := func() {
		total, used := s.worker.Capacity()
		fleet.Heartbeat(id, total, used, 0, time.Now())
	}
	beat()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.stopHB:
				return
			case <-t.C:
				beat()
			}
		}
	}()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves the API until Close. It returns http.ErrServerClosed after
// Close.
func (s *Server) Serve() error {
	return s.http.Serve(s.ln)
}

// Close stops serving, destroys every sandbox and stops NATS.
func (s *Server) Close() error {
	s.ready.Store(false)
	if s.snaps != nil {
		// First: snapshots under way stop at once (their versions stay
		// Pending and are resumed at the next start) rather than finish
		// while connections drain.
		s.snaps.Close()
	}
	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.http.Shutdown(ctx))
		cancel()
	} else if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	select {
	case <-s.stopHB:
	default:
		close(s.stopHB)
	}
	if s.async != nil {
		// Before the assignment service: events being run are left
		// unacknowledged and run again at the next start.
		s.async.close()
	}
	if s.assign != nil {
		s.assign.Close()
	}
	if s.worker != nil {
		s.worker.Close()
	}
	if c, ok := s.backend.(sandbox.Closer); ok {
		// After the worker: its sandboxes are destroyed.
		errs = append(errs, c.Close())
	}
	if s.logs != nil {
		// After the worker: the environments' last lines are queued.
		errs = append(errs, s.logs.Close())
	}
	if s.accounts != nil {
		s.accounts.Close()
	}
	if s.nats != nil {
		s.nats.Shutdown()
	}
	return errors.Join(errs...)
}
