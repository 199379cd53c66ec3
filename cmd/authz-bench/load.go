package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/authz-dev/authz/keys"
)

// Bounds that keep a run from turning into a flood.
const (
	maxWorkers  = 512
	maxDuration = 5 * time.Minute
	maxRounds   = 10
)

type loadConfig struct {
	tokenURL     string
	jwksURL      string
	target       string
	clientID     string
	clientSecret string
	clientCount  int
	issuers      int
	issuerPrefix string
	first        int
	versusIssuer int
	scope        string
	workers      int
	duration     time.Duration
	rate         int
	compare      bool
	versusURL    string
	versusSecret string
	// The versus phase's own clients, when it loads other ones: another
	// prefix, count or first index (-1: --first).
	versusClientID string
	versusClients  int
	versusFirst    int
	rounds         int
	alg            string
	cpuProfile     string
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("authz-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadConfig
	fs.StringVar(&c.tokenURL, "token-url", "", "the issuer's token endpoint (loopback only)")
	fs.StringVar(&c.jwksURL, "jwks-url", "", "the issuer's JWKS (loopback only), for --target jwks")
	fs.StringVar(&c.target, "target", "token", "what to load: token or jwks")
	fs.StringVar(&c.clientID, "client-id", "", "client id; with --clients, the prefix of seeded ids")
	fs.StringVar(&c.clientSecret, "client-secret", "", "client secret (seeded clients share one)")
	fs.IntVar(&c.clientCount, "clients", 0, "spread requests over this many seeded clients, <client-id>000001 on")
	fs.IntVar(&c.issuers, "issuers", 0, "the seeded clients are spread over this many seeded issuers, as authz-bench seed --issuers spreads them (client k belongs to issuer k mod N); the URLs name the issuer as {issuer}")
	fs.StringVar(&c.issuerPrefix, "issuer-prefix", "t-", "with --issuers, the prefix of seeded issuer names")
	fs.IntVar(&c.first, "first", 0, "index of the first seeded client (and so issuer) to use: a rerun with a higher one meets issuers and clients the server has not touched")
	fs.IntVar(&c.versusIssuer, "versus-issuers", 0, "the seeded issuers at --versus-token-url (default: --issuers)")
	fs.StringVar(&c.scope, "scope", "", "scope to request")
	fs.IntVar(&c.workers, "workers", 2*runtime.NumCPU(), "concurrent keep-alive connections")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each phase runs")
	fs.IntVar(&c.rate, "rate", 0, "requests per second in all (0: as fast as the server answers)")
	fs.BoolVar(&c.compare, "compare", false, "also measure a trivial handler and raw signing, and print ratios")
	fs.StringVar(&c.versusURL, "versus-token-url", "", "compare with this second token endpoint (another build or configuration, loopback only) in interleaved rounds, and print ratios")
	fs.StringVar(&c.versusSecret, "versus-client-secret", "", "the client secret at --versus-token-url (default: --client-secret)")
	fs.StringVar(&c.versusClientID, "versus-client-id", "", "the seeded clients' prefix at --versus-token-url (default: --client-id)")
	fs.IntVar(&c.versusClients, "versus-clients", 0, "the seeded clients at --versus-token-url (default: --clients)")
	fs.IntVar(&c.versusFirst, "versus-first", -1, "the first seeded client at --versus-token-url (default: --first)")
	fs.IntVar(&c.rounds, "rounds", 1, "with --compare: run the phases this many times, interleaved, and add them up, so a drift in the machine's load touches every phase alike")
	fs.StringVar(&c.alg, "alg", "RS256", "with --compare: the issuer's signing algorithm")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.workers < 1 || c.workers > maxWorkers || c.duration <= 0 || c.duration > maxDuration || c.rate < 0 || c.rounds < 1 || c.rounds > maxRounds {
		return fmt.Errorf("--workers must be 1 to %d, --duration at most %s and --rounds 1 to %d", maxWorkers, maxDuration, maxRounds)
	}
	if c.issuers < 0 || c.first < 0 || c.versusIssuer < 0 || c.versusClients < 0 || c.versusFirst < -1 {
		return errors.New("--issuers, --first and the --versus counts cannot be negative")
	}
	if c.versusIssuer == 0 {
		c.versusIssuer = c.issuers
	}
	if c.issuers > 0 && c.target == "token" && c.clientCount == 0 {
		return errors.New("--issuers needs --clients: a token request's issuer is its seeded client's")
	}
	if c.issuers > 0 && !strings.Contains(c.tokenURL+c.jwksURL, issuerPlaceholder) {
		return fmt.Errorf("with --issuers, the URL names the issuer as %s: http://127.0.0.1:8080/issuers/%s/token", issuerPlaceholder, issuerPlaceholder)
	}
	var req requestFactory
	switch c.target {
	case "token":
		if c.clientID == "" || c.clientSecret == "" {
			return errors.New("--client-id and --client-secret are required")
		}
		if err := requireLoopback(c.tokenURL); err != nil {
			return err
		}
		req = tokenRequests(c)
	case "jwks":
		if err := requireLoopback(c.jwksURL); err != nil {
			return err
		}
		req = func(i int) (*http.Request, error) {
			return http.NewRequest(http.MethodGet, c.issuerURL(c.jwksURL, c.first+i), nil)
		}
	default:
		return fmt.Errorf("--target must be token or jwks")
	}
	name := map[string]string{"token": "token endpoint", "jwks": "JWKS endpoint"}[c.target]
	if c.versusURL != "" {
		if c.target != "token" || c.compare {
			return errors.New("--versus-token-url compares two token endpoints, without --compare")
		}
		if err := requireLoopback(c.versusURL); err != nil {
			return err
		}
		versus := c
		versus.tokenURL, versus.issuers = c.versusURL, c.versusIssuer
		if c.versusSecret != "" {
			versus.clientSecret = c.versusSecret
		}
		if c.versusClientID != "" {
			versus.clientID = c.versusClientID
		}
		if c.versusClients > 0 {
			versus.clientCount = c.versusClients
		}
		if c.versusFirst >= 0 {
			versus.first = c.versusFirst
		}
		phases, byRound := interleave(c.rounds, []phase{
			continuing(ctx, name, c), continuing(ctx, "versus endpoint", versus),
		})
		report(stdout, c, phases)
		p99Ratios(stdout, phases, byRound)
		return nil
	}
	if !c.compare {
		report(stdout, c, []result{drive(ctx, name, req, c.workers, c.duration, c.rate)})
		return nil
	}
	trivialURL, stopTrivial, err := startTrivialServer(ctx)
	if err != nil {
		return err
	}
	defer stopTrivial()
	baseline := c
	baseline.tokenURL = trivialURL
	trivial := tokenRequests(baseline)
	if c.target == "jwks" {
		trivial = func(int) (*http.Request, error) { return http.NewRequest(http.MethodGet, trivialURL, nil) }
	}
	steps := []phase{{"trivial handler", func() result { return drive(ctx, "trivial handler", trivial, c.workers, c.duration, c.rate) }}}
	if c.target == "token" {
		signing, err := signingLoad(c.alg)
		if err != nil {
			return err
		}
		steps = append(steps, phase{"raw signing", func() result { return signing(ctx, c.duration) }})
	}
	steps = append(steps, phase{name, func() result { return drive(ctx, name, req, c.workers, c.duration, c.rate) }})
	sums, _ := interleave(c.rounds, steps)
	report(stdout, c, sums)
	return nil
}

// phase is one measurement of a comparison.
type phase struct {
	name string
	run  func() result
}

// continuing is a token phase whose every round starts with the seeded
// client after the last one its previous round asked for, so that a phase
// over more clients than a round reaches meets untouched ones in every
// round, as in its first.
func continuing(ctx context.Context, name string, c loadConfig) phase {
	return phase{name, func() result {
		r := drive(ctx, name, tokenRequests(c), c.workers, c.duration, c.rate)
		c.first += r.requests
		return r
	}}
}

// interleave runs the phases rounds times, the order reversed every other
// round so that a drift in the machine's load touches each phase alike. It
// returns each phase's rounds added up, in the order given, and each
// round's results apart.
func interleave(rounds int, phases []phase) (sums []result, byRound [][]result) {
	sums = make([]result, len(phases))
	for round := range rounds {
		results := make([]result, len(phases))
		for j := range phases {
			i := j
			if round%2 == 1 {
				i = len(phases) - 1 - j
			}
			results[i] = phases[i].run()
			if round == 0 {
				sums[i] = results[i]
			} else {
				sums[i] = sums[i].add(results[i])
			}
		}
		byRound = append(byRound, results)
	}
	return sums, byRound
}

// p99Ratios reports the p99 ratio of the second phase to the first over
// all rounds, then round by round with their median: a stall of the
// machine (a shared host, another process) lands in one round and can set
// the pooled p99 alone, while the median of the rounds' ratios shows what
// most rounds saw.
func p99Ratios(w io.Writer, sums []result, byRound [][]result) {
	p99 := func(r result) float64 { return float64(r.percentile(0.99)) }
	fmt.Fprintf(w, "ratio p99 %s ÷ %s = %.2f\n", sums[1].name, sums[0].name, p99(sums[1])/p99(sums[0]))
	var ratios []float64
	for _, round := range byRound {
		ratios = append(ratios, p99(round[1])/p99(round[0]))
	}
	shown := make([]string, len(ratios))
	for i, r := range ratios {
		shown[i] = fmt.Sprintf("%.2f", r)
	}
	slices.Sort(ratios)
	median := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		median = (ratios[len(ratios)/2-1] + median) / 2
	}
	fmt.Fprintf(w, "ratio p99 by round = %s (median %.2f)\n", strings.Join(shown, " "), median)
}

// requireLoopback refuses any target that is not this machine.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	addrs, err := net.LookupIP(u.Hostname())
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("cannot resolve %s", u.Hostname())
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: authz-bench loads this machine only", u.Hostname())
		}
	}
	return nil
}

// requestFactory makes the i-th request of a worker.
type requestFactory func(i int) (*http.Request, error)

func tokenRequests(c loadConfig) requestFactory {
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.scope != "" {
		form.Set("scope", c.scope)
	}
	body := form.Encode()
	return func(i int) (*http.Request, error) {
		r, err := http.NewRequest(http.MethodPost, c.tokenURL, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		id := c.clientID
		if c.clientCount > 0 {
			k := (c.first + i) % c.clientCount
			id = fmt.Sprintf("%s%06d", c.clientID, 1+k)
			r.URL, err = url.Parse(c.issuerURL(c.tokenURL, k))
			if err != nil {
				return nil, err
			}
		}
		r.SetBasicAuth(id, c.clientSecret)
		return r, nil
	}
}

// issuerPlaceholder stands for the issuer's name in the URLs of a load over
// many seeded issuers.
const issuerPlaceholder = "{issuer}"

// issuerURL is raw with the placeholder replaced by the name of the issuer
// seeded client k belongs to.
func (c loadConfig) issuerURL(raw string, k int) string {
	if c.issuers == 0 {
		return raw
	}
	return strings.Replace(raw, issuerPlaceholder, fmt.Sprintf("%s%06d", c.issuerPrefix, 1+k%c.issuers), 1)
}

// result is one phase's measurements.
type result struct {
	name      string
	ops       int64
	errors    int64
	elapsed   time.Duration
	latencies []time.Duration // empty for phases without requests
	// timerLate is, for each request a worker waited to send, how long
	// after its due time the worker's timer fired; not in latencies.
	timerLate []time.Duration
	// requests is how many request indexes the phase used: past the
	// highest one any worker made.
	requests int
}

// add sums two runs of the same phase.
func (r result) add(o result) result {
	all := slices.Concat(r.latencies, o.latencies)
	slices.Sort(all)
	late := slices.Concat(r.timerLate, o.timerLate)
	slices.Sort(late)
	return result{name: r.name, ops: r.ops + o.ops, errors: r.errors + o.errors, elapsed: r.elapsed + o.elapsed, latencies: all,
		timerLate: late, requests: r.requests + o.requests}
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration { return percentile(r.latencies, p) }

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// maxTimerSlack is how much of a timer's lateness a request's latency
// leaves out: the p99 of Go's timer slack on an idle machine, with margin.
const maxTimerSlack = 2 * time.Millisecond

// latencyStart is when the latency of a request due at due, whose worker's
// timer fired at fired, starts: at most maxTimerSlack after due.
func latencyStart(due, fired time.Time) time.Time {
	return due.Add(min(max(0, fired.Sub(due)), maxTimerSlack))
}

// drive sends requests from workers over keep-alive connections for d,
// paced to rate per second in all when rate > 0.
func drive(ctx context.Context, name string, next requestFactory, workers int, d time.Duration, rate int) result {
	transport := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ops, errs, scheduled atomic.Int64
	samples, timerLate := make([][]time.Duration, workers), make([][]time.Duration, workers)
	reached := make([]int, workers) // each worker's last request index, plus one
	start := time.Now()
	// With a rate, request n is due at start + n/rate, whoever sends it: an
	// open-loop schedule that neither drops nor bunches requests. Its
	// latency counts from when it was due, not from when a worker got to
	// send it: a request that waited for a free worker waited as a real
	// client's would have, and leaving that out would hide exactly the
	// queueing a slow answer causes (coordinated omission).
	//
	// A worker free before a request is due waits on a timer, and Go's
	// timers fire late on an idle machine: the poller sleeps in whole
	// milliseconds, so by up to about a millisecond (p50 0.59 ms, p90
	// 1.0 ms here; BENCHMARKS.md). That delay is the load tool's, not the
	// server's: up to maxTimerSlack of it is left out of the request's
	// latency and reported apart. More is not slack but the tool starved
	// of CPU, by a busy server as much as anything: it counts, as a
	// real client's queueing would.
	wait := func() (from time.Time, late time.Duration, waited, ok bool) {
		if rate <= 0 {
			return time.Now(), 0, false, ctx.Err() == nil
		}
		due := start.Add(time.Duration(scheduled.Add(1)) * time.Second / time.Duration(rate))
		d := time.Until(due)
		if d <= 0 {
			return due, 0, false, ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return due, 0, false, false
		case <-time.After(d):
		}
		fired := time.Now()
		return latencyStart(due, fired), max(0, fired.Sub(due)), true, ctx.Err() == nil
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i += workers {
				from, late, waited, ok := wait()
				if !ok {
					return
				}
				if waited {
					timerLate[w] = append(timerLate[w], late)
				}
				reached[w] = i + 1
				req, err := next(i)
				if err != nil {
					errs.Add(1)
					return
				}
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				samples[w] = append(samples[w], time.Since(from))
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	all, late := slices.Concat(samples...), slices.Concat(timerLate...)
	slices.Sort(all)
	slices.Sort(late)
	return result{name: name, ops: ops.Load(), errors: errs.Load(), elapsed: time.Since(start), latencies: all, timerLate: late,
		requests: slices.Max(reached)}
}

// startTrivialServer starts the baseline: a trivial net/http handler on
// loopback, the ceiling any HTTP endpoint here can reach. It runs in a
// process of its own, as the server under test does: in the load tool's
// own process it would share one Go runtime with the workers and skip the
// cross-process wake-ups every real request pays.
func startTrivialServer(ctx context.Context) (url string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, trivialServerCommand)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the trivial server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the trivial server did not say where it listens: %w", err)
	}
	return "http://" + strings.TrimSpace(addr) + "/", stop, nil
}

// trivialServerCommand is the hidden command the baseline phase runs.
const trivialServerCommand = "trivial-server"

// serveTrivial answers every request with a small JSON object on a loopback
// port it prints, until ctx ends (SIGINT or SIGTERM) or the load tool kills
// it. It doubles as a sink for OTLP/HTTP exports in benchmarks.
func serveTrivial(ctx context.Context, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// signingLoad prepares a phase that signs a token-sized payload on every
// core, with no HTTP: the ceiling of a token endpoint whose only real work is
// the signature.
func signingLoad(alg string) (func(ctx context.Context, d time.Duration) result, error) {
	priv, err := keys.Generate(alg)
	if err != nil {
		return nil, err
	}
	key, err := keys.NewActiveKey(priv, alg, "bench")
	if err != nil {
		return nil, err
	}
	payload := make([]byte, 320)
	_, _ = rand.Read(payload)
	return func(ctx context.Context, d time.Duration) result { return signCompacts(ctx, key, alg, payload, d) }, nil
}

func signCompacts(ctx context.Context, key *keys.ActiveKey, alg string, payload []byte, d time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ops atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := key.SignCompact(payload); err == nil {
					ops.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return result{name: "raw signing " + alg, ops: ops.Load(), elapsed: time.Since(start)}
}

func report(w io.Writer, c loadConfig, phases []result) {
	fmt.Fprintf(w, "workers=%d duration=%s rounds=%d rate=%d cpus=%d\n", c.workers, c.duration, c.rounds, c.rate, runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tops/s\tp50\tp90\tp99\tmax\terrors\t")
	for _, p := range phases {
		if len(p.latencies) == 0 {
			fmt.Fprintf(tw, "%s\t%.0f\t-\t-\t-\t-\t%d\t\n", p.name, p.rate(), p.errors)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", p.name, p.rate(), ms(p.percentile(0.5)), ms(p.percentile(0.9)),
			ms(p.percentile(0.99)), ms(p.latencies[len(p.latencies)-1]), p.errors)
	}
	_ = tw.Flush()
	for _, p := range phases {
		if len(p.timerLate) > 0 {
			fmt.Fprintf(w, "load tool timer lateness, up to %s of it not in the latencies above: %s p50 %s p99 %s max %s (%d of its requests waited for their due time)\n",
				ms(maxTimerSlack), p.name, ms(percentile(p.timerLate, 0.5)), ms(percentile(p.timerLate, 0.99)), ms(p.timerLate[len(p.timerLate)-1]), len(p.timerLate))
		}
	}
	if len(phases) < 2 {
		return
	}
	last := phases[len(phases)-1]
	fmt.Fprintf(w, "ratio %s ÷ %s = %.2f\n", last.name, phases[0].name, last.rate()/phases[0].rate())
	if len(phases) == 3 {
		fmt.Fprintf(w, "ratio %s ÷ %s = %.2f\n", last.name, phases[1].name, last.rate()/phases[1].rate())
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
