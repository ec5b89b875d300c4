package config

import (
	"context"
	"fmt"
)

// SetReservedConcurrency stores the function's reserved concurrency (nil
// clears it) on its $LATEST record, without changing LastModified (as
// Lambda's PutFunctionConcurrency does not). A missing function is
// errdefs.ErrNotFound.
func (s *Store) SetReservedConcurrency(ctx context.Context, account, name string, n *int) (*Function, error) {
	return s.update(ctx, account, name, false, func(f *Function) error {
		if n == nil {
			f.ReservedConcurrency = nil
			return nil
		}
		v := *n
		f.ReservedConcurrency = &v
		return nil
	})
}

// SetProvisioned stores (n > 0) or removes (n == 0) the provisioned
// concurrency configuration of qualifier on the function's $LATEST record.
// check runs on the function as it will be stored (the caller's limits);
// its error aborts and is returned as is.
func (s *Store) SetProvisioned(ctx context.Context, account, name, qualifier string, n int, check func(*Function) error) (*Function, error) {
	return s.update(ctx, account, name, false, func(f *Function) error {
		if n <= 0 {
			delete(f.Provisioned, qualifier)
			if len(f.Provisioned) == 0 {
				f.Provisioned = nil
			}
		} else {
			if f.Provisioned == nil {
				f.Provisioned = map[string]ProvisionedConfig{}
			}
			f.Provisioned[qualifier] = ProvisionedConfig{Requested: n, LastModified: s.now().UTC()}
		}
		if check != nil {
			return check(f)
		}
		return nil
	})
}

// Reservation is one function's reserved concurrency (nil: none) and
// provisioned concurrency configurations.
type Reservation struct {
	Account, Name string
	Reserved      *int
	Provisioned   map[string]ProvisionedConfig
}

// Reservations lists every function with reserved or provisioned
// concurrency, of all accounts (for the router's limiter and the
// assignment service at start). It reads every $LATEST record:
// O(functions).
func (s *Store) Reservations(ctx context.Context) ([]Reservation, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, keyPrefix+"*.*"+keyLatest)
	if err != nil {
		return nil, fmt.Errorf("config: list reservations: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var out []Reservation
	for _, k := range keys {
		kind, account, name, _, ok := parseKey(k)
		if !ok || kind != kindLatest {
			continue
		}
		f, _, err := s.get(ctx, account, name)
		if err != nil {
			continue // deleted since listed
		}
		if f.ReservedConcurrency != nil || len(f.Provisioned) > 0 {
			out = append(out, Reservation{Account: account, Name: name, Reserved: f.ReservedConcurrency, Provisioned: f.Provisioned})
		}
	}
	return out, ctx.Err()
}

// Usage is an account's code storage, as GetAccountSettings reports it.
type Usage struct {
	// FunctionCount is the number of functions.
	FunctionCount int
	// TotalCodeSize is the size of the deployment packages of every
	// function and version, in bytes.
	TotalCodeSize int64
}

// Usage adds up the account's functions and code. It reads every record
// of the account: O(functions and versions).
func (s *Store) Usage(ctx context.Context, account string) (Usage, error) {
	var u Usage
	if !validAccount(account) {
		return u, nil
	}
	lister, err := s.kv.ListKeysFiltered(ctx, keyPrefix+account+".>")
	if err != nil {
		return u, fmt.Errorf("config: usage: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		kind, _, _, _, ok := parseKey(k)
		if !ok || kind == kindAlias {
			continue
		}
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue // deleted since listed
		}
		f, err := decode(e.Value())
		if err != nil {
			continue
		}
		if kind == kindLatest {
			u.FunctionCount++
		}
		u.TotalCodeSize += f.CodeSize
	}
	return u, ctx.Err()
}

// UpdateTags applies mutate to a copy of the function's tags (never nil)
// and stores the result on $LATEST, without changing LastModified. An
// error from mutate aborts and is returned as is.
func (s *Store) UpdateTags(ctx context.Context, account, name string, mutate func(map[string]string) error) (*Function, error) {
	return s.update(ctx, account, name, false, func(f *Function) error {
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		if err := mutate(f.Tags); err != nil {
			return err
		}
		if len(f.Tags) == 0 {
			f.Tags = nil
		}
		return nil
	})
}
