package natsembed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartKVAndRestart(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	s, err := Start(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ready in %v", time.Since(start))
	if u := s.ClientURL(); u != "" {
		t.Errorf("ClientURL = %q, want none without a listener", u)
	}
	ctx := context.Background()
	kv, err := s.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "t", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.Shutdown() // idempotent

	s2, err := Start(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown()
	kv2, err := s2.JetStream().KeyValue(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value()) != "v" {
		t.Fatalf("value after restart = %q", e.Value())
	}
}

func TestListenAddr(t *testing.T) {
	s, err := Start(Config{StoreDir: t.TempDir(), ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	u := s.ClientURL()
	if u == "" {
		t.Fatal("no client URL with a listener")
	}
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Config{}); err == nil {
		t.Error("no StoreDir: want error")
	}
	if _, err := Start(Config{StoreDir: t.TempDir(), ListenAddr: "nope"}); err == nil {
		t.Error("bad listen address: want error")
	}
}
