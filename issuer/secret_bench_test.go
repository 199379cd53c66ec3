package issuer

import (
	"context"
	"testing"
	"time"
)

func BenchmarkSecretCheck(b *testing.B) {
	secret, sec := NewClientSecret(time.Time{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := (secretHasher{}).Compare(ctx, sec.Digest, []byte(secret)); err != nil {
			b.Fatal(err)
		}
	}
}
