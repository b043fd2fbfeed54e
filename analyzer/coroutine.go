package analyzer

import (
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// coroutine names the greenlet or asyncio task a call ran in, in words
// ("greenlet make_app.<locals>.app", "asyncio task main()"), from the
// frames of its stack alone; "" when they show neither.
func coroutine(stack []model.Frame) string {
	if g := greenletFunction(stack); g != "" {
		return "greenlet " + g
	}
	return asyncioTask(stack)
}

// greenletRoots are the frames a spawned greenlet's own stack starts from:
// greenlet's C bootstrap, under which the unwind stops (see
// tracer.coroutineEntry), and the Python run methods of gevent, when it
// runs uncompiled, and of eventlet.
func greenletRoot(f model.Frame) bool {
	switch f.Kind {
	case model.FrameNative:
		switch f.Function {
		case "greenlet::UserGreenlet::g_initialstub", "greenlet::UserGreenlet::inner_bootstrap", "g_initialstub":
			return true
		}
	case model.FrameInterpreter:
		return f.Function == "Greenlet.run" && strings.HasSuffix(f.Path, "gevent/greenlet.py") ||
			f.Function == "GreenThread.main" && strings.HasSuffix(f.Path, "eventlet/greenthread.py")
	}
	return false
}

// greenletFunction names the function a spawned greenlet runs: the
// outermost frame of the application's own code in it (a server's
// greenlet runs its handler, which calls the application), else the
// outermost Python frame, the function spawned. "" for a stack that is not
// a spawned greenlet's, or holds no Python frame.
func greenletFunction(stack []model.Frame) string {
	root := -1
	for i, f := range stack {
		if greenletRoot(f) {
			root = i
			break
		}
	}
	if root < 0 {
		return ""
	}
	outer, app := "", ""
	for _, f := range stack[:root] {
		if f.Kind != model.FrameInterpreter || f.Function == "" {
			continue
		}
		outer = f.Function
		if !pythonLibrary(f) {
			app = f.Function
		}
	}
	if app != "" {
		return app
	}
	return outer
}

// asyncioTask names the asyncio task a stack runs: the coroutine run by
// the loop's callback (Handle._run), which is the task's when a task step
// is what the callback ran. The step is C (_asyncio's task_step) unless
// the C module is missing; when the C frames between are nameless, the
// words say it could be a plain callback too.
func asyncioTask(stack []model.Frame) string {
	run := -1
	for i, f := range stack {
		if f.Kind == model.FrameInterpreter && (f.Function == "Handle._run" || f.Function == "_run") &&
			strings.HasSuffix(f.Path, "asyncio/events.py") {
			run = i
			break
		}
	}
	if run < 0 {
		return ""
	}
	task, unnamed := false, false
	for i := run - 1; i >= 0; i-- {
		f := stack[i]
		switch {
		case f.Kind == model.FrameNative:
			task = task || strings.HasPrefix(f.Function, "task_step") || strings.HasPrefix(f.Function, "task_wakeup") ||
				strings.HasPrefix(f.Module, "_asyncio.")
			unnamed = unnamed || f.Function == ""
		case f.Kind != model.FrameInterpreter || f.Function == "":
		case strings.HasSuffix(f.Path, "asyncio/tasks.py") && (strings.Contains(f.Function, "__step") || strings.Contains(f.Function, "__wakeup")):
			task = true // the pure-Python task step
		case task:
			return "asyncio task " + f.Function + "()"
		case strings.Contains(f.Path, "/asyncio/"):
			return "" // the loop's own machinery (a transport, a future's callback), not a task
		case unnamed:
			return "asyncio task or callback " + f.Function
		default:
			return "asyncio callback " + f.Function
		}
	}
	return ""
}
