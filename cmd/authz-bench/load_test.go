package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for authz-bench when the baseline
// phase re-executes itself as the trivial server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == trivialServerCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestCompareRunsEveryPhaseInRoundsAndPrintsTheRatios(t *testing.T) {
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer target.Close()
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"run", "--compare", "--target", "jwks", "--jwks-url", target.URL,
		"--workers", "2", "--duration", "200ms", "--rounds", "2"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	report := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`rounds=2`),
		regexp.MustCompile(`(?m)^\s+trivial handler\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`(?m)^\s+JWKS endpoint\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`ratio JWKS endpoint ÷ trivial handler = \d+\.\d\d`),
	} {
		if !want.MatchString(report) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
	if hits.Load() == 0 {
		t.Error("the JWKS phase sent nothing to the target")
	}
}

// TestVersusComparesTwoTokenEndpointsInRounds: each endpoint gets its own
// secret and the same number of rounds.
func TestVersusComparesTwoTokenEndpointsInRounds(t *testing.T) {
	endpoint := func(secret string, hits *atomic.Int64) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, got, _ := r.BasicAuth(); got != secret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			hits.Add(1)
			_, _ = w.Write([]byte(`{"access_token":"x"}`))
		}))
	}
	var aHits, bHits atomic.Int64
	a, b := endpoint("secret-a", &aHits), endpoint("secret-b", &bHits)
	defer a.Close()
	defer b.Close()
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"run", "--token-url", a.URL, "--client-id", "c", "--client-secret", "secret-a",
		"--versus-token-url", b.URL, "--versus-client-secret", "secret-b", "--workers", "2", "--duration", "200ms", "--rounds", "3"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	report := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s+token endpoint\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`(?m)^\s+versus endpoint\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`ratio versus endpoint ÷ token endpoint = \d+\.\d\d`),
		regexp.MustCompile(`ratio p99 versus endpoint ÷ token endpoint = \d+\.\d\d`),
		regexp.MustCompile(`ratio p99 by round = \d+\.\d\d \d+\.\d\d \d+\.\d\d \(median \d+\.\d\d\)`),
	} {
		if !want.MatchString(report) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
	if aHits.Load() == 0 || bHits.Load() == 0 {
		t.Errorf("hits: %d and %d", aHits.Load(), bHits.Load())
	}
}

// recordingTarget is a load target that hands every request to record,
// under the lock it returns, and answers with a token.
func recordingTarget(t *testing.T, record func(*http.Request)) (*httptest.Server, *sync.Mutex) {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		record(r)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"access_token":"x"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &mu
}

// TestVersusRoundsMeetClientsNotAskedBefore: a versus phase over clients of
// its own (most of ten million, each a cache miss) starts every round
// after the last client its previous round asked for, so its later rounds
// measure misses too, not clients the first round warmed.
func TestVersusRoundsMeetClientsNotAskedBefore(t *testing.T) {
	seen := map[string]int{}
	srv, mu := recordingTarget(t, func(r *http.Request) {
		id, _, _ := r.BasicAuth()
		seen[id]++
	})
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"run", "--token-url", srv.URL, "--client-id", "warm-", "--clients", "3", "--client-secret", "s",
		"--versus-token-url", srv.URL, "--versus-client-id", "cold-", "--versus-clients", "9000000", "--versus-first", "1000",
		"--workers", "3", "--duration", "150ms", "--rounds", "3"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	var warm, cold int
	for id, n := range seen {
		switch {
		case strings.HasPrefix(id, "warm-"):
			warm += n
		case strings.HasPrefix(id, "cold-"):
			cold += n
			if n != 1 {
				t.Errorf("%s was asked for %d times; every versus request should meet a client not asked before", id, n)
			}
			if id < "cold-001001" {
				t.Errorf("%s precedes --versus-first", id)
			}
		default:
			t.Errorf("unexpected client %q", id)
		}
	}
	if warm == 0 || cold == 0 {
		t.Fatalf("warm requests %d, cold %d", warm, cold)
	}
}

// TestLoadSpreadsOverSeededIssuers: client k is sent to the issuer seed
// gave it, k mod --issuers, from --first on (wrapping round --clients),
// for tokens and JWKS alike.
func TestLoadSpreadsOverSeededIssuers(t *testing.T) {
	seen := map[string]bool{}
	srv, _ := recordingTarget(t, func(r *http.Request) {
		id, _, _ := r.BasicAuth()
		seen[r.URL.Path+" "+id] = true
	})
	for _, args := range [][]string{
		{"--token-url", srv.URL + "/issuers/{issuer}/token", "--client-id", "c-", "--client-secret", "s", "--clients", "6"},
		{"--target", "jwks", "--jwks-url", srv.URL + "/issuers/{issuer}/jwks.json"},
	} {
		var out, errs bytes.Buffer
		args = append([]string{"run", "--issuers", "3", "--first", "2", "--workers", "1", "--rate", "200", "--duration", "300ms"}, args...)
		if err := run(context.Background(), args, &out, &errs); err != nil {
			t.Fatalf("%v\n%s", err, errs.String())
		}
	}
	for _, want := range []string{
		"/issuers/t-000003/token c-000003", "/issuers/t-000001/token c-000004", "/issuers/t-000003/token c-000006",
		"/issuers/t-000003/jwks.json ", "/issuers/t-000001/jwks.json ",
	} {
		if !seen[want] {
			t.Errorf("no request %q among %v", want, seen)
		}
	}
	for key := range seen {
		var issuer, client int
		if _, err := fmt.Sscanf(key, "/issuers/t-%06d/token c-%06d", &issuer, &client); err == nil && (client-1)%3+1 != issuer {
			t.Errorf("client %d was sent to issuer %d, not its own", client, issuer)
		}
	}
}

func TestRunRefusesTargetsBeyondLoopbackAndUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--target", "jwks", "--jwks-url", "http://example.com/jwks.json"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--duration", "1h"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--workers", "100000"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--compare", "--rounds", "1000"},
		{"run", "--token-url", "http://127.0.0.1:1/", "--client-id", "c", "--client-secret", "s", "--versus-token-url", "http://example.com/token"},
		{"run", "--token-url", "http://127.0.0.1:1/token", "--client-id", "c", "--client-secret", "s", "--clients", "2", "--issuers", "2"},
		{"run", "--token-url", "http://127.0.0.1:1/{issuer}/token", "--client-id", "c", "--client-secret", "s", "--issuers", "2"},
	} {
		var out, errs bytes.Buffer
		if err := run(context.Background(), args, &out, &errs); err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}

// TestTrivialServerStopsOnSIGTERM: a script that starts it as a sink (the
// OTLP exporter's, in run-benchmarks.sh) stops it the usual way.
func TestTrivialServerStopsOnSIGTERM(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, trivialServerCommand)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+strings.TrimSpace(addr)+"/v1/traces", "application/x-protobuf", strings.NewReader("x"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the trivial server does not answer: %v", err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the trivial server ignores SIGTERM")
	}
}

// TestRateLatencyCountsFromTheScheduledSendTime: with a rate one worker
// cannot keep, requests queue in the load tool, and their latency must show
// it (coordinated omission). The target takes 40 ms; one worker at 100
// requests a second sends its fifth request at the earliest 160 ms after
// it was due, so some latency is far above 40 ms.
func TestRateLatencyCountsFromTheScheduledSendTime(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(40 * time.Millisecond)
	}))
	defer target.Close()
	next := func(int) (*http.Request, error) { return http.NewRequest(http.MethodGet, target.URL, nil) }
	r := drive(context.Background(), "slow", next, 1, 400*time.Millisecond, 100)
	if len(r.latencies) < 5 {
		t.Fatalf("only %d requests completed", len(r.latencies))
	}
	if worst := r.latencies[len(r.latencies)-1]; worst < 150*time.Millisecond {
		t.Errorf("the slowest request took %v from its due time: the queueing in the load tool is hidden", worst)
	}
}

// TestTimerLatenessIsReportedApart: a worker free before its request is
// due waits on a timer, which fires late by up to a millisecond on an idle
// machine. That lateness is the load tool's: it is kept apart from the
// latencies and reported.
func TestTimerLatenessIsReportedApart(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	next := func(int) (*http.Request, error) { return http.NewRequest(http.MethodGet, target.URL, nil) }
	r := drive(context.Background(), "fast", next, 1, 300*time.Millisecond, 20)
	if len(r.timerLate) < 3 || len(r.timerLate) > len(r.latencies)+1 {
		t.Fatalf("%d requests, %d of them waited for their due time; want most of them", len(r.latencies), len(r.timerLate))
	}
	var out bytes.Buffer
	report(&out, loadConfig{workers: 1, rate: 20}, []result{r})
	if !strings.Contains(out.String(), "load tool timer lateness, up to 2.00ms of it not in the latencies above: fast p50 ") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// TestOnlyTimerSlackIsLeftOutOfLatency: a timer that fires a little late
// is the load tool's slack; one that fires much later means the tool was
// starved of CPU, which a busy server causes too, and that counts.
func TestOnlyTimerSlackIsLeftOutOfLatency(t *testing.T) {
	due := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		late, counted time.Duration
	}{
		{0, 0},
		{700 * time.Microsecond, 0},
		{maxTimerSlack, 0},
		{50 * time.Millisecond, 50*time.Millisecond - maxTimerSlack},
	} {
		start := latencyStart(due, due.Add(tc.late))
		if counted := due.Add(tc.late).Sub(start); counted != tc.counted {
			t.Errorf("timer %v late: %v of it counted, want %v", tc.late, counted, tc.counted)
		}
	}
}

func TestP99RatiosShowEachRoundAndTheirMedian(t *testing.T) {
	// lat is a result whose p99 is p99 milliseconds.
	lat := func(name string, p99 int) result {
		r := result{name: name}
		for range 100 {
			r.latencies = append(r.latencies, time.Duration(p99)*time.Millisecond)
		}
		return r
	}
	for _, tt := range []struct {
		name   string
		rounds [][2]int // each round's p99s, first phase then second
		want   string
	}{
		{"odd", [][2]int{{10, 12}, {10, 30}, {10, 9}}, "ratio p99 by round = 1.20 3.00 0.90 (median 1.20)"},
		{"even", [][2]int{{10, 12}, {10, 30}, {10, 9}, {10, 10}}, "ratio p99 by round = 1.20 3.00 0.90 1.00 (median 1.10)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var byRound [][]result
			sums := []result{{name: "token endpoint"}, {name: "versus endpoint"}}
			for _, r := range tt.rounds {
				round := []result{lat("token endpoint", r[0]), lat("versus endpoint", r[1])}
				byRound = append(byRound, round)
				sums[0], sums[1] = sums[0].add(round[0]), sums[1].add(round[1])
			}
			var out bytes.Buffer
			p99Ratios(&out, sums, byRound)
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("got:\n%swant a line %q", out.String(), tt.want)
			}
		})
	}
}
