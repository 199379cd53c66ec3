package issuer

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

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
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/n, "objects/client")
		runtime.KeepAlive(c)
	}
}

// A request's client id is often a slice of the string that holds its
// secret too; a cached entry must not keep that string alive.
func TestTheClientCacheKeepsNoRequestStringAlive(t *testing.T) {
	tests := []struct {
		name   string
		client func(id string) *store.Client
	}{
		{"unknown client", func(string) *store.Client { return nil }},
		{"known client", func(id string) *store.Client {
			return &store.Client{IssuerName: "payments", ID: strings.Clone(id)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClientCache(10, time.Now)
			freed := make(chan struct{})
			func() {
				credentials := string([]byte("orders-service:the-client-secret"))
				runtime.AddCleanup(unsafe.StringData(credentials), func(struct{}) { close(freed) }, struct{}{})
				id := credentials[:strings.IndexByte(credentials, ':')]
				c.put(clientKey{"payments", id}, tt.client(id), 0)
			}()
			for range 100 {
				runtime.GC()
				select {
				case <-freed:
					if _, ok, _ := c.get(clientKey{"payments", "orders-service"}, time.Hour); !ok {
						t.Fatal("the entry is gone")
					}
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			t.Fatal("the cache keeps the request's credentials string alive")
		})
	}
}
