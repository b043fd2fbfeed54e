/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs and the Go loader. bpf2go generates the
 * Go mirrors from the compiled object (-type), so the layouts here are the
 * single source of truth: fixed-width fields, explicit padding.
 */
#ifndef __SNAG_H__
#define __SNAG_H__

/* Log-linear latency histogram; must match internal/model/hist.go. */
#define HIST_SUB_BITS 3
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_MAX_LOG2 40
#define HIST_BUCKETS ((HIST_MAX_LOG2 - HIST_SUB_BITS + 2) * HIST_SUB)

#define MAX_SYSCALLS 512 /* syscall numbers are below this on amd64 and arm64 */
#define SOCKADDR_MAX 112 /* >= sizeof(struct sockaddr_un) and sockaddr_in6 */
#define COMM_LEN 16
#define PATH_LEN 256 /* EV_EXEC and EV_OPEN paths; longer ones are cut */
#define STACK_COPY_MAX 16384 /* upper bound of the user stack copy per event */
#define FP_STACK_DEPTH 32
#define PEEK_LEN 64 /* first bytes of a new connection, to name its protocol */
#define PY_DEPTH 32 /* CPython frames walked per slow call */
#define PY_THREADS 64 /* thread states searched for the current thread */

enum event_kind {
	EV_SYSCALL = 1,
	EV_CONNECT = 2,
	EV_ACCEPT = 3,
	EV_BIND = 4,
	EV_SENDTO = 5,
	EV_FORK = 6,
	EV_EXEC = 7,
	EV_EXIT = 8,
	EV_PEEK = 9, /* the first read or write on a connection snag saw open */
	EV_OPEN = 10,   /* a successful open: path, and the fd in ret */
	EV_CLOSE = 11,  /* a successful close of an fd opened while tracing */
	EV_SIGNAL = 12, /* a fatal signal generated for a traced process */
};

enum fd_kind {
	FD_UNKNOWN = 0,
	FD_SOCKET = 1,
	FD_FILE = 2,
	FD_PIPE = 3,
	FD_OTHER = 4,
};

/* Per-syscall behaviour, indexed by syscall number (map sysinfo). */
enum sys_flag {
	SYS_CONNECT = 1 << 0,
	SYS_ACCEPT = 1 << 1,
	SYS_BIND = 1 << 2,
	SYS_SENDTO = 1 << 3,  /* address in arg 4 */
	SYS_SENDMSG = 1 << 4, /* address in msghdr.msg_name */
	SYS_POLL = 1 << 5,    /* pollfd array, timeout in ms */
	SYS_PPOLL = 1 << 6,   /* pollfd array, timespec timeout */
	SYS_EPOLL = 1 << 7,   /* epoll fd, timeout in ms in arg 3 */
	SYS_SELECT = 1 << 8,  /* nfds in arg 0 */
	SYS_PEEK = 1 << 9,    /* fd in arg 0, buffer in arg 1: read, write, recvfrom, sendto */
	SYS_CLOSE = 1 << 10,  /* fd in arg 0 */
	SYS_FORK = 1 << 11,   /* clone, clone3, fork, vfork: a new task returns from it unentered */
	SYS_OPEN = 1 << 12,   /* path in arg 0: open, creat */
	SYS_OPENAT = 1 << 13, /* path in arg 1: openat, openat2 */
	SYS_UNTIMED = 1 << 14, /* never waits: counted with its errors, not timed, never an event */
};

/* Who generated a signal (EV_SIGNAL), as far as the kernel side can tell. */
enum sig_sender {
	SIG_FROM_TASK = 0,   /* kill(2), tgkill(2), sigqueue(3) from a process: child is its tgid */
	SIG_FROM_KERNEL = 1, /* a fault, a kernel thread, or the kernel on its own behalf */
	SIG_FROM_OOM = 2,    /* SIGKILL from the kernel to another process: the OOM killer */
};

struct sysinfo {
	__u32 flags;
	__s32 fd_arg; /* index of the fd argument, -1 when none */
};

/* Traced-TGID states (map traced). */
enum trace_state {
	TRACE_ARMED = 1,  /* snag run: start at the next exec */
	TRACE_ACTIVE = 2,
	TRACE_IGNORED = 3, /* snag itself: never traced, whatever its cgroup */
	TRACE_EXITING = 4, /* every thread has begun to exit: only their exits are traced */
};

enum drop_reason {
	DROP_RINGBUF = 0,
	DROP_AGG_FULL = 1,
	DROP_INFLIGHT_FULL = 2,
	DROP_STACK_READ = 3,
	DROP_FDS_FULL = 4, /* an fd opened while tracing not tracked: its close goes unreported */
	DROP_MAX = 5,
};

/* How a CPython version lays out its frame chain: py_proc.flags. */
enum py_flag {
	PY_CFRAME = 1,       /* tstate_frame leads to a _PyCFrame holding the current frame (3.11, 3.12) */
	PY_IS_ENTRY = 2,     /* a frame's is_entry byte marks it entered from C (3.11) */
	PY_OWNER = 4,        /* frames whose owner is >= 3 are the C stack's shims, below an entered frame (3.12+): code 0 */
	PY_TAGGED = 8,       /* the code pointer is a _PyStackRef, tagged in its low bits (3.14) */
	PY_FRAME_OBJECT = 16, /* a PyFrameObject chain: each frame its own eval call, f_lasti an index (3.10) */
};

/*
 * Where a CPython process keeps its interpreter state, and the offsets of
 * the fields walked from there to the current thread's frames. Filled per
 * process by the loader (internal/cpython), keyed by TGID: from offsets
 * generated per version, or read from the process's _Py_DebugOffsets.
 */
struct py_proc {
	__u64 runtime; /* address of _PyRuntime */
	__u32 interpreters_head;
	__u32 threads_head;
	__u32 tstate_next;
	__u32 tstate_thread_id;
	__u32 tstate_frame; /* the current frame, or with PY_CFRAME the _PyCFrame */
	__u32 cframe_current_frame;
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_is_entry;
	__u32 frame_owner;
	__u32 frame_instr;   /* prev_instr or instr_ptr; with PY_FRAME_OBJECT the int f_lasti */
	__u32 code_adaptive; /* where a code object's bytecode starts */
	__u32 flags;         /* enum py_flag */
	__u32 _pad;
};

/*
 * A futex call's aggregate is keyed by FUTEX_NR_BASE + the class of its
 * operation instead of the futex syscall number, so a thread waiting for
 * work (FUTEX_WAIT_BITSET under pthread_cond_wait, sem_wait) stays apart
 * from one handing a mutex around (FUTEX_WAIT, FUTEX_LOCK_PI). The loader
 * turns these numbers back into futex and the class's name.
 */
#define FUTEX_NR_BASE MAX_SYSCALLS

enum futex_class {
	FUTEX_CLASS_WAKE = 0,        /* WAKE, WAKE_BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP, UNLOCK_PI, ... */
	FUTEX_CLASS_WAIT = 1,        /* WAIT */
	FUTEX_CLASS_WAIT_BITSET = 2, /* WAIT_BITSET, WAIT_REQUEUE_PI */
	FUTEX_CLASS_LOCK_PI = 3,     /* LOCK_PI, LOCK_PI2, TRYLOCK_PI */
	FUTEX_CLASSES = 4,
};

/* Aggregate numbers: syscall numbers, then the futex classes. */
#define AGG_NRS (MAX_SYSCALLS + FUTEX_CLASSES)

/*
 * One traced thread's row (map rows): for each aggregate number,
 * the index of its value in agg_vals, 0 while the thread has made no such
 * call. Only the thread writes its row, so no atomics are needed.
 */
struct thread_aggs {
	__u32 tid;    /* the live owner; 0 once it exited */
	__u32 tgid;
	__u32 exited; /* the owner's tid once it exited, until user space frees the row */
	__u32 _pad;
	__u16 idx[AGG_NRS];
};

struct agg_val {
	__u64 count;
	__u64 errors;
	__u64 total_ns;
	__u64 max_ns;
	__u64 hist[HIST_BUCKETS];
};

/* A thread's call in flight (map task_call). */
struct inflight {
	__u64 ts;
	__u32 nr;   /* FUTEX_NR_BASE + class for futex */
	__u32 slot; /* the thread's row in map rows; 0 until it has one */
	__u32 live; /* a call was entered and has not returned */
	__u32 _pad;
};

struct sock_addr {
	__u16 family; /* AF_INET, AF_INET6, AF_UNIX, 0 when unknown */
	__u16 port;   /* host byte order */
	__u32 _pad;
	__u8 addr[16];
};

struct user_regs {
	__u64 ip;
	__u64 sp;
	__u64 fp;
	__u64 lr;
};

/*
 * One ring-buffer record. Records carrying a user stack are followed by
 * stack_len bytes of user memory copied from regs.sp upward.
 */
struct event {
	__u64 ts; /* bpf_ktime_get_ns at return or at the lifecycle event */
	__u64 duration_ns;
	__s64 ret;
	__u64 args[6];
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__u8 kind;
	__u8 fd_kind;
	__u8 fd_known;
	__u8 nonblock;
	__s32 fd;
	__s32 poll_nfds;
	__s32 poll_fd;
	__s32 poll_timeout_ms;
	__u32 child; /* EV_FORK: new pid (process) or tid (thread); EV_SIGNAL: the sender's tgid */
	__s32 exit_code;
	__u8 thread; /* EV_FORK/EV_EXIT: a thread rather than a process */
	__u8 partial; /* the call began before tracing: duration_ns is a lower bound */
	__u8 signal;  /* EV_EXIT: the signal that killed the task; EV_SIGNAL: the signal sent */
	__u8 sig_from; /* EV_SIGNAL: enum sig_sender */
	__u32 sa_len; /* bytes valid in sa */
	__u32 agg_slot; /* EV_EXIT: the thread's row in map rows, for user space to free; 0 when none */
	__u8 sa[SOCKADDR_MAX];
	struct sock_addr peer;  /* the fd's remote address when a socket */
	struct sock_addr local; /* the fd's local address when a socket */
	char comm[COMM_LEN]; /* EV_SIGNAL: the sender's */
	char path[PATH_LEN]; /* EV_EXEC: filename; EV_OPEN: the path as given */
	struct user_regs regs;
	__u32 py_depth; /* CPython code objects in py_code, innermost first */
	__u32 py_entry; /* bit i: py_code[i]'s frame was entered from C */
	__u32 data_len; /* bytes valid in data */
	__u8 data[PEEK_LEN];
	__u32 fp_depth;  /* valid entries in fp_stack */
	__u32 stack_len; /* user stack bytes following this record */
	__u64 fp_stack[FP_STACK_DEPTH];
	/* Last, and not zeroed: only the first py_depth entries are read. */
	__u64 py_code[PY_DEPTH]; /* 0: a shim frame (PY_OWNER) */
	__u32 py_lasti[PY_DEPTH]; /* byte offset of each frame's instruction in its code */
};

#endif /* __SNAG_H__ */
