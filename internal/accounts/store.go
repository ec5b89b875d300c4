// Package accounts maps credentials to accounts beyond the root one: each
// account created with `kindling account create NAME` has its own 12-digit
// id and key pair. The root account (the server's --account-id, with the
// credentials of its data directory or environment) is not stored here; it
// may create accounts through the admin endpoint (api.go).
//
// Accounts are records in the JetStream KV bucket kindling-accounts, one
// per account under acct.<NAME>:
//
//	{"v":1,"id":"123456789012","name":"NAME","accessKeyId":"AKIA...",
//	 "secretAccessKey":"...","created":"RFC 3339"}
//
// The secret is stored as is, like the root credentials file: whoever can
// read the data directory can act as any account.
//
// Lookup, called for every signed request, reads an in-memory index kept
// by a KV watch (filled before Open returns, then live), never the KV.
// Every function, log group and queue is keyed by account id, so an
// account sees only its own.
package accounts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kindling/internal/errdefs"
	"kindling/internal/sigv4"
)

// Bucket is the KV bucket of accounts.
const Bucket = "kindling-accounts"

const (
	keyPrefix     = "acct."
	recordVersion = 1
	maxNameLen    = 64
)

// Account is one account and its key pair.
type Account struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	Created         time.Time `json:"created"`
}

type record struct {
	V int `json:"v"`
	Account
}

// Store is the account table. It is safe for concurrent use.
type Store struct {
	kv   jetstream.KeyValue
	root sigv4.Credentials

	// mu guards the index; a leaf lock, nothing is called under it.
	mu     sync.RWMutex
	byKey  map[string]Account // by access key id
	byName map[string]Account
	ids    map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
}

// Open opens (creating) the bucket and loads the accounts. root is the
// root account's credentials (Lookup answers them first; its id cannot be
// given to another account and "root" is not a valid new name).
func Open(ctx context.Context, js jetstream.JetStream, root sigv4.Credentials) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Kindling accounts", History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: open bucket %s: %w", Bucket, err)
	}
	s := &Store{kv: kv, root: root, byKey: map[string]Account{}, byName: map[string]Account{},
		ids: map[string]bool{}, done: make(chan struct{})}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.Watch(wctx, keyPrefix+">")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("accounts: watch: %w", err)
	}
	s.cancel = cancel
	loaded := make(chan struct{})
	go s.run(w, loaded)
	select {
	case <-loaded:
		return s, nil
	case <-s.done:
		return nil, errors.New("accounts: the watch ended before the accounts were loaded")
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// run applies the watch's entries until Close.
func (s *Store) run(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(s.done)
	defer w.Stop() //nolint:errcheck // the watch is over either way
	for e := range w.Updates() {
		if e == nil {
			close(loaded)
			continue
		}
		name := strings.TrimPrefix(e.Key(), keyPrefix)
		switch e.Operation() {
		case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
			s.forget(name)
			continue
		}
		var r record
		if err := json.Unmarshal(e.Value(), &r); err != nil || r.V != recordVersion || r.Name != name {
			continue // a record of another format: skipped
		}
		s.index(r.Account)
	}
}

func (s *Store) index(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byName[a.Name]; ok {
		delete(s.byKey, old.AccessKeyID)
		delete(s.ids, old.ID)
	}
	s.byName[a.Name] = a
	s.byKey[a.AccessKeyID] = a
	s.ids[a.ID] = true
}

func (s *Store) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byName[name]; ok {
		delete(s.byKey, old.AccessKeyID)
		delete(s.ids, old.ID)
		delete(s.byName, name)
	}
}

// Close stops the watch; Lookup keeps answering from the index.
func (s *Store) Close() {
	s.cancel()
	<-s.done
}

// Lookup maps an access key id to its credentials and account
// (sigv4.Lookup).
func (s *Store) Lookup(id string) (sigv4.Credentials, bool) {
	if id == s.root.AccessKeyID {
		return s.root, true
	}
	s.mu.RLock()
	a, ok := s.byKey[id]
	s.mu.RUnlock()
	if !ok {
		return sigv4.Credentials{}, false
	}
	return sigv4.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, AccountID: a.ID}, true
}

// ValidName reports whether name can name a new account: 1-64 of
// [a-zA-Z0-9-_], not "root".
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen || name == "root" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Create makes a new account with a fresh id and key pair. A name in use
// is errdefs.ErrConflict; an invalid one errdefs.ErrInvalid.
func (s *Store) Create(ctx context.Context, name string) (Account, error) {
	if !ValidName(name) {
		return Account{}, fmt.Errorf("%w: account name %q: want 1 to %d of [a-zA-Z0-9-_], not \"root\"", errdefs.ErrInvalid, name, maxNameLen)
	}
	a := Account{
		ID:              s.newID(),
		Name:            name,
		AccessKeyID:     "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
		Created:         time.Now().UTC().Truncate(time.Second),
	}
	data, err := json.Marshal(record{V: recordVersion, Account: a})
	if err != nil {
		return Account{}, err
	}
	if _, err := s.kv.Create(ctx, keyPrefix+name, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Account{}, fmt.Errorf("%w: Account already exists: %s", errdefs.ErrConflict, name)
		}
		return Account{}, fmt.Errorf("accounts: create %s: %w", name, err)
	}
	s.index(a) // read our own write at once; the watch confirms it
	return a, nil
}

// newID draws a 12-digit account id not in use (nor the root's).
func (s *Store) newID() string {
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(1e12))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		id := fmt.Sprintf("%012d", n)
		s.mu.RLock()
		used := s.ids[id]
		s.mu.RUnlock()
		if !used && id != s.root.AccountID && id != "000000000000" {
			return id
		}
	}
}

// List returns the accounts (without their secrets), by name.
func (s *Store) List() []Account {
	s.mu.RLock()
	out := make([]Account, 0, len(s.byName))
	for _, a := range s.byName {
		a.SecretAccessKey = ""
		out = append(out, a)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
