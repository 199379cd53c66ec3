package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/authz-dev/authz/store/postgres/pgtest"
)

const chartDir = "../../deploy/helm/authz"

// helm is the Helm the test set-up builds into the user's cache.
func helm(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cache, "authz", "tools", "helm-v4.3.2", "helm")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("helm is missing (%s): .ci/ensure-test-tools builds it (make test runs it)", path)
		}
		t.Skipf("helm is missing (%s): run .ci/ensure-test-tools (make test does)", path)
	}
	return path
}

func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// rendered is what `helm template` produced, each object decoded into its
// Kubernetes type.
type rendered struct {
	deployment     *appsv1.Deployment
	services       map[string]*corev1.Service // by app.kubernetes.io/component
	secrets        map[string]*corev1.Secret
	serviceAccount *corev1.ServiceAccount
	pdb            *policyv1.PodDisruptionBudget
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	ingress        *networkingv1.Ingress
	networkPolicy  *networkingv1.NetworkPolicy
	serviceMonitor *monitoringv1.ServiceMonitor
	kinds          []string
}

// renderChart runs helm lint and helm template with extra arguments (-f,
// --set) and decodes every manifest strictly: a field its type does not
// have, or a kind this test does not know, fails.
func renderChart(t *testing.T, args ...string) *rendered {
	t.Helper()
	lint := runHelm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
	if !strings.Contains(lint, "0 chart(s) failed") {
		t.Fatalf("helm lint:\n%s", lint)
	}
	out := runHelm(t, append([]string{"template", "authz", chartDir, "--namespace", "identity"}, args...)...)
	r := &rendered{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}}
	for doc := range strings.SplitSeq(out, "\n---\n") {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if head.Kind == "" {
			continue // only comments
		}
		var into any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			r.deployment = &appsv1.Deployment{}
			into = r.deployment
		case "v1 Service":
			into = &corev1.Service{}
		case "v1 Secret":
			into = &corev1.Secret{}
		case "v1 ServiceAccount":
			r.serviceAccount = &corev1.ServiceAccount{}
			into = r.serviceAccount
		case "policy/v1 PodDisruptionBudget":
			r.pdb = &policyv1.PodDisruptionBudget{}
			into = r.pdb
		case "autoscaling/v2 HorizontalPodAutoscaler":
			r.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			into = r.hpa
		case "networking.k8s.io/v1 Ingress":
			r.ingress = &networkingv1.Ingress{}
			into = r.ingress
		case "networking.k8s.io/v1 NetworkPolicy":
			r.networkPolicy = &networkingv1.NetworkPolicy{}
			into = r.networkPolicy
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.serviceMonitor = &monitoringv1.ServiceMonitor{}
			into = r.serviceMonitor
		default:
			t.Fatalf("the chart renders %s %s, which this test does not check", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", head.Kind, err, doc)
		}
		switch o := into.(type) {
		case *corev1.Service:
			r.services[o.Labels["app.kubernetes.io/component"]] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		}
		r.kinds = append(r.kinds, head.Kind)
	}
	if r.deployment == nil || len(r.deployment.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("no Deployment with one container in:\n%s", out)
	}
	return r
}

func (r *rendered) container() corev1.Container { return r.deployment.Spec.Template.Spec.Containers[0] }

func (r *rendered) env(name string) (corev1.EnvVar, bool) {
	for _, e := range r.container().Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// containerPort resolves a named or numbered port of the container.
func (r *rendered) containerPort(t *testing.T, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range r.container().Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %s is not one of the container's", p.String())
	return 0
}

// serveEnvironment is every variable `authz serve` reads.
func serveEnvironment() map[string]bool {
	names := map[string]bool{}
	(&cli{}).serveCommand().Flags().VisitAll(func(f *pflag.Flag) {
		for _, env := range f.Annotations[envAnnotation] {
			names[env] = true
		}
	})
	return names
}

// checkChartInvariants holds what every rendering must be, whatever the
// values.
func checkChartInvariants(t *testing.T, r *rendered) {
	t.Helper()
	pod := r.deployment.Spec.Template
	c := r.container()
	sc, psc := c.SecurityContext, pod.Spec.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context = %+v, want non-root, read-only root, no escalation, no capabilities", sc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v, want the runtime's seccomp profile", psc)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it never uses")
	}

	// Probes: readiness on /readyz, liveness and start-up on /healthz, all
	// on the public listener.
	for name, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}} {
		if want.probe == nil || want.probe.HTTPGet == nil || want.probe.HTTPGet.Path != want.path || r.containerPort(t, want.probe.HTTPGet.Port) != 8080 {
			t.Errorf("%s probe = %+v, want GET %s on the public port", name, want.probe, want.path)
		}
	}

	// Every AUTHZ_ variable is one the server reads; secrets arrive by
	// reference or as files, never as literal values in the pod spec.
	known := serveEnvironment()
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "AUTHZ_") && !known[e.Name] {
			t.Errorf("the chart sets %s, which authz serve does not read", e.Name)
		}
	}
	if db, _ := r.env("AUTHZ_DATABASE_URL"); db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil || db.Value != "" {
		t.Errorf("AUTHZ_DATABASE_URL = %+v, want a Secret reference", db)
	}
	kek, _ := r.env("AUTHZ_KEK")
	if !r.mounted(kek.Value) {
		t.Errorf("AUTHZ_KEK = %q, want a file on a mounted Secret", kek.Value)
	}
	for _, name := range []string{"AUTHZ_PUBLIC_ADDR", "AUTHZ_ADMIN_ADDR"} {
		addr, _ := r.env(name)
		port, _ := strconv.Atoi(strings.TrimPrefix(addr.Value, ":"))
		if r.containerPort(t, intstr.FromInt32(int32(port))) == 0 {
			t.Errorf("%s = %q is no container port", name, addr.Value)
		}
	}

	// The Services: public and admin, both selecting the pods, admin never
	// reachable from outside the cluster.
	public, admin := r.services["public"], r.services["admin"]
	if public == nil || admin == nil {
		t.Fatalf("services = %v, want public and admin", r.services)
	}
	if admin.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("the admin Service is %s, want ClusterIP", admin.Spec.Type)
	}
	for _, s := range []*corev1.Service{public, admin} {
		if !selects(s.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, pod.Labels)
		}
		for _, p := range s.Spec.Ports {
			r.containerPort(t, p.TargetPort)
		}
	}
	if got := r.containerPort(t, admin.Spec.Ports[0].TargetPort); got != 8081 {
		t.Errorf("the admin Service leads to port %d", got)
	}
	if r.pdb == nil || !selects(r.pdb.Spec.Selector.MatchLabels, pod.Labels) || r.pdb.Spec.MaxUnavailable == nil {
		t.Errorf("PodDisruptionBudget = %+v, want maxUnavailable over the pods", r.pdb)
	}
	if r.ingress != nil {
		for _, rule := range r.ingress.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service.Name != public.Name {
					t.Errorf("the Ingress routes to %s, want the public Service only", p.Backend.Service.Name)
				}
			}
		}
	}
	if (r.hpa != nil) == (r.deployment.Spec.Replicas != nil) {
		t.Errorf("replicas = %v with autoscaler %v: exactly one of them sets the count", r.deployment.Spec.Replicas, r.hpa != nil)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// mounted says whether path lies on one of the container's volume mounts.
func (r *rendered) mounted(path string) bool {
	for _, m := range r.container().VolumeMounts {
		if path != "" && strings.HasPrefix(path, m.MountPath+"/") {
			return true
		}
	}
	return false
}

func TestHelmChartDefaultValues(t *testing.T) {
	t.Parallel()
	r := renderChart(t)
	checkChartInvariants(t, r)
	if r.ingress != nil || r.hpa != nil || r.serviceMonitor != nil || len(r.secrets) != 0 {
		t.Errorf("the defaults render %v: want no Ingress, autoscaler, ServiceMonitor or Secret", r.kinds)
	}
	// The admin API is reachable from no pod until the operator says which.
	if r.networkPolicy == nil || len(r.networkPolicy.Spec.Ingress) != 1 || r.containerPort(t, *r.networkPolicy.Spec.Ingress[0].Ports[0].Port) != 8080 {
		t.Errorf("NetworkPolicy = %+v, want only the public port open", r.networkPolicy)
	}
	if db, _ := r.env("AUTHZ_DATABASE_URL"); db.ValueFrom.SecretKeyRef.Name != "authz-database" {
		t.Errorf("the database URL comes from %s, want the documented authz-database", db.ValueFrom.SecretKeyRef.Name)
	}
	if *r.deployment.Spec.Replicas < 2 {
		t.Errorf("the defaults run %d replica(s): one node's drain would stop token issuance", *r.deployment.Spec.Replicas)
	}
	req, limits := r.container().Resources.Requests, r.container().Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want CPU and memory requests and a memory limit", r.container().Resources)
	}
}

func TestHelmChartFullValues(t *testing.T) {
	t.Parallel()
	r := renderChart(t, "-f", filepath.Join(chartDir, "ci", "full-values.yaml"))
	checkChartInvariants(t, r)
	for _, kind := range []string{"Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy", "Secret", "ServiceAccount"} {
		if !slices.Contains(r.kinds, kind) {
			t.Errorf("the full values render no %s (%v)", kind, r.kinds)
		}
	}
	c := r.container()
	if c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Error("with TLS the probes still speak plain http")
	}
	if cert, _ := r.env("AUTHZ_TLS_CERT"); !r.mounted(cert.Value) {
		t.Errorf("AUTHZ_TLS_CERT = %q, not on a mount", cert.Value)
	}
	spec, _ := yaml.Marshal(r.deployment)
	for _, secret := range []string{"example-password", "Zm9yIGEgdGVzdCByZW5kZXJpbmcg"} {
		if bytes.Contains(spec, []byte(secret)) {
			t.Errorf("the Deployment holds a secret value (%s…)", secret[:8])
		}
	}
	m := r.serviceMonitor.Spec
	if len(m.Endpoints) != 1 || m.Endpoints[0].Port != "admin" || m.Endpoints[0].Path != "/metrics" ||
		!selects(m.Selector.MatchLabels, r.services["admin"].Labels) || selects(m.Selector.MatchLabels, r.services["public"].Labels) {
		t.Errorf("ServiceMonitor = %+v, want /metrics on the admin Service only", m)
	}
	np := r.networkPolicy.Spec
	if len(np.Ingress) != 2 || len(np.Ingress[0].From) != 0 || len(np.Ingress[1].From) == 0 {
		t.Errorf("NetworkPolicy = %+v, want the public port open and the admin port limited", np)
	}
	for _, rule := range np.Ingress {
		for _, p := range rule.Ports {
			r.containerPort(t, *p.Port)
		}
	}
	if r.hpa.Spec.ScaleTargetRef.Name != r.deployment.Name {
		t.Errorf("the autoscaler scales %s", r.hpa.Spec.ScaleTargetRef.Name)
	}
}

// TestHelmChartRunsTheServer starts the real binary with the environment
// and files the rendered Deployment gives its container (Secrets resolved,
// mounts mapped to a temporary directory) and asks it what the kubelet and
// Prometheus would: every probe and the ServiceMonitor's scrape succeed.
func TestHelmChartRunsTheServer(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	r := renderChart(t,
		"--set", "database.url="+dbURL,
		"--set", "kek.value="+newKEKBase64(t),
		"--set", "publicURL=https://auth.example.test",
		"--set", "tls.existingSecret=auth-example-test-tls",
		"--set", "serviceMonitor.enabled=true")
	checkChartInvariants(t, r)

	// Each volume's files, as the kubelet would project them.
	root := t.TempDir()
	pod := r.deployment.Spec.Template.Spec
	var tlsCert *x509.Certificate
	for _, v := range pod.Volumes {
		dir := filepath.Join(root, v.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		switch {
		case v.Secret != nil && v.Secret.SecretName == "auth-example-test-tls":
			tlsCert = writeSelfSigned(t, filepath.Join(dir, corev1.TLSCertKey), filepath.Join(dir, corev1.TLSPrivateKeyKey), 1)
		case v.Secret != nil:
			s := r.secrets[v.Secret.SecretName]
			if s == nil {
				t.Fatalf("volume %s names Secret %s, which the chart did not render", v.Name, v.Secret.SecretName)
			}
			for _, item := range v.Secret.Items {
				if err := os.WriteFile(filepath.Join(dir, item.Path), []byte(s.StringData[item.Key]), 0o400); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	onHost := func(path string) string {
		for _, m := range r.container().VolumeMounts {
			if rest, ok := strings.CutPrefix(path, m.MountPath+"/"); ok {
				return filepath.Join(root, m.Name, rest)
			}
		}
		return path
	}
	var env []string
	for _, e := range r.container().Env {
		value := e.Value
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			s := r.secrets[ref.Name]
			if s == nil {
				t.Fatalf("%s names Secret %s, which the chart did not render", e.Name, ref.Name)
			}
			value = s.StringData[ref.Key]
		}
		env = append(env, e.Name+"="+onHost(value))
	}
	// The container's ports become free loopback ports.
	p := startServer(t, env)
	listenerAddr := map[int32]string{
		8080: strings.TrimPrefix(p.publicURL, "http://"),
		8081: strings.TrimPrefix(p.adminURL, "http://"),
	}
	if p.advertisedURL != "https://auth.example.test" {
		t.Errorf("the server advertises %s", p.advertisedURL)
	}

	roots := x509.NewCertPool()
	roots.AddCert(tlsCert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}}
	get := func(what, scheme string, port int32, path string) {
		t.Helper()
		url := fmt.Sprintf("%s://%s%s", strings.ToLower(scheme), listenerAddr[port], path)
		resp, err := client.Get(url)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: GET %s = %d %s", what, url, resp.StatusCode, body)
		}
	}
	c := r.container()
	for name, probe := range map[string]*corev1.Probe{"startup probe": c.StartupProbe, "liveness probe": c.LivenessProbe, "readiness probe": c.ReadinessProbe} {
		get(name, string(probe.HTTPGet.Scheme), r.containerPort(t, probe.HTTPGet.Port), probe.HTTPGet.Path)
	}
	admin := r.services["admin"]
	for _, ep := range r.serviceMonitor.Spec.Endpoints {
		for _, sp := range admin.Spec.Ports {
			if sp.Name == ep.Port {
				get("ServiceMonitor scrape", string(*ep.Scheme), r.containerPort(t, sp.TargetPort), ep.Path)
			}
		}
	}
}
