package kubernetes

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/snagtrace/snag/internal/features"
)

// The parts of the manifests the tests read.
type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type object struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   meta      `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type daemonSetSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			HostPID    bool        `yaml:"hostPID"`
			Containers []container `yaml:"containers"`
			Volumes    []struct {
				Name     string `yaml:"name"`
				HostPath *struct {
					Path string `yaml:"path"`
				} `yaml:"hostPath"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		Privileged               *bool `yaml:"privileged"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type serviceSpec struct {
	Type     string            `yaml:"type"`
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	NamespaceSelector struct {
		MatchNames []string `yaml:"matchNames"`
	} `yaml:"namespaceSelector"`
	Endpoints []struct {
		Port string `yaml:"port"`
		Path string `yaml:"path"`
	} `yaml:"endpoints"`
}

// manifests reads every object of every YAML file here, by kind.
func manifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]object{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(r)
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if _, dup := out[o.Kind]; dup {
				t.Fatalf("%s: a second %s", f, o.Kind)
			}
			out[o.Kind] = o
		}
		r.Close()
	}
	for _, kind := range []string{"Namespace", "DaemonSet", "Service", "ServiceMonitor"} {
		if _, ok := out[kind]; !ok {
			t.Fatalf("no %s in %v", kind, files)
		}
	}
	return out
}

func decodeSpec(t *testing.T, o object, into any) {
	t.Helper()
	if err := o.Spec.Decode(into); err != nil {
		t.Fatalf("%s spec: %v", o.Kind, err)
	}
}

func snagContainer(t *testing.T, ds daemonSetSpec) container {
	t.Helper()
	cs := ds.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the DaemonSet runs %d containers, want snag alone", len(cs))
	}
	return cs[0]
}

// flag returns the value of --name in args, given as "--name value".
func flag(args []string, name string) (string, bool) {
	i := slices.Index(args, name)
	if i < 0 || i+1 == len(args) {
		return "", false
	}
	return args[i+1], true
}

// The DaemonSet adds exactly the capabilities snag's list names, drops
// every other, and is not privileged.
func TestDaemonSetPrivileges(t *testing.T) {
	m := manifests(t)
	var ds daemonSetSpec
	decodeSpec(t, m["DaemonSet"], &ds)
	if !ds.Template.Spec.HostPID {
		t.Error("hostPID is not true: snag would see only its own pod's processes")
	}
	c := snagContainer(t, ds)
	sc := c.SecurityContext
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container is privileged")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	var want []string
	for _, c := range features.Capabilities {
		want = append(want, strings.TrimPrefix(c.Name, "CAP_"))
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(sc.Capabilities.Add))
	if !slices.Equal(got, want) {
		t.Errorf("capabilities added %v, want internal/features.Capabilities: %v", got, want)
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities dropped %v, want [ALL]", sc.Capabilities.Drop)
	}
	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
}

// What snag serve listens on is what the pod, its probe, the Service and
// the ServiceMonitor point at.
func TestMetricsPath(t *testing.T) {
	m := manifests(t)
	var ds daemonSetSpec
	decodeSpec(t, m["DaemonSet"], &ds)
	c := snagContainer(t, ds)
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %q: want snag serve", c.Args)
	}
	listen, ok := flag(c.Args, "--listen")
	if !ok {
		t.Fatal("no --listen: snag serve listens on loopback by default, out of the probe's and Prometheus's reach")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || (host != "0.0.0.0" && host != "" && host != "::") {
		t.Errorf("--listen %s: want every interface of the pod", listen)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if strconv.Itoa(ports["metrics"]) != port {
		t.Errorf("container port metrics %d, but snag listens on %s", ports["metrics"], port)
	}
	probe := c.ReadinessProbe.HTTPGet
	if probe.Path != "/metrics" || probe.Port != "metrics" {
		t.Errorf("readiness probe GET %s on %s, want /metrics on port metrics", probe.Path, probe.Port)
	}

	var svc serviceSpec
	decodeSpec(t, m["Service"], &svc)
	if svc.Type != "ClusterIP" {
		t.Errorf("Service type %q, want ClusterIP: the metrics name the node's peers and processes", svc.Type)
	}
	podLabels := ds.Template.Metadata.Labels
	if len(svc.Selector) == 0 {
		t.Error("the Service selects no pods")
	}
	for k, v := range svc.Selector {
		if podLabels[k] != v {
			t.Errorf("the Service selects %s=%s, the DaemonSet's pods are labelled %v", k, v, podLabels)
		}
	}
	for k, v := range ds.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("the DaemonSet selects %s=%s, its pods are labelled %v", k, v, podLabels)
		}
	}
	if len(svc.Ports) != 1 || svc.Ports[0].Name != "metrics" || svc.Ports[0].TargetPort != "metrics" {
		t.Errorf("Service ports %+v, want one named metrics targeting the container's port metrics", svc.Ports)
	}

	var sm serviceMonitorSpec
	decodeSpec(t, m["ServiceMonitor"], &sm)
	svcMeta := m["Service"].Metadata
	if len(sm.Selector.MatchLabels) == 0 {
		t.Error("the ServiceMonitor selects no Service")
	}
	for k, v := range sm.Selector.MatchLabels {
		if svcMeta.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, the Service is labelled %v", k, v, svcMeta.Labels)
		}
	}
	if !slices.Contains(sm.NamespaceSelector.MatchNames, svcMeta.Namespace) {
		t.Errorf("the ServiceMonitor looks in namespaces %v, the Service is in %q", sm.NamespaceSelector.MatchNames, svcMeta.Namespace)
	}
	if len(sm.Endpoints) != 1 || sm.Endpoints[0].Port != "metrics" || sm.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want port metrics, path /metrics", sm.Endpoints)
	}
	for kind, o := range m {
		if kind != "Namespace" && o.Metadata.Namespace != m["Namespace"].Metadata.Name {
			t.Errorf("%s in namespace %q, want %q", kind, o.Metadata.Namespace, m["Namespace"].Metadata.Name)
		}
	}
}

// The root file system is read-only: the flight recorder writes to a
// mounted directory, the host's mounts are read-only, and tracefs is not
// mounted (raw tracepoints attach without it).
func TestMounts(t *testing.T) {
	m := manifests(t)
	var ds daemonSetSpec
	decodeSpec(t, m["DaemonSet"], &ds)
	c := snagContainer(t, ds)
	if !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	hostPaths := map[string]string{}
	for _, v := range ds.Template.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	recordDir, ok := flag(c.Args, "--record-dir")
	if !ok {
		t.Fatal("no --record-dir: the flight recorder is off")
	}
	writable := false
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(vm.MountPath, "/sys/kernel/debug") || strings.HasPrefix(vm.MountPath, "/sys/kernel/tracing") {
			t.Errorf("%s is mounted: snag does not use tracefs", vm.MountPath)
		}
		if strings.HasPrefix(recordDir+"/", vm.MountPath+"/") {
			writable = !vm.ReadOnly
			continue
		}
		if hostPaths[vm.Name] != "" && !vm.ReadOnly {
			t.Errorf("the host's %s is mounted writable at %s", hostPaths[vm.Name], vm.MountPath)
		}
	}
	if !writable {
		t.Errorf("--record-dir %s is on no writable mount", recordDir)
	}
}

// The image is the binary `make build` writes, and nothing else: a
// scratch image has no shell for a RUN to use.
func TestDockerfile(t *testing.T) {
	build := makeBuildOutput(t)
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var from, copied, entrypoint string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			from = rest
		case "COPY":
			src, dst, _ := strings.Cut(rest, " ")
			if src != build {
				t.Errorf("COPY %s: make build writes %s", src, build)
			}
			copied = dst
		case "ENTRYPOINT":
			entrypoint = rest
		case "RUN":
			t.Errorf("RUN %s in an image without a shell", rest)
		}
	}
	if from != "scratch" {
		t.Errorf("FROM %s, want scratch", from)
	}
	if entrypoint != `["`+copied+`"]` {
		t.Errorf("ENTRYPOINT %s, want the exec form of the copied %s", entrypoint, copied)
	}
}

// makeBuildOutput reads where `make build` writes snag, and checks that it
// builds a static binary.
func makeBuildOutput(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var bin, out string
	static := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "BIN"); ok && strings.Contains(v, "?=") {
			bin = strings.TrimSpace(strings.SplitN(v, "?=", 2)[1])
		}
		if strings.TrimSpace(line) == "export CGO_ENABLED = 0" {
			static = true
		}
		if strings.Contains(line, "build") && strings.Contains(line, "./cmd/snag") && strings.Contains(line, "-o $(BIN)/snag") {
			out = "$(BIN)/snag"
		}
	}
	if !static {
		t.Error("the Makefile does not export CGO_ENABLED = 0: the binary would need a libc the scratch image lacks")
	}
	if bin == "" || out == "" {
		t.Fatalf("no BIN ?= and go build -o $(BIN)/snag ./cmd/snag in the Makefile")
	}
	return strings.ReplaceAll(out, "$(BIN)", bin)
}
