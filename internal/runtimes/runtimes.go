// Package runtimes tells what runs a process's code (CPython and whether
// gevent, eventlet, asyncio or uvloop drives it; Node.js; Go; a JVM and
// whether it runs Netty; Ruby; native code) from the objects it has mapped,
// its executable, and as a last resort its command line.
//
// Detection reads /proc/PID/{exe,maps,cmdline} and, for a few facts, the
// files those name, which the traced process controls: they are opened
// through procfs's non-blocking, in-root, regular-file-only openers and
// read in bounded amounts.
package runtimes

import (
	"debug/buildinfo"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// Detect tells what runs process pid's code. It fails only when neither
// the maps nor the executable can be read (the process is gone, or not
// ours to read); what is known is returned either way.
func Detect(fs procfs.FS, pid int) (model.Runtime, error) {
	in := Input{}
	maps, mapsErr := fs.Maps(pid)
	for _, m := range maps {
		if m.Path != "" && (len(in.Objects) == 0 || in.Objects[len(in.Objects)-1] != m.Path) {
			in.Objects = append(in.Objects, m.Path)
		}
	}
	exe, exeErr := fs.Exe(pid)
	in.Exe = strings.TrimSuffix(exe, " (deleted)")
	if mapsErr != nil && exeErr != nil {
		return model.Runtime{}, fmt.Errorf("runtime of pid %d: %w", pid, mapsErr)
	}
	in.Cmdline, _ = fs.Cmdline(pid)
	rt := Classify(in)
	switch rt.Name {
	case model.RuntimeNative, "":
		// Go binaries map nothing that names them; their build info does.
		if v, err := goVersion(fs, pid); err == nil {
			rt = model.Runtime{Name: model.RuntimeGo, Version: v}
		}
	case model.RuntimeCPython:
		// A launcher executable may hold no interpreter: try each object
		// until one carries the version.
		for _, m := range pythonMappings(maps) {
			if v, err := pythonPatchVersion(fs, pid, m); err == nil && strings.HasPrefix(v, rt.Version+".") {
				rt.Version = v
				break
			}
		}
	}
	return rt, nil
}

// goVersion reads the Go version from the executable's build info.
func goVersion(fs procfs.FS, pid int) (string, error) {
	f, err := fs.OpenExe(pid)
	if err != nil {
		return "", err
	}
	defer f.Close()
	bi, err := buildinfo.Read(f)
	if err != nil {
		return "", fmt.Errorf("build info of pid %d: %w", pid, err)
	}
	return bi.GoVersion, nil
}

// Input is what Classify decides from.
type Input struct {
	Exe     string   // the executable's path
	Objects []string // paths of the mapped files, in maps order
	Cmdline []string
}

var (
	// CPython: the interpreter itself (python3.11) or libpython3.11.so.1.0.
	pythonFile = regexp.MustCompile(`/(?:lib)?python([23]\.\d+)[dmu]*(?:\.so[.\d]*)?$`)
	// An interpreter named on the command line: python, python3, python3.11.
	pythonArg0 = regexp.MustCompile(`^python([23](?:\.\d+)?)?$`)
	// A CPython standard library directory.
	pythonLibDir = regexp.MustCompile(`/lib(?:64)?/python([23]\.\d+)/`)
	// Node.js installs that carry their version in the path (nvm, n, asdf,
	// the official tarballs): …/v18.19.0/bin/node, node-v20.11.1-linux-x64/….
	nodeVersion = regexp.MustCompile(`(?:^|/|node-)v?(\d+\.\d+\.\d+)(?:[-/]|$)`)
	// JDK directories: java-17-openjdk-amd64, jdk-21.0.2, jre1.8.0_402.
	jvmVersion = regexp.MustCompile(`/(?:java|jdk|jre|openjdk)-?(\d+(?:\.\d+)*(?:_\d+)?)`)
	// libruby.so.3.1, libruby-3.2.so.3.2, ruby3.1.
	rubyFile = regexp.MustCompile(`/(?:lib)?ruby(?:-?(\d+\.\d+)(?:\.\d+)?)?(?:\.so(?:\.(\d+\.\d+))?[.\d]*)?$`)
)

// PythonObject reports whether path is a CPython interpreter (python3.11,
// libpython3.11.so.1.0) and returns its major.minor version. The frame
// walker (internal/cpython) finds its interpreter with it too.
func PythonObject(path string) (version string, ok bool) {
	sub := pythonFile.FindStringSubmatch(path)
	if sub == nil {
		return "", false
	}
	return sub[1], true
}

// pythonMappings returns the first mapping of each CPython object in maps.
func pythonMappings(maps []procfs.Mapping) []procfs.Mapping {
	var out []procfs.Mapping
	for _, m := range maps {
		if _, ok := PythonObject(m.Path); ok && !slices.ContainsFunc(out, func(o procfs.Mapping) bool { return o.Path == m.Path }) {
			out = append(out, m)
		}
	}
	return out
}

// Classify decides the runtime from paths and the command line alone.
// A process with an executable or mapped objects and no known runtime is
// native; nothing known at all leaves the runtime zero.
func Classify(in Input) model.Runtime {
	var rt model.Runtime
	objects := in.Objects
	if in.Exe != "" {
		objects = append([]string{in.Exe}, objects...)
	}
	var greenlet, gevent, eventlet, uvloop, asyncio, netty bool
	for _, o := range objects {
		base := path.Base(o)
		if rt.Name == "" {
			if r, ok := interpreter(o, base); ok {
				rt = r
			}
		}
		// Maps show the compiled modules; a log of opens (strace) shows
		// the packages' Python files too, so any file under the package
		// directory counts.
		switch {
		case strings.HasPrefix(base, "_gevent_c"), strings.Contains(o, "/gevent/"),
			strings.HasPrefix(base, "corecext."), strings.HasPrefix(base, "_corecffi."):
			gevent = true
		case strings.Contains(o, "/greenlet/"):
			greenlet = true
		case strings.Contains(o, "/eventlet/"):
			eventlet = true
		case strings.Contains(o, "/uvloop/"):
			uvloop = true
		case strings.HasPrefix(base, "_asyncio."), strings.Contains(o, "/asyncio/"):
			asyncio = true
		case strings.HasPrefix(base, "libnetty_transport_native_") || strings.HasPrefix(base, "libnetty_tcnative"):
			netty = true
		}
	}
	if rt.Name == "" {
		// An executable called python3 (a log names the file executed,
		// not where its symlink leads), or as the last resort, with no
		// executable or objects known, an interpreter named so on the
		// command line.
		name := path.Base(in.Exe)
		if in.Exe == "" && len(objects) == 0 && len(in.Cmdline) > 0 {
			name = path.Base(in.Cmdline[0])
		}
		if sub := pythonArg0.FindStringSubmatch(name); sub != nil {
			rt.Name = model.RuntimeCPython
			if strings.Contains(sub[1], ".") {
				rt.Version = sub[1]
			}
		}
	}
	if rt.Name == model.RuntimeCPython && rt.Version == "" {
		// The standard library's directory names the version:
		// /usr/lib/python3.11/lib-dynload/…, /usr/lib/python3.11/os.py.
		for _, o := range objects {
			if sub := pythonLibDir.FindStringSubmatch(o); sub != nil {
				rt.Version = sub[1]
				break
			}
		}
	}
	if rt.Name == "" && len(objects) > 0 {
		rt.Name = model.RuntimeNative
	}
	switch rt.Name {
	case model.RuntimeCPython:
		switch {
		case gevent:
			rt.Loop = model.LoopGevent
		case eventlet, greenlet && mentions(in.Cmdline, "eventlet"):
			rt.Loop = model.LoopEventlet
		case greenlet:
			// greenlet without gevent's compiled modules: gevent built
			// pure-Python, the one common user of greenlet.
			rt.Loop = model.LoopGevent
		case uvloop:
			rt.Loop = model.LoopUvloop
		case asyncio:
			rt.Loop = model.LoopAsyncio
		}
	case model.RuntimeNode:
		rt.Loop = model.LoopLibuv
	case model.RuntimeJVM:
		if netty {
			rt.Loop = model.LoopNetty
		}
	}
	return rt
}

// interpreter recognises a managed runtime's executable or library.
func interpreter(o, base string) (model.Runtime, bool) {
	if v, ok := PythonObject(o); ok {
		return model.Runtime{Name: model.RuntimeCPython, Version: v}, true
	}
	switch {
	case base == "node" || base == "nodejs" || strings.HasPrefix(base, "libnode.so"):
		r := model.Runtime{Name: model.RuntimeNode}
		if base == "node" || base == "nodejs" {
			if sub := nodeVersion.FindStringSubmatch(path.Dir(o)); sub != nil {
				r.Version = "v" + sub[1]
			}
		}
		return r, true
	case base == "libjvm.so":
		r := model.Runtime{Name: model.RuntimeJVM}
		if sub := jvmVersion.FindStringSubmatch(o); sub != nil {
			r.Version = sub[1]
		}
		return r, true
	case strings.HasPrefix(base, "libruby") || base == "ruby" || strings.HasPrefix(base, "ruby") && len(base) > 4 && base[4] >= '0' && base[4] <= '9':
		r := model.Runtime{Name: model.RuntimeRuby}
		if sub := rubyFile.FindStringSubmatch(o); sub != nil {
			r.Version = sub[1]
			if r.Version == "" {
				r.Version = sub[2]
			}
		}
		return r, true
	}
	return model.Runtime{}, false
}

// mentions reports whether any argument contains word.
func mentions(args []string, word string) bool {
	for _, a := range args {
		if strings.Contains(a, word) {
			return true
		}
	}
	return false
}

// Merge combines what was detected at the attach (was) with what is
// detected later (now): a later reading knows about modules imported
// since (gevent is often imported after start), an earlier one survives a
// process that could no longer be read.
func Merge(was, now model.Runtime) model.Runtime {
	if now.Name == "" {
		now.Name, now.Version = was.Name, was.Version
	} else if now.Name == was.Name && now.Version == "" {
		now.Version = was.Version
	}
	if now.Loop == "" && now.Name == was.Name {
		now.Loop = was.Loop
	}
	return now
}
