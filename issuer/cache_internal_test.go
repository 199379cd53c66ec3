package issuer

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// BenchmarkClientCacheBytes reports what one cached client costs in heap:
// a full cache of n typical secret clients (one scope, one secret, ids as
// in authz-bench seed), measured after a collection. Run with
// -benchtime 1x: the figure is bytes/client, not time.
func BenchmarkClientCacheBytes(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		secret := credential.StoredSecret("seeded-secret")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newClientCache(n, time.Now)
		for i := range n {
			id := fmt.Sprintf("bench-x%06d", i+1)
			c.put(clientKey{"bench-es256", id}, &store.Client{
				IssuerName: "bench-es256", ID: id, InternalID: fmt.Sprintf("0f8fad5b-d9cb-469f-a165-%012d", i),
				ServiceAccountID: fmt.Sprintf("7c9e6679-7425-40de-944b-%012d", i), Name: "bench " + id,
				Scopes: []string{"read"}, Audience: "https://api.example.test", Enabled: true,
				Secrets: []store.Secret{{ID: "s1", Digest: secret.Digest, Hint: secret.Hint, CreatedAt: time.Now()}},
			}, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/client")
		runtime.KeepAlive(c)
	}
}
