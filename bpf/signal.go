//go:build linux

package bpf

import "github.com/snagtrace/snag/internal/model"

// Names for a signal's sender when the kernel sent it; Sender is 0 then.
const (
	SenderKernel    = "kernel"     // a fault, a kernel thread, or the kernel on its own behalf
	SenderOOMKiller = "oom-killer" // SIGKILL from the kernel to another process
)

// decodeSignal fills an EvSignal: PID and TID are the target, Thread a
// signal sent to that one thread rather than to its process.
func decodeSignal(e *snagEvent, ev *model.Event) {
	ev.Signal = int(e.Signal)
	ev.ChildPID = 0
	switch snagSigSender(e.SigFrom) {
	case snagSigSenderSIG_FROM_TASK:
		ev.Sender = int(e.Child)
		ev.SenderComm = cString(e.Comm[:])
	case snagSigSenderSIG_FROM_OOM:
		ev.SenderComm = SenderOOMKiller
	default:
		ev.SenderComm = SenderKernel
	}
	ev.Ret = 0 // the kernel side put si_code there; SigFrom says what it meant
}
