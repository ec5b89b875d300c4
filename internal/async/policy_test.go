package async

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	def := Limits{MaxRetryAttempts: 2, MaxEventAge: 6 * time.Hour}
	cases := []struct {
		name    string
		s       State
		o       Outcome
		age     time.Duration
		l       Limits
		want    Action
		cond    Condition
		delay   time.Duration
		comment string
	}{
		{name: "success", s: State{}.Next(Succeeded), o: Succeeded, l: def, want: Done, cond: CondSuccess},
		{name: "first error waits 1m", s: State{}.Next(FunctionError), o: FunctionError, l: def, want: Retry, delay: time.Minute},
		{name: "second error waits 2m", s: State{}.Next(FunctionError).Next(FunctionError), o: FunctionError, age: time.Minute, l: def, want: Retry, delay: 2 * time.Minute},
		{name: "third error exhausts", s: State{}.Next(FunctionError).Next(FunctionError).Next(FunctionError), o: FunctionError, age: 3 * time.Minute, l: def, want: Fail, cond: CondRetriesExhausted},
		{name: "zero retries", s: State{}.Next(FunctionError), o: FunctionError, l: Limits{MaxRetryAttempts: 0, MaxEventAge: time.Hour}, want: Fail, cond: CondRetriesExhausted},
		{name: "one retry", s: State{}.Next(FunctionError), o: FunctionError, l: Limits{MaxRetryAttempts: 1, MaxEventAge: time.Hour}, want: Retry, delay: time.Minute},
		{name: "retry past max age", s: State{}.Next(FunctionError), o: FunctionError, age: time.Second, l: Limits{MaxRetryAttempts: 2, MaxEventAge: time.Minute}, want: Fail, cond: CondEventAgeExceeded},
		{name: "throttle backs off 1s", s: State{}.Next(Throttled), o: Throttled, l: def, want: Retry, delay: time.Second},
		{name: "throttle doubles", s: State{Backoffs: 4}, o: Throttled, l: def, want: Retry, delay: 8 * time.Second},
		{name: "backoff capped", s: State{Backoffs: 40}, o: SystemError, l: def, want: Retry, delay: 5 * time.Minute},
		{name: "throttled until max age", s: State{Backoffs: 40}, o: Throttled, age: 6*time.Hour - time.Minute, l: def, want: Fail, cond: CondEventAgeExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.s, c.o, c.age, c.l)
			if d.Action != c.want || d.Condition != c.cond || d.Delay != c.delay {
				t.Errorf("Decide(%+v, %v, %v) = %+v, want action %d cond %q delay %v", c.s, c.o, c.age, d, c.want, c.cond, c.delay)
			}
		})
	}
}

func TestStateNext(t *testing.T) {
	s := State{}.Next(Throttled).Next(SystemError)
	if s.Backoffs != 2 || s.Invocations != 0 {
		t.Fatalf("%+v", s)
	}
	s = s.Next(FunctionError)
	if s.Backoffs != 0 || s.Invocations != 1 || s.FunctionErrors != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestExpired(t *testing.T) {
	l := Limits{MaxEventAge: time.Minute}
	if Expired(time.Minute, l) || !Expired(time.Minute+time.Millisecond, l) {
		t.Fatal("Expired boundary")
	}
}
