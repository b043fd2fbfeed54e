package syscalls

import "testing"

// The argument table and the classes agree: what waits on a poll set or a
// multiplexer is a readiness wait, and a call whose data is read has its
// fd first.
func TestArgsAgreeWithClasses(t *testing.T) {
	for name, a := range args {
		if a&(ArgPollFDs|ArgFDSets|ArgEpoll|ArgRing) != 0 && ClassOf(name) != ClassReadiness {
			t.Errorf("%s waits for readiness by its arguments but is class %v", name, ClassOf(name))
		}
		if a&(ArgData|ArgConnect|ArgAccept|ArgBind|ArgSendTo|ArgSendMsg|ArgEpoll|ArgClose) != 0 && FDArg(name) != 0 {
			t.Errorf("%s: FDArg %d, want 0", name, FDArg(name))
		}
	}
	for name, c := range classes {
		if c == ClassReadiness && !PollSet(name) && !Multiplexer(name) {
			t.Errorf("readiness wait %s is neither a poll set nor a multiplexer", name)
		}
	}
	if !PollSet("_newselect") || ClassOf("_newselect") != ClassReadiness {
		t.Error("_newselect, i386's select, is a readiness wait on fd sets")
	}
}
