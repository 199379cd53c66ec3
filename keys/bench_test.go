package keys

import (
	"crypto/rand"
	"testing"
)

func BenchmarkSignCompact(b *testing.B) {
	payload := make([]byte, 320) // about one access token's claims
	_, _ = rand.Read(payload)
	for _, alg := range Algorithms() {
		b.Run(alg, func(b *testing.B) {
			priv, err := Generate(alg)
			if err != nil {
				b.Fatal(err)
			}
			key, err := NewActiveKey(priv, alg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := key.SignCompact(payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
