package issuer

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestReloadQueueCoalescesBursts(t *testing.T) {
	q := newReloadQueue()
	for range 3 {
		q.add("payments")
	}
	q.add("billing")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	names, all, ok := q.next(ctx)
	slices.Sort(names)
	if !ok || all || !slices.Equal(names, []string{"billing", "payments"}) {
		t.Fatalf("next = %v, %v, %v; want billing and payments once each", names, all, ok)
	}
	q.add("payments")
	q.addAll()
	if names, all, ok = q.next(ctx); !ok || !all || !slices.Equal(names, []string{"payments"}) {
		t.Fatalf("after addAll: %v, %v, %v", names, all, ok)
	}
	cancel()
	if _, _, ok = q.next(ctx); ok {
		t.Fatal("next returned work after the context ended")
	}
}
