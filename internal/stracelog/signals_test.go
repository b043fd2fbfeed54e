package stracelog

import (
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func signals(tr *model.Trace) []model.Event {
	var out []model.Event
	for _, e := range tr.Events {
		if e.Kind == model.EvSignal {
			out = append(out, e)
		}
	}
	return out
}

func TestSignals(t *testing.T) {
	type sig struct {
		pid, tid, signal, sender int
		comm                     string
	}
	for _, tc := range []struct {
		name string
		log  string
		want []sig
	}{
		{"a master kills a worker (harakiri)", `100 10:00:00.000000 execve("/usr/bin/uwsgi", ["uwsgi"], 0x7ffd /* 3 vars */) = 0 <0.000100>
100 10:00:00.001000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 101 <0.000200>
100 10:00:01.000000 kill(101, SIGKILL) = 0 <0.000010>
101 10:00:01.000100 +++ killed by SIGKILL +++
`, []sig{{101, 101, 9, 100, "uwsgi"}}},
		{"kill seen, then its delivery: one signal", `200 10:00:00.000000 execve("/usr/bin/master", ["master"], 0x7ffd /* 3 vars */) = 0 <0.000100>
200 10:00:00.100000 kill(201, SIGTERM) = 0 <0.000010>
201 10:00:00.100100 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=200, si_uid=0} ---
201 10:00:00.100200 +++ killed by SIGTERM +++
`, []sig{{201, 201, 15, 200, "master"}}},
		{"delivery before the kill returns: one signal", `200 10:00:00.000000 execve("/usr/bin/master", ["master"], 0x7ffd /* 3 vars */) = 0 <0.000100>
201 10:00:00.100100 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=200, si_uid=0} ---
200 10:00:00.100000 kill(201, SIGTERM) = 0 <0.000010>
`, []sig{{201, 201, 15, 200, "master"}}},
		{"only the delivery: a sender outside the log", `7 10:00:00.000000 --- SIGINT {si_signo=SIGINT, si_code=SI_USER, si_pid=4242, si_uid=1000} ---
`, []sig{{7, 7, 2, 4242, ""}}},
		{"a fault", `7 10:00:00.000000 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---
7 10:00:00.000100 +++ killed by SIGSEGV (core dumped) +++
`, []sig{{7, 7, 11, 0, "kernel"}}},
		{"tgkill names a thread", `9 09:59:59.000000 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM) = 10 <0.000100>
7 10:00:00.000000 tgkill(9, 10, SIGABRT) = 0 <0.000010>
`, []sig{{9, 10, 6, 7, ""}}},
		{"not fatal, failed, or to a group: none", `7 10:00:00.000000 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=9, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
7 10:00:00.001000 kill(9, SIGUSR1) = 0 <0.000010>
7 10:00:00.002000 kill(9, SIGKILL) = -1 ESRCH (No such process) <0.000010>
7 10:00:00.003000 kill(-9, SIGTERM) = 0 <0.000010>
7 10:00:00.004000 kill(0, SIGTERM) = 0 <0.000010>
7 10:00:00.005000 --- stopped by SIGSTOP ---
7 10:00:00.006000 --- SIGTERM garbage
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, st := parseString(t, tc.log, Options{Threshold: 10 * ms})
			if st.Unparsed != 0 {
				t.Fatalf("unparsed %v", st.FirstBad)
			}
			var got []sig
			for _, e := range signals(tr) {
				got = append(got, sig{e.PID, e.TID, e.Signal, e.Sender, e.SenderComm})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("signals %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("signal %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestKilledBySetsSignal(t *testing.T) {
	log := `7 10:00:00.000000 fork() = 9 <0.000200>
9 10:00:00.003000 +++ killed by SIGKILL +++
7 10:00:00.005000 +++ exited with 0 +++
`
	tr, _ := parseString(t, log, Options{Threshold: 10 * ms})
	for _, e := range tr.Events {
		if e.Kind == model.EvExit && ((e.TID == 9) != (e.Signal == 9) || (e.TID == 7 && e.Signal != 0)) {
			t.Errorf("exit of %d: signal %d", e.TID, e.Signal)
		}
	}
	for _, p := range tr.Processes {
		if (p.PID == 9) != (p.Signal == 9) {
			t.Errorf("process %d: signal %d", p.PID, p.Signal)
		}
	}
}
