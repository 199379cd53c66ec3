package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKillingOneNodeFailsOnlyItsInFlightRequests(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	id, secret := newPaymentsClient(t, nodes[0])
	for _, p := range nodes {
		waitForStatus(t, p, "payments", id, secret, http.StatusOK, 5*time.Second)
	}

	const workers = 4
	var dead atomic.Int32 // index+1 of the node the balancer has taken out
	var okCount [3]atomic.Int64
	var failCount [3]atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				n := i % len(nodes)
				if int(dead.Load()) == n+1 {
					continue // the balancer no longer sends it traffic
				}
				req, _ := http.NewRequest(http.MethodPost, nodes[n].publicURL+"/issuers/payments/token",
					strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := http.DefaultClient.Do(req)
				if err == nil && resp.StatusCode == http.StatusOK {
					okCount[n].Add(1)
				} else {
					failCount[n].Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	if err := nodes[1].cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	dead.Store(2)
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()
	<-nodes[1].exited
	t.Logf("node loss: node 0 %d ok / %d failed, node 1 (killed) %d ok / %d failed, node 2 %d ok / %d failed",
		okCount[0].Load(), failCount[0].Load(), okCount[1].Load(), failCount[1].Load(), okCount[2].Load(), failCount[2].Load())
	if failCount[0].Load() != 0 || failCount[2].Load() != 0 {
		t.Fatal("the surviving nodes failed requests")
	}
	if failCount[1].Load() > workers {
		t.Fatalf("%d requests to the killed node failed; only the %d in flight may", failCount[1].Load(), workers)
	}
	if okCount[0].Load() == 0 || okCount[2].Load() == 0 {
		t.Fatal("the surviving nodes served nothing")
	}
}
