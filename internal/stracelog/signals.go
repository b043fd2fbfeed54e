package stracelog

import (
	"bytes"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// fatalSignals are the signals whose default action ends a process; the
// live tracer reports the same set (bpf/snag.bpf.c, FATAL_SIGNALS).
var fatalSignals = map[string]bool{
	"SIGHUP": true, "SIGINT": true, "SIGQUIT": true, "SIGILL": true, "SIGABRT": true,
	"SIGBUS": true, "SIGFPE": true, "SIGKILL": true, "SIGSEGV": true, "SIGTERM": true,
	"SIGXCPU": true, "SIGXFSZ": true, "SIGSYS": true,
}

// signalLine handles what follows "--- " on a signal delivery line:
//
//	SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=123, si_uid=0} ---
//	SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---
//
// A fatal signal becomes an EvSignal to the thread that received it, with
// the sender when a process sent it (si_pid, for SI_USER, SI_TKILL and
// SI_QUEUE) and "kernel" otherwise. Anything else after "--- " (another
// signal, "stopped by SIGSTOP") is accepted and ignored, as before.
func (p *parser) signalLine(th *thread, ts uint64, s []byte) bool {
	sp := bytes.IndexByte(s, ' ')
	if sp <= 0 || !fatalSignals[string(s[:sp])] {
		return true
	}
	sig := syscalls.SignalNumber(string(s[:sp]))
	info := s[sp+1:]
	if len(info) == 0 || info[0] != '{' {
		return true
	}
	if end := bytes.IndexByte(info, '}'); end > 0 {
		info = info[1:end]
	} else {
		return true
	}
	var code []byte
	sender := 0
	for f := range bytes.SplitSeq(info, []byte(", ")) {
		k, v, ok := bytes.Cut(f, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "si_code":
			code = v
		case "si_pid":
			if n, used := atoi(v); used == len(v) && n > 0 && n <= 1<<30 {
				sender = int(n)
			}
		}
	}
	switch string(code) {
	case "SI_USER", "SI_TKILL", "SI_QUEUE":
		if sender > 0 {
			comm := ""
			if pr := p.procs[sender]; pr != nil {
				comm = pr.comm
			}
			p.delivered(sigKey{target: p.pidOf(th.tid), sig: sig, sender: sender}, th.tid, ts, comm)
			return true
		}
	}
	e := p.lifecycle(model.EvSignal, th.tid, ts)
	e.Signal, e.SenderComm = sig, "kernel"
	return true
}

// sigKey pairs the two lines one signal can leave in a log: the sender's
// kill(2) and the receiver's "--- SIG… {si_pid=…}".
type sigKey struct{ target, sig, sender int }

// delivered emits an EvSignal for a signal seen arriving, unless its
// kill(2) was seen first. sigSeen counts, per key, kill(2) lines not yet
// matched (above zero) or deliveries not yet matched (below zero). SIGKILL
// is never seen delivered: only its kill(2) shows who sent it.
func (p *parser) delivered(key sigKey, tid int, ts uint64, comm string) {
	if p.sigSeen == nil {
		p.sigSeen = map[sigKey]int{}
	}
	p.sigSeen[key]--
	if p.sigSeen[key] >= 0 {
		return
	}
	e := p.lifecycle(model.EvSignal, tid, ts)
	e.Signal, e.Sender, e.SenderComm = key.sig, key.sender, comm
}

// killCall turns a successful kill(2), tkill(2) or tgkill(2) of a fatal
// signal to one process or thread into an EvSignal to it, sent by the
// caller. kill(0 or negative) addresses a process group and is left out.
func (p *parser) killCall(c *call) {
	var target []byte
	var sigArg []byte
	switch c.name {
	case "kill", "tkill":
		target, sigArg = c.arg(p, 0), c.arg(p, 1)
	case "tgkill":
		target, sigArg = c.arg(p, 1), c.arg(p, 2)
	default:
		return
	}
	if c.ret != 0 || !fatalSignals[string(sigArg)] {
		return
	}
	n, used := atoi(target)
	if used == 0 || used != len(target) || n <= 0 || n > 1<<30 {
		return
	}
	sender := p.pidOf(c.th.tid)
	comm := ""
	if pr := p.procs[sender]; pr != nil {
		comm = pr.comm
	}
	key := sigKey{target: p.pidOf(int(n)), sig: syscalls.SignalNumber(string(sigArg)), sender: sender}
	if p.sigSeen == nil {
		p.sigSeen = map[sigKey]int{}
	}
	p.sigSeen[key]++
	if p.sigSeen[key] <= 0 {
		return // its delivery was seen first
	}
	e := p.lifecycle(model.EvSignal, int(n), c.start+uint64(c.dur))
	e.Signal, e.Sender, e.SenderComm = key.sig, sender, comm
}
