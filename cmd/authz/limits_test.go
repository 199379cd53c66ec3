package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSlowHeadersAndOversizedRequestsAreCutWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="}, "--read-header-timeout", "1s")
	id, secret := newPaymentsClient(t, p)
	addr := strings.TrimPrefix(p.publicURL, "http://")

	// Twenty slow-header connections, each trickling a byte every 200 ms.
	const slow = 20
	var cut atomic.Int64
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = conn.Write([]byte("POST /issuers/payments/token HTTP/1.1\r\nHost: x\r\nX-Slow: "))
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := conn.Write([]byte("a")); err != nil {
					cut.Add(1)
					return
				}
				_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := bufio.NewReader(conn).ReadByte(); err == nil || !isTimeout(err) {
					cut.Add(1) // the server answered (408) or closed the connection
					return
				}
			}
		})
	}
	// Meanwhile a normal client is served every time.
	served, tried := 0, 0
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(20 * time.Millisecond) {
		tried++
		if tokenStatus(t, p, "payments", id, secret) == http.StatusOK {
			served++
		}
	}
	wg.Wait()

	bigHeader, _ := http.NewRequest(http.MethodGet, p.publicURL+"/healthz", nil)
	bigHeader.Header.Set("X-Big", strings.Repeat("h", 64<<10))
	headerResp, err := http.DefaultClient.Do(bigHeader)
	if err != nil {
		t.Fatal(err)
	}
	headerResp.Body.Close()
	bigBody, err := http.Post(p.publicURL+"/issuers/payments/token", "application/x-www-form-urlencoded",
		strings.NewReader("grant_type=client_credentials&pad="+strings.Repeat("b", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	bigBody.Body.Close()

	t.Logf("slow headers: %d of %d connections cut; bystander %d/%d served; 64 KiB header → %d; 1 MiB body → %d",
		cut.Load(), slow, served, tried, headerResp.StatusCode, bigBody.StatusCode)
	if cut.Load() != slow {
		t.Errorf("%d of %d slow-header connections were still open after 5 s", slow-cut.Load(), slow)
	}
	if served != tried {
		t.Errorf("the bystander was served %d of %d times", served, tried)
	}
	if headerResp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d, want 431", headerResp.StatusCode)
	}
	if bigBody.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", bigBody.StatusCode)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
