//go:build ignore
// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * snag's kernel side: raw tracepoints on syscall entry and exit that keep
 * exact per-(thread, syscall) aggregates in a map and send ring-buffer
 * records only for what the analyzer needs one by one.
 *
 * Every process on the host passes through sys_enter/sys_exit, so the
 * untraced path is a TGID check and nothing else, and the traced fast path
 * touches two map entries per syscall: the thread's in-flight slot and its
 * aggregate. Anything costly (fd walks, sockaddr and stack copies) sits
 * behind the slow-call threshold or the rare connection syscalls.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "snag.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load; read-only afterwards. */
const volatile __u32 targ_tgid = 0;           /* the one traced TGID when !use_traced_map */
const volatile bool use_traced_map = false;   /* several TGIDs, --follow-forks or snag run */
const volatile bool follow_forks = false;
const volatile bool watch_execs = false;      /* report every exec on the host, for a selector in user space */
const volatile bool use_cgroups = false;      /* also trace the tasks of the cgroups in traced_cgroups */
const volatile __u64 slow_ns = 10000000;      /* syscalls at least this slow become events */
const volatile __u32 stack_pages = 0;         /* user stack copy in 4 KiB pages; 0 = none */
const volatile __u64 stack_ns = 10000000;     /* calls at least this slow carry a stack */
const volatile __u64 wakeup_bytes = 1 << 18;  /* wake the reader once this much is pending */
const volatile __u32 futex_nr = -1;           /* this arch's futex syscall number */
/* bpf_ktime_get_ns() once every program is attached; set by the loader then. */
volatile __u64 attach_ns;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* tgid */
	__type(value, __u32); /* enum trace_state */
} traced SEC(".maps");

/*
 * Cgroup v2 ids whose tasks are traced (snag serve --cgroup): user space
 * puts a selected cgroup's id here and those of its descendants as they
 * appear, and adds the tasks it finds in them to traced.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);  /* cgroup id: the inode of its directory */
	__type(value, __u8);
} traced_cgroups SEC(".maps");

/*
 * The call in flight on each traced thread, kept in the thread's own
 * storage: sys_exit finds it with no hash lookup, whether or not the thread
 * slept or was preempted in between, and nothing runs on context switches
 * (a program there would cost every process on the host). It also caches
 * the thread's row, and is freed with the thread.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} task_call SEC(".maps");

/*
 * Aggregates without a hash on the hot path. Each traced thread gets a row
 * in rows the first time it is seen (thread_slot maps its tid to the
 * row, which task_call caches, so the hash is looked up once per thread),
 * and each
 * (thread, syscall) pair a value in agg_vals, both handed out from free
 * queues that user space fills at load and refills when a thread exits. Array
 * lookups compile to address arithmetic; memory follows the pairs seen.
 * Only a thread writes its row and values: no atomics, no contention.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* tid */
	__type(value, __u32); /* row in rows */
} thread_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096); /* row 0 is never handed out */
	__type(key, __u32);
	__type(value, struct thread_aggs);
} rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384); /* value 0 is never handed out */
	__type(key, __u32);
	__type(value, struct agg_val);
} agg_vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, __u32);
} free_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16384);
	__type(value, __u32);
} free_vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct sysinfo);
} syscall_info SEC(".maps");

/*
 * Connections opened while tracing whose first bytes are still to be seen:
 * the protocol they speak names the service better than a port does.
 */
struct fd_key {
	__u32 tgid;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fd_key);
	__type(value, __u8);
} sniff SEC(".maps");

/*
 * Sockets and files opened while tracing (connect, accept, open), with
 * their enum fd_kind: closing one is an event whatever its duration, so
 * connection lifetimes and open files are exact. The close that reports
 * an entry deletes it; user space forgets an exited process's entries. A
 * hash, not an LRU: an fd that finds it full is counted, never evicted
 * silently.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fd_key);
	__type(value, __u8);
} fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* tgid */
	__type(value, struct py_proc);
} py_procs SEC(".maps");

/* Entries in sniff, roughly: while zero, reads and writes skip the lookup. */
volatile __s64 sniff_pending;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");


/* Keep bpf2go's -type happy: these enums are part of the ABI. */
const enum event_kind *_unused_event_kind __attribute__((unused));
const enum fd_kind *_unused_fd_kind __attribute__((unused));
const enum sys_flag *_unused_sys_flag __attribute__((unused));
const enum drop_reason *_unused_drop_reason __attribute__((unused));
const enum trace_state *_unused_trace_state __attribute__((unused));
const enum sig_sender *_unused_sig_sender __attribute__((unused));
const enum futex_class *_unused_futex_class __attribute__((unused));
const enum py_flag *_unused_py_flag __attribute__((unused));
const struct event *_unused_event __attribute__((unused));
const struct agg_val *_unused_agg_val __attribute__((unused));

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define O_NONBLOCK 04000
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFIFO 0010000
#define PAGE_SIZE 4096
#define MAX_STACK_PAGES (STACK_COPY_MAX / PAGE_SIZE)

static __always_inline void count_drop(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&drops, &reason);
	if (c)
		(*c)++;
}

static __always_inline bool is_traced(__u32 tgid)
{
	if (!use_traced_map)
		return tgid == targ_tgid;
	__u32 *st = bpf_map_lookup_elem(&traced, &tgid);
	return st && *st == TRACE_ACTIVE;
}

/*
 * is_current_traced is is_traced for the current task, tgid its own: a
 * task of a traced cgroup is traced from its first call there, before user
 * space knows it. Untraced tasks pay the cgroup lookup only when cgroups
 * are selected.
 */
static __always_inline bool is_current_traced(__u32 tgid)
{
	if (!use_traced_map)
		return tgid == targ_tgid;
	__u32 *st = bpf_map_lookup_elem(&traced, &tgid);
	if (st)
		return *st == TRACE_ACTIVE; /* TRACE_IGNORED: snag, in a traced cgroup */
	if (!use_cgroups)
		return false;
	__u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&traced_cgroups, &cg) != NULL;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r, s;
	r = (v > 0xFFFFFFFFULL) << 5; v >>= r;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	return r | (__u32)(v >> 1);
}

static __always_inline __u32 hist_index(__u64 ns)
{
	if (ns < HIST_SUB)
		return ns;
	__u32 msb = log2_u64(ns);
	if (msb > HIST_MAX_LOG2)
		return HIST_BUCKETS - 1;
	return (msb - HIST_SUB_BITS + 1) * HIST_SUB +
	       ((ns >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The aggregate number of a futex call: FUTEX_NR_BASE + its op's class. */
static __always_inline __u32 futex_class_nr(struct pt_regs *regs)
{
	__u64 op = 0;
#if defined(__TARGET_ARCH_x86)
	bpf_probe_read_kernel(&op, sizeof(op), &regs->si);
#elif defined(__TARGET_ARCH_arm64)
	bpf_probe_read_kernel(&op, sizeof(op), &regs->regs[1]);
#endif
	switch (op & 0x7f) { /* without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME */
	case 0: /* FUTEX_WAIT */
		return FUTEX_NR_BASE + FUTEX_CLASS_WAIT;
	case 9:  /* FUTEX_WAIT_BITSET */
	case 11: /* FUTEX_WAIT_REQUEUE_PI */
		return FUTEX_NR_BASE + FUTEX_CLASS_WAIT_BITSET;
	case 6:  /* FUTEX_LOCK_PI */
	case 8:  /* FUTEX_TRYLOCK_PI */
	case 13: /* FUTEX_LOCK_PI2 */
		return FUTEX_NR_BASE + FUTEX_CLASS_LOCK_PI;
	}
	return FUTEX_NR_BASE + FUTEX_CLASS_WAKE;
}

/*
 * thread_row finds or hands out tid's row. Called at a thread's first
 * traced call, whose task_call then caches the row.
 */
static __noinline __u32 thread_row(__u32 tid, __u32 tgid)
{
	__u32 *s = bpf_map_lookup_elem(&thread_slot, &tid);
	if (s)
		return *s;
	__u32 slot;
	if (bpf_map_pop_elem(&free_rows, &slot))
		return 0; /* every row taken */
	struct thread_aggs *row = bpf_map_lookup_elem(&rows, &slot);
	if (!row)
		return 0;
	if (bpf_map_update_elem(&thread_slot, &tid, &slot, BPF_NOEXIST)) {
		bpf_map_push_elem(&free_rows, &slot, 0);
		return 0;
	}
	row->tgid = tgid;
	row->exited = 0;
	row->tid = tid;
	return slot;
}

SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!is_current_traced(id >> 32))
		return 0;

	struct inflight *in = bpf_task_storage_get(&task_call, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in) {
		count_drop(DROP_INFLIGHT_FULL);
		return 0;
	}
	__u32 nr = ctx->args[1];
	if (ctx->args[1] == futex_nr) /* as 64 bits: spares a zero extension */
		nr = futex_class_nr((struct pt_regs *)ctx->args[0]);
	if (!in->slot)
		in->slot = thread_row((__u32)id, id >> 32);
	in->nr = nr;
	in->live = 1;
	/* A call that never waits is only counted: its two clock reads would
	 * cost more than the call. ts 0 tells sys_exit. */
	struct sysinfo *si = bpf_map_lookup_elem(&syscall_info, &nr);
	in->ts = si && (si->flags & SYS_UNTIMED) ? 0 : bpf_ktime_get_ns();
	return 0;
}

/* Per-arch view of the saved user registers at syscall exit. */
struct uregs {
	__u64 args[6];
	struct user_regs r;
	__u64 nr; /* the syscall number, as saved at entry */
};

static __always_inline void read_uregs(struct pt_regs *regs, struct uregs *u)
{
	struct pt_regs r;
	/* One copy of the whole register frame instead of a read per field:
	 * pt_regs is user ABI on both arches, so its layout is stable. */
	bpf_probe_read_kernel(&r, sizeof(r), regs);
#if defined(__TARGET_ARCH_x86)
	u->args[0] = r.di;
	u->args[1] = r.si;
	u->args[2] = r.dx;
	u->args[3] = r.r10;
	u->args[4] = r.r8;
	u->args[5] = r.r9;
	u->r.ip = r.ip;
	u->r.sp = r.sp;
	u->r.fp = r.bp;
	u->r.lr = 0;
	u->nr = r.orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	/* x0 holds the return value by now; the first argument survives in orig_x0. */
	u->args[0] = r.orig_x0;
	u->args[1] = r.regs[1];
	u->args[2] = r.regs[2];
	u->args[3] = r.regs[3];
	u->args[4] = r.regs[4];
	u->args[5] = r.regs[5];
	u->r.ip = r.pc;
	u->r.sp = r.sp;
	u->r.fp = r.regs[29];
	u->r.lr = r.regs[30];
	u->nr = r.syscallno;
#endif
}

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void sock_addrs(struct sock *sk, struct event *e)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	e->peer.family = family;
	e->local.family = family;
	if (family == AF_INET) {
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->peer.addr, &d, 4);
		__builtin_memcpy(e->local.addr, &s, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->peer.addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->local.addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		return;
	}
	e->peer.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->local.port = BPF_CORE_READ(sk, __sk_common.skc_num);
}

/* Fill what the fd refers to: its kind, O_NONBLOCK, and socket addresses. */
static __always_inline void fill_fd(struct event *e, int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);

	e->fd = fd;
	if (!f)
		return;
	e->fd_known = 1;
	e->nonblock = (BPF_CORE_READ(f, f_flags) & O_NONBLOCK) != 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT;
	if (mode == S_IFSOCK) {
		e->fd_kind = FD_SOCKET;
		struct socket *sock = BPF_CORE_READ(f, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);
		if (sk)
			sock_addrs(sk, e);
	} else if (mode == S_IFREG) {
		e->fd_kind = FD_FILE;
	} else if (mode == S_IFIFO) {
		e->fd_kind = FD_PIPE;
	} else {
		e->fd_kind = FD_OTHER;
	}
}

static __always_inline void read_sockaddr(struct event *e, __u64 uptr, __u64 len)
{
	if (!uptr)
		return;
	if (len > SOCKADDR_MAX)
		len = SOCKADDR_MAX;
	if (bpf_probe_read_user(e->sa, len, (void *)uptr) == 0)
		e->sa_len = len;
}

static __always_inline __s32 timespec_ms(__u64 uptr)
{
	struct { __u64 sec; __u64 nsec; } ts;

	if (!uptr)
		return -1;
	if (bpf_probe_read_user(&ts, sizeof(ts), (void *)uptr))
		return -1;
	return ts.sec * 1000 + ts.nsec / 1000000;
}

/* Zeroes everything but py_code, which is read only up to py_depth: clang
 * expands memset inline only up to a size, and a whole event is larger. */
static __always_inline void zero_event(struct event *e)
{
	__builtin_memset(e, 0, __builtin_offsetof(struct event, py_code));
}

#if defined(__TARGET_ARCH_x86)
static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}
#endif

/*
 * Walk the current thread's CPython frames: from _PyRuntime to the thread
 * state whose thread_id is this thread's pthread_self(), then down its
 * frame chain, keeping each frame's code object and instruction offset.
 * User space reads names, files and line tables from the code objects
 * later; they outlive the call.
 */
static __noinline void py_stack(struct event *e, __u32 tgid)
{
	/* pthread_self() is the thread pointer only where it is fsbase: x86-64. */
#if defined(__TARGET_ARCH_x86)
	struct py_proc *o = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!o)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 self = BPF_CORE_READ(task, thread.fsbase);
	__u64 interp = read_u64(o->runtime + o->interpreters_head);
	__u64 ts = read_u64(interp + o->threads_head);
	for (int i = 0; i < PY_THREADS && ts; i++) {
		if (read_u64(ts + o->tstate_thread_id) == self)
			break;
		ts = read_u64(ts + o->tstate_next);
	}
	if (!ts || read_u64(ts + o->tstate_thread_id) != self)
		return;
	__u32 flags = o->flags;
	__u64 mask = flags & PY_TAGGED ? ~3ULL : ~0ULL;
	__u64 frame = read_u64(ts + o->tstate_frame);
	if (flags & PY_CFRAME)
		frame = read_u64(frame + o->cframe_current_frame);
	/* One slot per frame, shims included (as code 0, dropped by the loader):
	 * a walk whose slot index follows its frame count stays small enough
	 * for the verifier. */
	__u32 n = 0;
	for (int i = 0; i < PY_DEPTH && frame; i++) {
		__u64 code = read_u64(frame + o->frame_code) & mask;
		__u32 lasti;
		if (flags & PY_FRAME_OBJECT) {
			__s32 index = 0;
			bpf_probe_read_user(&index, sizeof(index), (void *)(frame + o->frame_instr));
			lasti = (__u32)index * 2;
			e->py_entry |= 1U << i;
		} else {
			lasti = read_u64(frame + o->frame_instr) - (code + o->code_adaptive);
		}
		if (flags & PY_OWNER) {
			/* The C stack's shim below a _PyEval_EvalFrameDefault
			 * call's first frame, which was thus entered from C. */
			__u8 owner = 0;
			bpf_probe_read_user(&owner, 1, (void *)(frame + o->frame_owner));
			if (owner >= 3)
				code = 0;
		}
		if (flags & PY_IS_ENTRY) {
			__u8 entry = 0;
			bpf_probe_read_user(&entry, 1, (void *)(frame + o->frame_is_entry));
			if (entry)
				e->py_entry |= 1U << i;
		}
		e->py_code[i] = code;
		e->py_lasti[i] = lasti;
		frame = read_u64(frame + o->frame_previous);
		n = i + 1;
	}
	e->py_depth = n;
#endif
}

/*
 * Copy the user stack page by page from SP: one big read would fail as a
 * whole when the copy runs past the end of the stack mapping, and a thread
 * near the top of its stack is common.
 */
static __always_inline __u32 copy_stack(__u8 *dst, __u64 sp)
{
	__u32 first = PAGE_SIZE - (sp & (PAGE_SIZE - 1));
	__u32 n = 0;

	if (bpf_probe_read_user(dst, first, (void *)sp))
		return 0;
	n = first;
#pragma unroll
	for (int i = 0; i < MAX_STACK_PAGES - 1; i++) {
		if (i + 1 >= stack_pages)
			break;
		if (n > STACK_COPY_MAX)
			break;
		if (bpf_probe_read_user(dst + n, PAGE_SIZE, (void *)(sp + n)))
			break;
		n += PAGE_SIZE;
	}
	return n;
}

static __always_inline void track_fd(__u32 tgid, __s32 fd, __u8 kind)
{
	struct fd_key k = {.tgid = tgid, .fd = fd};
	if (bpf_map_update_elem(&fds, &k, &kind, BPF_ANY))
		count_drop(DROP_FDS_FULL);
}

/* The first syscall argument, as the task entered the call. */
static __always_inline __u64 first_arg(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, di);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(regs, orig_x0); /* x0 holds the return value by now */
#endif
}

static __always_inline __u64 rb_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* What sys_exit knows about a finished call; BPF calls take at most five arguments. */
struct call {
	__u64 now;
	__u64 dur;
	__s64 ret;
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__u32 flags;
	__s32 fd_arg;
	__u32 slow;
	__u32 peek;    /* the first read or write on a new connection */
	__u32 partial; /* began before tracing */
};

static __noinline int emit_syscall(struct bpf_raw_tracepoint_args *ctx, struct call *c)
{
	__u32 flags = c->flags;
	__s64 ret = c->ret;
	/* A connect carries its stack however fast: the library opening a
	 * connection per request is what a churn finding must name, and
	 * connects are rare next to reads and writes. */
	bool with_stack = (c->dur >= stack_ns || (flags & SYS_CONNECT)) && stack_pages > 0;
	struct event *e;
	struct uregs u;

	read_uregs((struct pt_regs *)ctx->args[0], &u);
	/* Tracked even when the record below finds the ring full: the close
	 * of a connection whose connect was dropped is still worth seeing. */
	if ((flags & SYS_CONNECT) && (ret == 0 || ret == -115 /* EINPROGRESS */))
		track_fd(c->tgid, u.args[0], FD_SOCKET);
	else if ((flags & SYS_ACCEPT) && ret >= 0)
		track_fd(c->tgid, ret, FD_SOCKET);

	if (with_stack)
		e = bpf_ringbuf_reserve(&events, sizeof(*e) + STACK_COPY_MAX + PAGE_SIZE, 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF);
		return 0;
	}
	zero_event(e);

	__builtin_memcpy(e->args, u.args, sizeof(e->args));
	e->regs = u.r;
	e->ts = c->now;
	e->duration_ns = c->dur;
	e->ret = ret;
	e->tgid = c->tgid;
	e->tid = c->tid;
	e->nr = c->nr;
	e->kind = EV_SYSCALL;
	e->partial = c->partial;
	e->fd = -1;
	e->poll_fd = -1;
	e->poll_timeout_ms = -1;

	if (flags & SYS_CONNECT) {
		e->kind = EV_CONNECT;
		read_sockaddr(e, u.args[1], u.args[2]);
		if (ret == 0 || ret == -115 /* EINPROGRESS */) {
			struct fd_key k = {.tgid = c->tgid, .fd = u.args[0]};
			__u8 one = 1;
			if (bpf_map_update_elem(&sniff, &k, &one, BPF_ANY) == 0)
				__sync_fetch_and_add(&sniff_pending, 1);
		}
	} else if (flags & SYS_BIND) {
		e->kind = EV_BIND;
		read_sockaddr(e, u.args[1], u.args[2]);
	} else if (flags & SYS_SENDTO) {
		if (u.args[4]) {
			e->kind = EV_SENDTO;
			read_sockaddr(e, u.args[4], u.args[5]);
		}
	} else if (flags & SYS_SENDMSG) {
		struct { __u64 name; __u32 namelen; } mh = {};
		bpf_probe_read_user(&mh, sizeof(mh), (void *)u.args[1]);
		if (mh.name) {
			e->kind = EV_SENDTO;
			read_sockaddr(e, mh.name, mh.namelen);
		}
	} else if (flags & SYS_ACCEPT) {
		if (ret >= 0)
			e->kind = EV_ACCEPT;
	}

	if (flags & SYS_ACCEPT) {
		if (ret >= 0)
			fill_fd(e, ret);
	} else if (flags & (SYS_POLL | SYS_PPOLL)) {
		__s32 pfd = -1;
		e->poll_nfds = u.args[1];
		if (u.args[1] > 0 && bpf_probe_read_user(&pfd, sizeof(pfd), (void *)u.args[0]) == 0) {
			e->poll_fd = pfd;
			fill_fd(e, pfd);
		}
		e->poll_timeout_ms = (flags & SYS_POLL) ? (__s32)u.args[2] : timespec_ms(u.args[2]);
	} else if (flags & SYS_EPOLL) {
		fill_fd(e, u.args[0]);
		e->poll_timeout_ms = u.args[3];
	} else if (flags & SYS_SELECT) {
		e->poll_nfds = u.args[0];
	} else if (c->fd_arg >= 0 && c->fd_arg < 6) {
		fill_fd(e, u.args[c->fd_arg]);
	}

	if (c->peek) {
		if (!c->slow && e->kind == EV_SYSCALL)
			e->kind = EV_PEEK;
		__u64 n = ret < PEEK_LEN ? ret : PEEK_LEN;
		if (bpf_probe_read_user(e->data, n & (PEEK_LEN * 2 - 1), (void *)u.args[1]) == 0)
			e->data_len = n;
	}

	if (with_stack) {
		long n = bpf_get_stack(ctx, e->fp_stack, sizeof(e->fp_stack), BPF_F_USER_STACK);
		e->fp_depth = n > 0 ? (__u64)n / 8 : 0;
		e->stack_len = copy_stack((__u8 *)(e + 1), u.r.sp);
		py_stack(e, c->tgid);
		if (!e->stack_len)
			count_drop(DROP_STACK_READ);
	}
	/* Python frames are named from the process's memory: wake the reader
	 * now, before an exiting interpreter frees the code objects. */
	bpf_ringbuf_submit(e, e->py_depth ? BPF_RB_FORCE_WAKEUP : rb_flags());
	return 0;
}

static __always_inline struct event *fd_record(__u32 kind, struct call *c, __s32 fd)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF);
		return NULL;
	}
	zero_event(e);
	e->ts = c->now;
	e->duration_ns = c->dur;
	e->ret = c->ret;
	e->tgid = c->tgid;
	e->tid = c->tid;
	e->nr = c->nr;
	e->kind = kind;
	e->fd = fd;
	e->poll_fd = -1;
	e->poll_timeout_ms = -1;
	return e;
}

/*
 * fd_event handles a returning close or open. A closed fd stops waiting
 * for its first bytes, so that sniff_pending falls back to zero and reads
 * stop looking, and is reported when it was opened while tracing: one
 * lookup for an fd that was not. A successful open is reported with its
 * path and tracked, so that its close is seen too.
 */
static __noinline int fd_event(struct bpf_raw_tracepoint_args *ctx, struct call *c)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct event *e;

	if (c->flags & SYS_CLOSE) {
		if (c->ret != 0)
			return 0;
		struct fd_key k = {.tgid = c->tgid, .fd = first_arg(regs)};
		if (sniff_pending > 0 && bpf_map_delete_elem(&sniff, &k) == 0)
			__sync_fetch_and_add(&sniff_pending, -1); /* closed before any data */
		__u8 *kind = bpf_map_lookup_elem(&fds, &k);
		if (!kind)
			return 0;
		__u8 fd_kind = *kind;
		bpf_map_delete_elem(&fds, &k);
		e = fd_record(EV_CLOSE, c, k.fd);
		if (!e)
			return 0;
		e->fd_kind = fd_kind;
		e->fd_known = 1;
		bpf_ringbuf_submit(e, rb_flags());
		return 0;
	}

	if (c->ret < 0)
		return 0;
	e = fd_record(EV_OPEN, c, c->ret);
	if (!e) {
		track_fd(c->tgid, c->ret, FD_FILE);
		return 0;
	}
	struct uregs u;
	read_uregs(regs, &u);
	__builtin_memcpy(e->args, u.args, sizeof(e->args));
	__u64 path = (c->flags & SYS_OPENAT) ? u.args[1] : u.args[0];
	bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)path);
	fill_fd(e, c->ret);
	track_fd(c->tgid, c->ret, e->fd_kind ? e->fd_kind : FD_FILE);
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

/* addressed_send reports whether a sendto/sendmsg names its destination,
 * as a UDP client does, rather than sending on a connected socket. */
static __noinline bool addressed_send(struct pt_regs *regs, __u32 flags)
{
	struct uregs u;
	read_uregs(regs, &u);
	if (flags & SYS_SENDTO)
		return u.args[4] != 0;
	__u64 name = 0; /* struct msghdr starts with msg_name */
	bpf_probe_read_user(&name, sizeof(name), (void *)u.args[1]);
	return name != 0;
}

/* first_bytes reports whether this read or write is the first on a
 * connection snag saw opened, and forgets the connection if so. */
static __noinline bool first_bytes(__u32 tgid, struct pt_regs *regs)
{
	struct uregs u;
	read_uregs(regs, &u);
	struct fd_key k = {.tgid = tgid, .fd = u.args[0]};
	if (!bpf_map_lookup_elem(&sniff, &k))
		return false;
	if (bpf_map_delete_elem(&sniff, &k) == 0)
		__sync_fetch_and_add(&sniff_pending, -1);
	return true;
}

/*
 * began_before handles a return with no entry on record: the thread's
 * first since tracing began, of a call it was already in (a hung process's
 * stuck call, finally returning). It is reported, when at least as slow as
 * the threshold, with the time since the attach as a lower bound; the
 * aggregates, which hold whole calls only, leave it out.
 */
static __noinline int began_before(struct bpf_raw_tracepoint_args *ctx, __u32 tgid, __u32 tid)
{
	/* Any later return without an entry is a lost entry, not this case. */
	bpf_task_storage_get(&task_call, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u64 now = bpf_ktime_get_ns(), start = attach_ns;
	if (!start || now - start < slow_ns)
		return 0; /* still attaching, or not slow */
	struct uregs u;
	read_uregs((struct pt_regs *)ctx->args[0], &u);
	__u32 nr = u.nr;
	if (nr >= MAX_SYSCALLS)
		return 0;
	struct sysinfo *si = bpf_map_lookup_elem(&syscall_info, &nr);
	if (!si || (si->flags & SYS_FORK))
		return 0; /* a new thread or process's first return is from its creation */
	struct call c = {
		.now = now, .dur = now - start, .ret = ctx->args[1], .tgid = tgid, .tid = tid,
		.nr = nr, .flags = si->flags, .fd_arg = si->fd_arg, .slow = 1, .partial = 1,
	};
	return emit_syscall(ctx, &c);
}

/* new_value hands out a zeroed value for aggregate number nr of row. */
static __noinline __u32 new_value(struct thread_aggs *row, __u32 nr)
{
	__u32 i;
	if (bpf_map_pop_elem(&free_vals, &i))
		return 0; /* every value taken */
	if (nr < AGG_NRS)
		row->idx[nr] = i;
	return i;
}

/*
 * agg_value finds the aggregate of (tid, nr) from the row the thread's
 * task_call caches. A row that is not tid's (none yet, or a thread that
 * took its leader's tid at exec) is looked up again and cached.
 */
static __always_inline struct agg_val *agg_value(struct inflight *in, __u32 nr, __u32 tid, __u32 tgid)
{
	__u32 slot = in->slot;
	struct thread_aggs *row = bpf_map_lookup_elem(&rows, &slot);
	if (!row || row->tid != tid) {
		slot = thread_row(tid, tgid);
		row = bpf_map_lookup_elem(&rows, &slot);
		if (!row || row->tid != tid)
			return NULL;
		in->slot = slot;
	}
	if (nr >= AGG_NRS)
		return NULL;
	__u32 i = row->idx[nr];
	if (!i) {
		i = new_value(row, nr);
		if (!i)
			return NULL;
	}
	return bpf_map_lookup_elem(&agg_vals, &i);
}

SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;

	if (!is_current_traced(tgid))
		return 0;

	struct inflight *in = bpf_task_storage_get(&task_call, bpf_get_current_task_btf(), 0, 0);
	if (!in)
		return began_before(ctx, tgid, tid);
	if (!in->live)
		return 0; /* its entry was lost (counted when it was) */
	in->live = 0;
	__u64 ts = in->ts;
	__u32 nr = in->nr;
	__s64 ret = ctx->args[1];

	struct agg_val *v = agg_value(in, nr, tid, tgid);
	if (!v) {
		count_drop(DROP_AGG_FULL);
		return 0;
	}
	v->count++;
	if (ret < 0 && ret > -4096)
		v->errors++;
	if (!ts)
		return 0; /* SYS_UNTIMED */
	__u64 now = bpf_ktime_get_ns();
	__u64 dur = now - ts;
	v->total_ns += dur;
	if (dur > v->max_ns)
		v->max_ns = dur;
	__u32 idx = hist_index(dur);
	barrier_var(idx); /* keep the bound check where the verifier sees it */
	if (idx < HIST_BUCKETS)
		v->hist[idx]++;

	if (nr >= MAX_SYSCALLS) {
		if (nr - FUTEX_NR_BASE >= FUTEX_CLASSES)
			return 0;
		nr = futex_nr; /* the class keyed the aggregate; events carry the op */
	}
	struct sysinfo *si = bpf_map_lookup_elem(&syscall_info, &nr);
	if (!si)
		return 0;
	bool slow = dur >= slow_ns;
	if (si->flags & (SYS_CLOSE | SYS_OPEN | SYS_OPENAT)) {
		struct call fc = {
			.now = now, .dur = dur, .ret = ret, .tgid = tgid, .tid = tid, .nr = nr,
			.flags = si->flags,
		};
		fd_event(ctx, &fc);
	}
	bool peek = (si->flags & SYS_PEEK) && ret > 0 && sniff_pending > 0 &&
		    first_bytes(tgid, (struct pt_regs *)ctx->args[0]);
	if (!slow && !peek) {
		if (!(si->flags & (SYS_CONNECT | SYS_ACCEPT | SYS_BIND | SYS_SENDTO | SYS_SENDMSG)))
			return 0;
		if ((si->flags & SYS_ACCEPT) && ret < 0)
			return 0; /* a non-blocking accept finding nothing */
		if ((si->flags & (SYS_SENDTO | SYS_SENDMSG)) &&
		    !addressed_send((struct pt_regs *)ctx->args[0], si->flags))
			return 0; /* send() on a connected socket: its peer is known */
	}
	struct call c = {
		.now = now, .dur = dur, .ret = ret, .tgid = tgid, .tid = tid, .nr = nr,
		.flags = si->flags, .fd_arg = si->fd_arg, .slow = slow, .peek = peek,
	};
	return emit_syscall(ctx, &c);
}

static __always_inline struct event *lifecycle_event(__u32 kind, __u32 tgid, __u32 tid)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF);
		return NULL;
	}
	zero_event(e);
	e->ts = bpf_ktime_get_ns();
	e->kind = kind;
	e->tgid = tgid;
	e->tid = tid;
	e->nr = -1;
	e->fd = -1;
	e->poll_fd = -1;
	return e;
}

SEC("raw_tracepoint/sched_process_fork")
int sched_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);

	if (!is_current_traced(ptgid)) /* the parent is current */
		return 0;
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	bool thread = ctgid == ptgid;
	if (!thread) {
		if (!follow_forks)
			return 0;
		__u32 st = TRACE_ACTIVE;
		bpf_map_update_elem(&traced, &ctgid, &st, BPF_ANY);
	}
	struct event *e = lifecycle_event(EV_FORK, ptgid, BPF_CORE_READ(parent, pid));
	if (!e)
		return 0;
	e->child = BPF_CORE_READ(child, pid);
	e->thread = thread;
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int sched_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (use_traced_map) {
		__u32 *st = bpf_map_lookup_elem(&traced, &tgid);
		if (st && *st == TRACE_ARMED)
			*st = TRACE_ACTIVE;
	}
	/* Untraced execs are reported too with a selector: rare, and the
	 * only way user space learns of a process that starts to match. */
	if (!watch_execs && !is_current_traced(tgid))
		return 0;
	struct event *e = lifecycle_event(EV_EXEC, tgid, (__u32)id);
	if (!e)
		return 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(&e->path, sizeof(e->path), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int sched_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	__u32 *st = use_traced_map ? bpf_map_lookup_elem(&traced, &tgid) : NULL;

	if (!(st && *st == TRACE_EXITING) && !is_current_traced(tgid))
		return 0;
	/* The row stays readable until user space frees it, but no longer
	 * matches the tid, which may come back as another thread. */
	__u32 slot = 0, *s = bpf_map_lookup_elem(&thread_slot, &tid);
	if (s) {
		slot = *s;
		bpf_map_delete_elem(&thread_slot, &tid);
		struct thread_aggs *row = bpf_map_lookup_elem(&rows, &slot);
		if (row && row->tid == tid) {
			row->exited = tid;
			row->tid = 0;
		}
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (st && *st == TRACE_ACTIVE && BPF_CORE_READ(task, signal, live.counter) == 0) {
		/* Every thread of the group has begun to exit (a leader may
		 * exit before its threads): the exits still to come are traced,
		 * and user space deletes the entry once the process is gone,
		 * so that a process given its pid later is not traced for it. */
		*st = TRACE_EXITING;
	}
	struct event *e = lifecycle_event(EV_EXIT, tgid, tid);
	if (!e)
		return 0;
	e->agg_slot = slot;
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->signal = e->exit_code & 0x7f;
	e->thread = tid != tgid;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

/*
 * ---- Signals ----
 *
 * A worker that dies "suddenly" was usually killed: by its master
 * (uWSGI's harakiri, a reload past its mercy), by the OOM killer, or by
 * a fault. sched_process_exit tells how a task ended (EV_EXIT's signal);
 * signal_generate tells who sent the signal. It is a raw tracepoint like
 * the others: its task argument gives the target's tgid directly (the
 * classic tracepoint's pid field is a thread id), and it needs no tracefs.
 * Every signal on the host passes through it, so the fatal-signal mask is
 * checked first and the traced map only for those; only a traced target
 * costs a ring-buffer record.
 */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGILL 4
#define SIGABRT 6
#define SIGBUS 7
#define SIGFPE 8
#define SIGKILL 9
#define SIGSEGV 11
#define SIGTERM 15
#define SIGXCPU 24
#define SIGXFSZ 25
#define SIGSYS 31
#define SIG_BIT(s) (1U << (s))
/* Signals whose default action ends the process (with or without a core).
 * SIGPIPE and SIGALRM are left out: common, and mostly handled or ignored. */
#define FATAL_SIGNALS (SIG_BIT(SIGHUP) | SIG_BIT(SIGINT) | SIG_BIT(SIGQUIT) | SIG_BIT(SIGILL) | \
		       SIG_BIT(SIGABRT) | SIG_BIT(SIGBUS) | SIG_BIT(SIGFPE) | SIG_BIT(SIGKILL) | \
		       SIG_BIT(SIGSEGV) | SIG_BIT(SIGTERM) | SIG_BIT(SIGXCPU) | SIG_BIT(SIGXFSZ) | \
		       SIG_BIT(SIGSYS))
#define SI_USER 0
#define SI_KERNEL 0x80
#define PF_KTHREAD 0x00200000
/* include/trace/events/signal.h: the signal was ignored, or already pending */
#define TRACE_SIGNAL_IGNORED 1
#define TRACE_SIGNAL_ALREADY_PENDING 2

/* signal_generate(int sig, struct kernel_siginfo *info, struct task_struct *task,
 *                 int group, int result) */
SEC("raw_tracepoint/signal_generate")
int signal_generate(struct bpf_raw_tracepoint_args *ctx)
{
	int sig = ctx->args[0];

	if (sig <= 0 || sig >= 32 || !(FATAL_SIGNALS & SIG_BIT(sig)))
		return 0;
	int result = ctx->args[4];
	if (result == TRACE_SIGNAL_IGNORED || result == TRACE_SIGNAL_ALREADY_PENDING)
		return 0;
	struct task_struct *task = (struct task_struct *)ctx->args[2];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	if (!is_traced(tgid))
		return 0;

	/* SEND_SIG_NOINFO (0) is a user's kill(2); SEND_SIG_PRIV (1) the kernel. */
	__u64 info = ctx->args[1];
	int code = SI_USER;
	if (info == 1)
		code = SI_KERNEL;
	else if (info > 1)
		bpf_probe_read_kernel(&code, sizeof(code), (void *)(info + 8)); /* si_code: after si_signo, si_errno */

	struct event *e = lifecycle_event(EV_SIGNAL, tgid, BPF_CORE_READ(task, pid));
	if (!e)
		return 0;
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	__u32 from = bpf_get_current_pid_tgid() >> 32;
	e->signal = sig;
	e->thread = ctx->args[3] == 0; /* sent to one thread, not the whole group */
	if (BPF_CORE_READ(cur, flags) & PF_KTHREAD) {
		e->sig_from = SIG_FROM_KERNEL;
	} else if (code == SI_KERNEL && sig == SIGKILL && from != tgid) {
		/* The OOM killer runs in the allocating task: it is no sender. */
		e->sig_from = SIG_FROM_OOM;
	} else if (code > 0) {
		e->sig_from = SIG_FROM_KERNEL; /* a fault (SEGV_MAPERR, BUS_ADRERR, ...) or SI_KERNEL */
	} else {
		e->sig_from = SIG_FROM_TASK;
		e->child = from;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
	}
	e->ret = code;
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}
