// Package cgroup reads what a process's control group says about it: the
// cgroup v2 path in /proc/PID/cgroup, and the container, Kubernetes pod or
// systemd unit that path names.
package cgroup

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// Path returns the cgroup v2 path in the content of /proc/PID/cgroup: the
// "0::" line's. On a host without cgroup v2 it returns the path of the
// systemd hierarchy, else of the first one: on such hosts every hierarchy
// names the same container.
func Path(procCgroup []byte) string {
	var first, systemd string
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		// hierarchy-ID:controller-list:path; the path may hold colons.
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrl, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case id == "0" && ctrl == "":
			return path
		case ctrl == "name=systemd" && systemd == "":
			systemd = path
		case first == "":
			first = path
		}
	}
	if systemd != "" {
		return systemd
	}
	return first
}

// Names are what a cgroup path says about the processes in it.
type Names struct {
	// Container is the id of the container, as its runtime names it.
	Container string
	// Runtime is the container runtime: docker, containerd, cri-o or
	// podman; empty when the path names a container but not its runtime
	// (Kubernetes with the cgroupfs driver).
	Runtime string
	// Pod is the Kubernetes pod's UID.
	Pod string
	// Unit is the innermost systemd service or scope that is not a
	// container's: nginx.service, session-3.scope, user@1000.service.
	Unit string
}

// scopes are the systemd scopes container runtimes create: prefix-ID.scope.
var scopes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-conmon-", ""}, // the runtime's monitor, not the container
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-conmon-", ""},
	{"libpod-", "podman"},
}

// Name tells the container, pod and unit a cgroup path names, with the
// systemd driver's names (kubepods-burstable-pod<uid>.slice,
// cri-containerd-<id>.scope) or the cgroupfs driver's
// (/kubepods/burstable/pod<uid>/<id>, /docker/<id>).
func Name(path string) Names {
	var n Names
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, part := range parts {
		switch {
		case strings.HasSuffix(part, ".scope") && scopeContainer(part, &n):
		case strings.HasPrefix(part, "kubepods") && strings.Contains(part, "pod") && strings.HasSuffix(part, ".slice"):
			// kubepods-burstable-pod<uid>.slice: the uid's dashes became
			// underscores, as systemd escapes them in a slice's name.
			uid := part[strings.LastIndex(part, "pod")+3 : len(part)-len(".slice")]
			if uid != "" && !strings.Contains(uid, "-") {
				n.Pod = strings.ReplaceAll(uid, "_", "-")
			}
		case strings.HasSuffix(part, ".service") || strings.HasSuffix(part, ".scope"):
			n.Unit = part
		case strings.HasPrefix(part, "pod") && i > 0 && strings.HasPrefix(parts[0], "kubepods"):
			n.Pod = strings.TrimPrefix(part, "pod") // cgroupfs: /kubepods/burstable/pod<uid>
		case isContainerID(part) && i > 0:
			// cgroupfs: /docker/<id>, /kubepods/.../pod<uid>/<id>
			n.Container = part
			if parts[i-1] == "docker" {
				n.Runtime = "docker"
			}
		}
	}
	if n.Container != "" {
		n.Unit = "" // the container names it; its scope is the runtime's
	}
	return n
}

// scopeContainer fills n from a container runtime's scope and reports
// whether part was one.
func scopeContainer(part string, n *Names) bool {
	name := strings.TrimSuffix(part, ".scope")
	for _, s := range scopes {
		id, ok := strings.CutPrefix(name, s.prefix)
		if !ok || !isContainerID(id) {
			continue
		}
		if s.runtime == "" {
			return true // a monitor's scope names no container
		}
		n.Container, n.Runtime = id, s.runtime
		return true
	}
	return false
}

// isContainerID tells a container id: 64 lowercase hex digits, as Docker,
// containerd, CRI-O and podman make them.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SetProcess puts a cgroup path and what it names on p.
func SetProcess(p *model.Process, path string) {
	n := Name(path)
	p.Cgroup, p.Container, p.Pod, p.Unit = path, n.Container, n.Pod, n.Unit
}
