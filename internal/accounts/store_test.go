package accounts

import (
	"context"
	"errors"
	"testing"

	"kindling/internal/errdefs"
	"kindling/internal/natsembed"
	"kindling/internal/sigv4"
)

var root = sigv4.Credentials{AccessKeyID: "AKIDROOT", SecretAccessKey: "secret", AccountID: "000000000000"}

func TestCreateLookupReopen(t *testing.T) {
	dir := t.TempDir()
	ns, err := natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, ns.JetStream(), root)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Lookup(root.AccessKeyID); !ok || c != root {
		t.Errorf("Lookup(root) = %+v, %v", c, ok)
	}
	a, err := s.Create(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 12 || a.ID == root.AccountID || a.AccessKeyID == "" || len(a.SecretAccessKey) != 40 {
		t.Errorf("Create = %+v", a)
	}
	if c, ok := s.Lookup(a.AccessKeyID); !ok || c.AccountID != a.ID || c.SecretAccessKey != a.SecretAccessKey {
		t.Errorf("Lookup(new key) = %+v, %v", c, ok)
	}
	if _, ok := s.Lookup("AKIDUNKNOWN"); ok {
		t.Error("Lookup of an unknown key succeeded")
	}
	if _, err := s.Create(ctx, "team-a"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Create of a name in use = %v, want ErrConflict", err)
	}
	for _, bad := range []string{"", "root", "a.b", "a b", string(make([]byte, 65))} {
		if _, err := s.Create(ctx, bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if l := s.List(); len(l) != 1 || l[0].Name != "team-a" || l[0].SecretAccessKey != "" {
		t.Errorf("List = %+v", l)
	}
	s.Close()
	ns.Shutdown()

	// A restart finds the account.
	ns, err = natsembed.Start(natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	s, err = Open(ctx, ns.JetStream(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, ok := s.Lookup(a.AccessKeyID); !ok || c.AccountID != a.ID {
		t.Errorf("Lookup after reopening = %+v, %v", c, ok)
	}
}
