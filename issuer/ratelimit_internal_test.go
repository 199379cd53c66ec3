package issuer

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimiterRefillsAndTellsWhenToRetry(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailureLimiter(6, func() time.Time { return now }) // 6 a minute: one per 10 s
	for i := range 6 {
		if _, blocked := l.blocked("k"); blocked {
			t.Fatalf("blocked after %d failures, want 6 allowed", i)
		}
		l.fail("k")
	}
	wait, blocked := l.blocked("k")
	if !blocked || wait != 10*time.Second {
		t.Fatalf("after 6 failures: blocked=%v retry in %v; want blocked for 10s", blocked, wait)
	}
	if _, other := l.blocked("other"); other {
		t.Fatal("another key is blocked")
	}
	now = now.Add(4 * time.Second)
	if wait, _ := l.blocked("k"); wait != 6*time.Second {
		t.Fatalf("4 s later: retry in %v, want 6s", wait)
	}
	now = now.Add(6 * time.Second)
	if _, blocked := l.blocked("k"); blocked {
		t.Fatal("still blocked after the refill interval")
	}
	if newFailureLimiter(0, time.Now) != nil {
		t.Fatal("a zero limit should disable the limiter")
	}
	var disabled *failureLimiter
	disabled.fail("k")
	if _, blocked := disabled.blocked("k"); blocked {
		t.Fatal("a disabled limiter blocks")
	}
}

func TestFailureLimiterForgetsRefilledKeysWhenFull(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailureLimiter(60, func() time.Time { return now })
	for i := range maxTrackedKeys {
		l.fail(fmt.Sprint(i))
	}
	now = now.Add(time.Minute) // every bucket has refilled
	l.fail("newcomer")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept, want only the newcomer's", len(l.buckets))
	}
}

// TestFailureLimiterStaysBoundedUnderAFloodOfNewKeys: when no bucket has
// refilled, the limiter forgets arbitrary ones rather than grow, and it
// sweeps once per tenth of its capacity, not once per failure.
func TestFailureLimiterStaysBoundedUnderAFloodOfNewKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newFailureLimiter(60, func() time.Time { return now })
	for i := range 3 * maxTrackedKeys {
		l.fail(fmt.Sprint(i))
		if len(l.buckets) > maxTrackedKeys {
			t.Fatalf("%d buckets after %d failures", len(l.buckets), i+1)
		}
	}
}
