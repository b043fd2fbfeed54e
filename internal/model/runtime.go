package model

import "strings"

// Runtime names. One list, asked by every source, rule and report.
const (
	RuntimeCPython = "cpython"
	RuntimeNode    = "node"
	RuntimeGo      = "go"
	RuntimeJVM     = "jvm"
	RuntimeRuby    = "ruby"
	RuntimeNative  = "native" // machine code with no managed runtime
)

// Cooperative schedulers a runtime may run (Runtime.Loop).
const (
	LoopGevent   = "gevent"
	LoopEventlet = "eventlet"
	LoopAsyncio  = "asyncio"
	LoopUvloop   = "uvloop"
	LoopLibuv    = "libuv" // Node.js's own loop
	LoopNetty    = "netty"
)

// Runtime is what runs a process's code.
type Runtime struct {
	Name    string // one of the Runtime* names; "" when unknown
	Version string // "3.11.2", "v18.19.0", "go1.22.1"; "" when unknown
	// Loop is the cooperative scheduler the process has loaded, one of the
	// Loop* names; "" when none was seen.
	Loop string
}

// IsZero reports whether nothing is known about the runtime.
func (r Runtime) IsZero() bool { return r.Name == "" && r.Loop == "" }

var runtimeWords = map[string]string{
	RuntimeCPython: "CPython", RuntimeNode: "Node.js", RuntimeGo: "Go",
	RuntimeJVM: "JVM", RuntimeRuby: "Ruby", RuntimeNative: "native",
}

// String renders "CPython 3.11.2 with gevent", "Node.js v18.19.0", "Go".
func (r Runtime) String() string {
	w := runtimeWords[r.Name]
	if w == "" {
		w = r.Name
	}
	if r.Version != "" {
		w = strings.TrimSpace(w + " " + r.Version)
	}
	if r.Loop != "" && r.Loop != LoopLibuv {
		if w == "" {
			return r.Loop
		}
		w += " with " + r.Loop
	}
	return w
}

// LoopWords names the runtime's event loop for a sentence: "the gevent
// hub", "the Node.js event loop", "the asyncio loop"; "the event loop"
// when the runtime runs none that is known.
func (r Runtime) LoopWords() string {
	switch r.Loop {
	case LoopGevent:
		return "the gevent hub"
	case LoopEventlet:
		return "the eventlet hub"
	case LoopAsyncio:
		return "the asyncio loop"
	case LoopUvloop:
		return "the uvloop (asyncio) loop"
	case LoopLibuv:
		return "the Node.js event loop"
	case LoopNetty:
		return "the Netty event loop"
	}
	if r.Name == RuntimeNode {
		return "the Node.js event loop"
	}
	if r.Name == RuntimeJVM {
		return "the JVM's NIO selector loop"
	}
	return "the event loop"
}
