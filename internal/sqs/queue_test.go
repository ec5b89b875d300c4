package sqs

import (
	"testing"
	"time"
)

func TestQueueVisibility(t *testing.T) {
	q := newQueue("123456789012", "q", defaultAttributes(), time.Unix(0, 0))
	now := time.Unix(1000, 0)
	for i := uint64(1); i <= 3; i++ {
		q.add(&message{seq: i, id: "m", sent: now, visibleAt: now}, now)
	}
	q.add(&message{seq: 4, sent: now, visibleAt: now.Add(5 * time.Second)}, now) // delayed
	if v, in, d := q.counts(now); v != 3 || in != 0 || d != 1 {
		t.Fatalf("counts %d %d %d", v, in, d)
	}
	got := q.receive(2, 10*time.Second, now)
	if len(got) != 2 || got[0].seq != 1 || got[1].seq != 2 || got[0].receiveCount != 1 {
		t.Fatalf("receive: %+v", got)
	}
	if v, in, _ := q.counts(now); v != 1 || in != 2 {
		t.Fatalf("after receive: %d visible %d in flight", v, in)
	}
	// Delayed message 4 becomes visible at +5 s; 1 and 2 at +10 s.
	if next, ok := q.nextVisible(); !ok || !next.Equal(now.Add(5*time.Second)) {
		t.Fatalf("nextVisible %v %v", next, ok)
	}
	got = q.receive(10, 10*time.Second, now.Add(6*time.Second))
	if len(got) != 2 || got[0].seq != 3 || got[1].seq != 4 {
		t.Fatalf("second receive: %+v", got)
	}
	// Message 1 is deleted; 2 comes back after its timeout with count 2.
	q.remove(1)
	got = q.receive(10, 0, now.Add(11*time.Second))
	if len(got) != 1 || got[0].seq != 2 || got[0].receiveCount != 2 {
		t.Fatalf("after the timeout: %+v", got)
	}
	// With a 0 timeout it stays visible.
	if got = q.receive(10, 0, now.Add(11*time.Second)); len(got) != 1 || got[0].receiveCount != 3 {
		t.Fatalf("zero timeout: %+v", got)
	}
	// ChangeMessageVisibility: only the current receive's handle, only in flight.
	m3 := q.msgs[3]
	if err := q.changeVisibility(3, m3.gen-1, time.Second, now.Add(7*time.Second)); err != errStaleReceipt {
		t.Fatalf("stale handle: %v", err)
	}
	if err := q.changeVisibility(3, m3.gen, 0, now.Add(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := q.changeVisibility(3, m3.gen, 0, now.Add(7*time.Second)); err != errNotInFlight {
		t.Fatalf("not in flight: %v", err)
	}
	if got = q.receive(1, time.Second, now.Add(7*time.Second)); len(got) != 1 || got[0].seq != 2 && got[0].seq != 3 {
		t.Fatalf("after change: %+v", got)
	}
}

func TestMD5OfAttributes(t *testing.T) {
	// The SDKs' own algorithm, checked against a value AWS returns for
	// {"Kind": String "greeting"} would need the service; check stability
	// and sensitivity instead.
	s := "greeting"
	a := md5OfAttributes(map[string]MessageAttributeValue{"Kind": {DataType: "String", StringValue: &s}})
	if len(a) != 32 {
		t.Fatalf("md5 %q", a)
	}
	s2 := "greetinG"
	if b := md5OfAttributes(map[string]MessageAttributeValue{"Kind": {DataType: "String", StringValue: &s2}}); b == a {
		t.Fatal("md5 ignores the value")
	}
	if md5OfAttributes(nil) != "" {
		t.Fatal("md5 of none")
	}
}

func TestAttributes(t *testing.T) {
	a := defaultAttributes()
	if err := a.apply(map[string]string{"VisibilityTimeout": "5", "DelaySeconds": "1"}); err != nil || a.VisibilityTimeout != 5 {
		t.Fatal(a, err)
	}
	if err := a.apply(map[string]string{"VisibilityTimeout": "43201"}); err == nil {
		t.Fatal("out of range accepted")
	}
	if err := a.apply(map[string]string{"Bogus": "1"}); err == nil {
		t.Fatal("unknown attribute accepted")
	}
	if d := a.differs(map[string]string{"VisibilityTimeout": "6"}); d != "VisibilityTimeout" {
		t.Fatalf("differs %q", d)
	}
	if !validBody("ok\n\t") || validBody("bad\x00") || validBody(string([]byte{0xff})) {
		t.Fatal("validBody")
	}
}
