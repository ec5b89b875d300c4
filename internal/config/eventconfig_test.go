package config

import (
	"context"
	"errors"
	"strings"
	"testing"

	"kindling/internal/errdefs"
)

func TestEventConfigs(t *testing.T) {
	ns := startNATS(t, t.TempDir())
	ctx := context.Background()
	s, err := OpenEventConfigs(ctx, ns.JetStream(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const acct = "123456789012"
	if _, err := s.Get(ctx, acct, "fn", ""); !errors.Is(err, errdefs.ErrNotFound) ||
		!strings.Contains(err.Error(), "function:fn:$LATEST doesn't have an EventInvokeConfig") {
		t.Fatalf("Get of none: %v", err)
	}
	if _, err := s.Update(ctx, acct, "fn", "", func(*EventInvokeConfig) error { return nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Update of none: %v", err)
	}
	one := 1
	if err := s.Put(ctx, &EventInvokeConfig{Account: acct, Name: "fn", MaximumRetryAttempts: &one, OnSuccess: "arn:x"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Get(ctx, acct, "fn", "$LATEST")
	if err != nil || c.RetryAttempts() != 1 || c.MaxEventAge().Seconds() != DefaultMaximumEventAgeInSeconds || c.OnSuccess != "arn:x" {
		t.Fatalf("Get: %+v %v", c, err)
	}
	age := 60
	c, err = s.Update(ctx, acct, "fn", "", func(c *EventInvokeConfig) error {
		c.MaximumEventAgeInSeconds = &age
		return nil
	})
	if err != nil || c.RetryAttempts() != 1 || c.MaxEventAge().Seconds() != 60 || c.OnSuccess != "arn:x" {
		t.Fatalf("Update merged: %+v %v", c, err)
	}
	if err := s.Put(ctx, &EventInvokeConfig{Account: acct, Name: "fn", Qualifier: "live"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, acct, "fn")
	if err != nil || len(list) != 2 || list[0].Qualifier != LatestVersion || list[1].Qualifier != "live" {
		t.Fatalf("List: %v %v", list, err)
	}
	if err := s.Delete(ctx, acct, "fn", "live"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acct, "fn", "live"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.DeleteAll(ctx, acct, "fn"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx, acct, "fn"); len(list) != 0 {
		t.Fatalf("after DeleteAll: %v", list)
	}
	var nilCfg *EventInvokeConfig
	if nilCfg.RetryAttempts() != 2 || nilCfg.Destination(true) != "" {
		t.Fatal("nil config defaults")
	}
}
