// Package natsembed runs the NATS server that Kindling's state lives in,
// inside the kindling process: JetStream on, file storage under one
// directory, and by default no network listener at all. Components reach it
// through an in-process connection (nats.InProcessServer), which costs no
// socket and no port.
//
// A listen address can be given for when other machines must join (a
// cluster, or workers elsewhere); the in-process connection is used either
// way.
//
// Lifecycle: Start returns a running server with one client connection and a
// JetStream context on it; Shutdown drains that connection, stops the server
// and waits for it. Shutdown is idempotent. The *nats.Conn and the
// jetstream.JetStream are safe for concurrent use, as nats.go documents.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures the embedded server.
type Config struct {
	// StoreDir is the JetStream storage directory (required). It is created
	// if missing; data in it survives restarts.
	StoreDir string
	// ListenAddr is a host:port for client connections from other
	// processes. Empty means no TCP listener.
	ListenAddr string
	// ServerName names the server (defaults to "kindling"). Cluster members
	// need distinct names.
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept connections
	// (defaults to 10 s; a single node is ready in about 10 ms).
	ReadyTimeout time.Duration
	// Logger, when set, receives the server's own log lines. Nil keeps the
	// server quiet.
	Logger server.Logger
}

// MaxPayload is the largest message the server accepts (8 MiB).
const MaxPayload = 8 << 20

// Server is a running embedded NATS server with a client connection.
type Server struct {
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	once sync.Once
}

// NATS returns the server itself.
func (s *Server) NATS() *server.Server { return s.ns }

// Conn returns the in-process client connection.
func (s *Server) Conn() *nats.Conn { return s.nc }

// JetStream returns a JetStream context on Conn.
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// Start starts the server and connects to it.
func Start(o Config) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	name := o.ServerName
	if name == "" {
		name = "kindling"
	}
	opts := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		DontListen: true,
		// Room for an async invocation event (1 MB payload) or an SQS
		// message plus their headers; NATS's default is 1 MB.
		MaxPayload: MaxPayload,
		// No HTTP monitoring, no leaf or cluster ports unless configured.
	}
	if o.ListenAddr != "" {
		host, portStr, err := net.SplitHostPort(o.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen address %q: %w", o.ListenAddr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("natsembed: listen address %q: bad port", o.ListenAddr)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		opts.DontListen = false
		opts.Host = host
		opts.Port = port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: new server: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(o.Logger, false, false, false)
	}
	ns.Start()
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: server not ready within %v", timeout)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("kindling-embedded"),
		nats.MaxReconnects(-1))
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: jetstream: %w", err)
	}
	return &Server{ns: ns, nc: nc, js: js}, nil
}

// ClientURL returns the URL other processes connect to, or "" when the
// server has no listener.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown closes the connection and stops the server, waiting until it has
// stopped (JetStream flushed to disk). It is safe to call more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.nc.Close()
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}
