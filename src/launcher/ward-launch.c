/*
 * ward-launch: the small native launcher every Ward command runs through.
 *
 * Ward runs a command as
 *
 *   ward-launch outer [--cgroup-procs FILE]... [--status-fd N]
 *                     [--lifeline-fd L --info-fd I] [--block-fd B]
 *                     [--userns-limit NAME=N]... -- bwrap ARGS... \
 *     -- /path/to/ward-launch inner [options] -- CMD ARGS...
 *
 * With --userns-limit, the watchdog sets the sandbox user namespace's
 * /proc/sys/user/NAME limits before it releases bwrap (--block-fd): see
 * "user namespace limits".
 *
 * "outer" runs before bubblewrap, in the caller's namespaces: it ties its
 * life to Ward's (parent-death signal, and with --lifeline-fd a watchdog
 * process outside the sandbox, see below), joins the cgroups and execs bwrap. "inner" runs as bwrap's command, inside the
 * sandbox (mounts built, bwrap's seccomp filter and no_new_privs in force):
 * it makes sure the command inherits only fds 0-2, applies Landlock, changes
 * directory, sets resource limits, checks that what Ward requires is in
 * force (--require-seccomp N, --require-unprivileged, --require-ns NAME:INO:
 * step "confinement"), reports what is in force, and execs the command. (bwrap's seccomp filter must therefore allow what these steps
 * use: landlock_* 444-446, prctl, close_range, chdir, prlimit64, execve, and
 * for supervised mode seccomp, recv and sendmsg.) With --supervise-fd N,
 * inner also installs the supervisor's notify filter and hands its listener
 * to Ward before the exec (see supervise_handshake). With --argv-fd N
 * (pooled, "warm" sandboxes, src/pool/), inner does every step up to and
 * including "ready" with no command yet, then waits for the command on fd N
 * (see read_argv) and execs it: "inner [options] --argv-fd N --" with
 * nothing after the "--".
 *
 * This file is a trust root. It is written to be read top to bottom in one
 * sitting: a flat sequence of steps, each with the reason for it, each
 * failure naming the step. Only libc and raw system calls; no allocation
 * that outlives a step; no threads.
 *
 * Status protocol (fd given by --status-fd; one JSON object per line; the
 * reader reads until EOF):
 *   failure: {"stage":"outer"|"inner","step":S,"error":STRERROR,"errno":N,
 *             "detail":D[,"hint":H]}                       exit status 125
 *   ready:   {"stage":"inner","landlock":{...},"proc_status":{...},
 *             "rlimits":{...}}                             written just before exec
 *   After "ready" the status fd is close-on-exec: a successful exec closes
 *   it (the reader sees EOF); a failed exec appends a failure line with step
 *   "exec" and the launcher exits 127 (ENOENT) or 126 like a shell.
 *   Usage errors (a bad option) go to stderr only, exit status 125.
 *
 * Other subcommands: "--version" prints a version line; "landlock-abi"
 * prints the running kernel's Landlock ABI version (0 when unavailable).
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -o ward-launch ward-launch.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARD_LAUNCH_VERSION "0.1.0"
/* Bumped when the status JSON changes shape; parsed by src/launcher/launcher.ts. */
#define WARD_STATUS_PROTOCOL 1
/* Exit status for any failure of the launcher itself (as env(1), chroot(1)). */
#define EXIT_LAUNCHER 125

/*
 * Kernel ABI definitions. We deliberately do not include <linux/landlock.h>:
 * distributions ship headers older than the kernel they run on (Debian 12's
 * lacks TRUNCATE, IOCTL_DEV, handled_access_net and scoped), and its
 * struct landlock_ruleset_attr changes size from one header version to the
 * next. The values below are kernel ABI and never change; the names are our
 * own so they cannot clash with any header. System call numbers come from
 * <sys/syscall.h> when the libc knows them (444-446 and 436 are the same on
 * every architecture that has them).
 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)     /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

/* The only rights the kernel accepts in a rule on a non-directory (else EINVAL). */
#define LL_FS_FILE_RIGHTS \
	(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* struct landlock_ruleset_attr as of ABI 6; we pass the prefix the running ABI knows. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs; /* ABI 1: 8 bytes */
	uint64_t handled_access_net; /* ABI 4: 16 bytes */
	uint64_t scoped; /* ABI 6: 24 bytes */
};
_Static_assert(sizeof(struct ll_ruleset_attr) == 24, "landlock_ruleset_attr is 24 bytes");

/* struct landlock_path_beneath_attr is packed in the kernel: 12 bytes, not 16. */
struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
_Static_assert(sizeof(struct ll_path_beneath_attr) == 12, "landlock_path_beneath_attr is 12 bytes");

/* ------------------------------------------------------------------------ */
/* Reporting                                                                 */
/* ------------------------------------------------------------------------ */

static const char *stage = "launcher"; /* "outer" or "inner" once known */
static int status_fd = -1;
static int close_fds_except(const int *keep, int n);
static int drop_all_caps(void);

/* Write all of buf; a pipe may take it in pieces. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A JSON string. Only '"', '\\' and control characters need escaping; bytes
 * >= 0x80 pass through: paths from Ward are UTF-8, and should one not be, a
 * decoder replaces the stray bytes while the JSON structure (all ASCII) stays
 * intact.
 */
/* Send `len` bytes on a unix socket with `fd` attached (SCM_RIGHTS), or none when fd < 0. */
static ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof ctl.buf;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Send a finished line to the status fd. Returns -1 (errno set) on failure. */
static int send_status(char *line, size_t len)
{
	int r = write_all(status_fd, line, len);
	int saved = errno;
	free(line);
	errno = saved;
	return r;
}

/* The failure line, or NULL if memory is exhausted. */
static char *failure_line(const char *step, int err, const char *detail, const char *hint,
			  size_t *len)
{
	char *line = NULL;
	FILE *f = open_memstream(&line, len);
	if (!f)
		return NULL;
	fputs("{\"stage\":", f);
	json_str(f, stage);
	fputs(",\"step\":", f);
	json_str(f, step);
	fputs(",\"error\":", f);
	json_str(f, strerror(err));
	fprintf(f, ",\"errno\":%d,\"detail\":", err);
	json_str(f, detail ? detail : "");
	if (hint) {
		fputs(",\"hint\":", f);
		json_str(f, hint);
	}
	fputs("}\n", f);
	if (fclose(f) != 0) {
		free(line);
		return NULL;
	}
	return line;
}

/*
 * Report a failed step and return the launcher's exit status. With a status
 * fd the JSON line is the report; without one (a human running the launcher
 * by hand) it goes to stderr in words.
 */
static int report_failure(const char *step, int err, const char *detail, const char *hint)
{
	size_t len = 0;
	char *line;
	if (status_fd < 0 || !(line = failure_line(step, err, detail, hint, &len))) {
		fprintf(stderr, "ward-launch %s: %s: %s%s%s%s\n", stage, step, strerror(err),
			detail && *detail ? " (" : "", detail ? detail : "",
			detail && *detail ? ")" : "");
		if (hint)
			fprintf(stderr, "ward-launch %s: hint: %s\n", stage, hint);
		return EXIT_LAUNCHER;
	}
	if (send_status(line, len) < 0)
		fprintf(stderr, "ward-launch %s: %s: %s (and the status fd failed: %s)\n", stage, step,
			strerror(err), strerror(errno));
	return EXIT_LAUNCHER;
}

__attribute__((noreturn)) static void fail(const char *step, int err, const char *detail,
					   const char *hint)
{
	_exit(report_failure(step, err, detail, hint));
}

/* A malformed command line is a bug in the caller: say which argument, on stderr. */
__attribute__((noreturn, format(printf, 1, 2))) static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ward-launch: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nusage: ward-launch outer|inner [options] -- PROGRAM [ARGS...]\n"
			"       ward-launch landlock-abi | --version\n");
	va_end(ap);
	exit(EXIT_LAUNCHER);
}

/* ------------------------------------------------------------------------ */
/* Parsing helpers (strict: the whole string must match)                     */
/* ------------------------------------------------------------------------ */

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* The value after an option, or a usage error naming the option. */
static const char *option_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc || strcmp(argv[*i + 1], "--") == 0)
		usage_error("option %s needs a value", argv[*i]);
	return argv[++*i];
}

/*
 * --status-fd N: an fd the caller opened for us (a pipe). It must be >= 3
 * (0-2 belong to the command) and open. It is made close-on-exec here so
 * that the program we exec never inherits it; "outer" leaves it alone,
 * because bwrap and "inner" must inherit it.
 */
static void parse_status_fd(const char *opt, const char *value, int make_cloexec)
{
	uint64_t v;
	if (status_fd >= 0)
		usage_error("option %s given twice", opt);
	if (parse_u64(value, &v) < 0 || v < 3 || v > INT_MAX)
		usage_error("option %s: '%s' is not a file descriptor number >= 3", opt, value);
	int flags = fcntl((int)v, F_GETFD);
	if (flags < 0)
		usage_error("option %s: fd %s is not open", opt, value);
	if (make_cloexec && fcntl((int)v, F_SETFD, flags | FD_CLOEXEC) < 0)
		usage_error("option %s: fd %s: cannot set close-on-exec: %s", opt, value,
			    strerror(errno));
	status_fd = (int)v;
}

/* ------------------------------------------------------------------------ */
/* relay                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Why a relay: the sandbox has its own network namespace holding only
 * loopback, so nothing it does can reach the host's network. Ward's egress
 * broker (in the Ward process) decides every connection; the relay is how
 * bytes get from the sandbox's loopback to the broker, nothing more.
 *
 * It is forked by the watchdog once bwrap has reported the sandbox init,
 * joins the init's network namespace and the user namespace that owns it
 * (the caller owns that user namespace, so it may; this is how rootless
 * container networking attaches too), and listens there: TCP on 0.0.0.0 for every port the policy names
 * (any 127.x address, so the synthetic addresses Ward's DNS hands out for
 * allowed names reach it), TCP and UDP 53 for DNS. It stays in the host's
 * mount and pid namespaces: the sandbox cannot see it, signal it or trace
 * it, and it reaches the broker's unix socket, which the sandbox cannot.
 *
 * For each accepted connection it opens a new connection to the broker and
 * sends the run's key, then "tcp <dialed-ip> <dialed-port>\n", then copies
 * bytes both ways. The key (RELAY_KEY_LEN random bytes, read once from
 * --relay-key-fd, never in argv or the environment) is how the broker knows
 * the relay from any other process of the same user: a pathname unix socket
 * ignores network namespaces, and a sandbox that could reach the socket
 * (another run's, under a grant it was not hidden from) would otherwise speak
 * this protocol itself, to be let out or to forge counts. For
 * each UDP DNS query: "dns\n", the query with a 2-byte length, and the one
 * framed answer comes back. The relay trusts nothing and decides nothing:
 * the agent may reach the broker through it with any bytes it likes; the
 * broker checks them all. If the broker goes away, connections fail: the
 * sandbox loses network, it never gains any.
 */

#define RELAY_MAX_PORTS 64
#define RELAY_MAX_CONNS 1024
/*
 * Buffers start small and double while full, up to RELAY_BUF per direction.
 * A bulk transfer reads what the socket holds, and fewer, larger reads and
 * sends cost the relay less CPU per byte. Measured on a 2-core VM, 100 MiB
 * each way: 256 KiB used 0.5 ms of relay CPU per MiB moved, 1 MiB 0.35-0.4,
 * 4 MiB 0.3 (64 KiB moved ~10% less per second than 256 KiB). 1 MiB keeps 32
 * halves at full size under RELAY_MEM_MAX. The relay is outside the sandbox's
 * cgroup, so all its buffers together stay under RELAY_MEM_MAX: a sandbox
 * opening many stalled connections cannot make it hold more. Beyond that,
 * buffers stop growing and connections just move slower.
 *
 * splice(2) through a pipe was tried (and measured) instead of this copy
 * loop: it cut the relay's own CPU by ~40% but the receiving process then
 * paid ~0.2 ms per MiB more (why is not understood), and
 * downloads moved ~25% less. See BENCHMARKS.md, Egress.
 */
#define RELAY_BUF_MIN (16 * 1024)
#define RELAY_BUF (1024 * 1024)
#define RELAY_MEM_MAX ((size_t)64 * 1024 * 1024)
#define RELAY_CTL_MAX 512
/* The broker's CONNECT_TIMEOUT_MS: a dial that takes longer fails with ETIMEDOUT. */
#define RELAY_DIAL_TIMEOUT_MS 10000

struct relay_half {
	char *buf;
	size_t cap, off, len;
	int eof;  /* the source has no more to send */
	int keep; /* never compact: bytes before `off` may still have to go upstream (see "pass") */
};

/*
 * One sandbox connection. `mode` says who carries its bytes:
 *   MODE_AWAIT  the header went to the broker, which has not said yet;
 *   MODE_PIPE   the broker carries both directions (DNS, refusals with an
 *               answer, brokered credentials, plain-HTTP proxying): all it
 *               sends us is for the client;
 *   MODE_DIAL   the broker decided the destination and told us to dial it
 *               ("dial"): the upstream's bytes go straight to the client;
 *               the client's go to the broker, which checks the first
 *               message, until it says "pass F": then the client's bytes
 *               from offset F on go straight upstream, and the broker only
 *               waits for our byte counts ("done").
 */
enum { MODE_AWAIT, MODE_PIPE, MODE_DIAL };

struct relay_conn {
	int client; /* sandbox side: TCP socket, or -1 for a UDP DNS query */
	int broker; /* unix socket to the broker */
	int target; /* MODE_DIAL: the upstream socket (host network), once the dialer made it */
	int mode;
	int can_dial;   /* we offered "dial" in the header */
	uint32_t serial; /* our dial request's number */
	unsigned long id; /* the broker's number for this connection (MODE_DIAL) */
	int dialing, connected, passed, connect_reply;
	int connect_err; /* the dial failed: errno, reported as its name */
	long long deadline; /* MODE_DIAL, not yet connected: give up at this CLOCK_MONOTONIC ms */
	char host[256];     /* for a CONNECT's 502 */
	unsigned dport;
	unsigned long long bytes_up, bytes_down; /* MODE_DIAL: to and from the upstream */
	struct relay_half up, down; /* up: from the client; down: to the client */
	char ctl[RELAY_CTL_MAX];    /* the broker's control lines, until a newline */
	size_t ctl_len;
	int client_shut, broker_shut, up_shut; /* we have done shutdown(SHUT_WR) on that side */
	struct sockaddr_in peer; /* UDP: where the answer goes */
	int slot[3]; /* this turn's pollfd index of client, broker, upstream; -1: not polled */
};

static const char *relay_socket;
/*
 * The socket's name in its directory, the relay's working directory: a unix
 * socket's path holds 107 bytes, and Ward's state directory, where the
 * broker's socket is, may lie deeper than that.
 */
static const char *relay_name;
/* Sent first on every connection to the broker: only Ward and we hold it (see above). */
#define RELAY_KEY_LEN 32
static unsigned char relay_key[RELAY_KEY_LEN];
static int relay_ports[RELAY_MAX_PORTS];
static int n_relay_ports;
static int dialer_fd = -1; /* the dialer's socket; -1 once it is gone */
static uint32_t next_serial;
static size_t relay_mem; /* bytes of all buffers */

static int half_init(struct relay_half *h)
{
	h->buf = malloc(RELAY_BUF_MIN);
	if (!h->buf)
		return -1;
	h->cap = RELAY_BUF_MIN;
	relay_mem += h->cap;
	return 0;
}

static void half_free(struct relay_half *h)
{
	if (!h->buf)
		return;
	relay_mem -= h->cap;
	free(h->buf);
	h->buf = NULL;
}

/* Double h's buffer if it may grow (a read filled it: more is waiting, bigger reads move it faster). */
static void half_grow(struct relay_half *h)
{
	if (h->cap >= RELAY_BUF || relay_mem + h->cap > RELAY_MEM_MAX)
		return;
	char *b = realloc(h->buf, h->cap * 2);
	if (!b)
		return;
	h->buf = b;
	relay_mem += h->cap;
	h->cap *= 2;
}

/* Whether h can take more bytes, growing it if it is full and may grow. */
static int half_room(struct relay_half *h)
{
	if (h->len == h->cap)
		half_grow(h);
	return h->len < h->cap;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int relay_listen(int type, int port)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 256) < 0)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int relay_dial_broker(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, relay_name); /* its length was checked with the options */
	/* A unix connect completes at once or fails (EAGAIN: the broker's backlog is full). A
	 * fresh unix socket takes the key at once too. */
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    write_all(fd, (const char *)relay_key, RELAY_KEY_LEN) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static struct relay_conn *relay_new_conn(int client, const char *head, size_t head_len, int can_dial)
{
	struct relay_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	int ok = half_init(&c->up) == 0 && half_init(&c->down) == 0;
	c->broker = ok ? relay_dial_broker() : -1;
	if (c->broker < 0) {
		half_free(&c->up);
		half_free(&c->down);
		free(c);
		return NULL;
	}
	c->client = client;
	c->target = -1;
	c->can_dial = can_dial;
	c->mode = can_dial ? MODE_AWAIT : MODE_PIPE;
	/* Until the broker says who carries the client's bytes, keep them all: a "pass" may ask for them again. */
	c->up.keep = can_dial;
	if (head_len > 0 && write_all(c->broker, head, head_len) < 0) {
		close(c->broker);
		half_free(&c->up);
		half_free(&c->down);
		free(c);
		return NULL;
	}
	return c;
}

static const char *errno_name(int err)
{
	switch (err) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ECONNRESET: return "ECONNRESET";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOBUFS: return "ENOBUFS";
	case ENOMEM: return "ENOMEM";
	case ESHUTDOWN: return "ESHUTDOWN";
	case EINVAL: return "EINVAL";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EFAULT: return "EFAULT";
	default: return "EUNKNOWN";
	}
}

/*
 * Tell the broker how a dialed connection went: "done ID UP DOWN ERR" on a
 * connection of its own (the first one carries the client's bytes, and
 * those may be anything). The broker writes the connection's record from it.
 */
static void relay_report(struct relay_conn *c)
{
	if (c->mode != MODE_DIAL)
		return;
	char line[128];
	int n = snprintf(line, sizeof line, "done %lu %llu %llu %s\n", c->id, c->bytes_up, c->bytes_down,
			 c->connect_err ? errno_name(c->connect_err) : "-");
	int fd = relay_dial_broker();
	if (fd < 0)
		return; /* the broker is gone: there is no record to finish */
	/* A fresh unix socket takes a hundred bytes at once. */
	send(fd, line, (size_t)n, MSG_NOSIGNAL);
	close(fd);
}

static void relay_free(struct relay_conn *c)
{
	relay_report(c);
	if (c->client >= 0)
		close(c->client);
	if (c->target >= 0)
		close(c->target);
	close(c->broker);
	half_free(&c->up);
	half_free(&c->down);
	free(c);
}

/*
 * Move bytes from src into h, then from h to dst, until neither can move
 * (or a few rounds: other connections wait). *got counts what came from src,
 * *moved what reached dst (either may be NULL). Returns -1 when the pair
 * must close.
 */
static int relay_pump(int src, int dst, struct relay_half *h, short src_ev, short dst_ev,
		      unsigned long long *got, unsigned long long *moved)
{
	int can_read = (src_ev & (POLLIN | POLLHUP | POLLERR)) != 0;
	int can_write = (dst_ev & POLLOUT) != 0;
	for (int round = 0; round < 8; round++) {
		int progress = 0;
		if (can_read && !h->eof && half_room(h)) {
			ssize_t n = read(src, h->buf + h->len, h->cap - h->len);
			if (n > 0) {
				h->len += (size_t)n;
				if (got)
					*got += (unsigned long long)n;
				progress = 1;
				if (h->len == h->cap)
					half_grow(h);
			} else if (n == 0)
				h->eof = 1;
			else if (errno == EAGAIN || errno == EINTR)
				can_read = 0;
			else
				return -1;
		}
		if (can_write && h->off < h->len) {
			ssize_t n = send(dst, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
			if (n > 0) {
				h->off += (size_t)n;
				if (moved)
					*moved += (unsigned long long)n;
				progress = 1;
			} else if (n < 0 && (errno == EAGAIN || errno == EINTR))
				can_write = 0;
			else if (n < 0)
				return -1;
		}
		if (h->off == h->len && !h->keep)
			h->off = h->len = 0;
		if (!progress)
			break;
	}
	if (dst_ev & POLLERR)
		return -1;
	return 0;
}

/* The DNS answer in c->down, framed: send it to the UDP peer once complete. */
static void relay_dns_answer(int udp, struct relay_conn *c)
{
	if (c->down.len < 2)
		return;
	size_t len = ((unsigned char)c->down.buf[0] << 8) | (unsigned char)c->down.buf[1];
	if (c->down.len < 2 + len)
		return;
	sendto(udp, c->down.buf + 2, len, MSG_NOSIGNAL, (struct sockaddr *)&c->peer, sizeof c->peer);
}

/* ---- the dialer ---------------------------------------------------------- */

/*
 * Why a dialer: the relay lives in the sandbox's network namespace, where
 * no socket it makes can leave the sandbox. The dialer is forked before the
 * relay joins it, so it stays in the host's; for each "dial" the broker
 * decided, it makes a non-blocking TCP socket there, starts the connect and
 * passes the socket to the relay (SCM_RIGHTS), which then copies bytes
 * between the client and it without Node in the path. It holds no
 * capability and nothing but its socket to the relay; only the relay can
 * ask it, and the relay asks only for what the broker said.
 */
struct dial_req {
	uint32_t serial;
	uint32_t addr; /* network order */
	uint16_t port; /* host order */
};

struct dial_rep {
	uint32_t serial;
	int32_t err; /* 0: the socket is attached, its connect started */
};

__attribute__((noreturn)) static void run_dialer(int fd)
{
	prctl(PR_SET_NAME, "ward-dialer", 0, 0, 0);
	for (;;) {
		struct dial_req q;
		ssize_t n = recv(fd, &q, sizeof q, 0);
		if (n == 0)
			_exit(0); /* the relay is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(EXIT_LAUNCHER);
		}
		if (n != (ssize_t)sizeof q)
			_exit(EXIT_LAUNCHER); /* not the relay's message: stop rather than guess */
		struct dial_rep r = { .serial = q.serial, .err = 0 };
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s < 0)
			r.err = errno;
		else {
			int one = 1;
			/* We forward what we read at once; Nagle would hold a small write for an ACK (~40 ms). */
			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(q.port),
						 .sin_addr.s_addr = q.addr };
			if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
				r.err = errno;
				close(s);
				s = -1;
			}
		}
		ssize_t w = send_with_fd(fd, &r, sizeof r, s);
		if (s >= 0)
			close(s);
		if (w < 0)
			_exit(0);
	}
}

/* Fork the dialer (before the relay leaves the host's network namespace). Returns our end, or -1. */
static int start_dialer(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() == 1)
			_exit(0);
		int keep[1] = { sv[1] };
		close_fds_except(keep, 1);
		if (drop_all_caps() < 0)
			_exit(EXIT_LAUNCHER);
		run_dialer(sv[1]);
	}
	close(sv[1]);
	return sv[0];
}

static void relay_dial(struct relay_conn *c, uint32_t addr, unsigned port)
{
	struct dial_req q = { .serial = ++next_serial, .addr = addr, .port = (uint16_t)port };
	c->serial = q.serial;
	c->dialing = 1;
	c->deadline = now_ms() + RELAY_DIAL_TIMEOUT_MS;
	if (dialer_fd < 0 || send(dialer_fd, &q, sizeof q, MSG_NOSIGNAL) != (ssize_t)sizeof q) {
		c->dialing = 0;
		c->connect_err = ESHUTDOWN;
	}
}

/* A reply from the dialer: attach its socket to the connection that asked, if it is still here. */
static void relay_dialer_reply(struct relay_conn **conns, int n_conns)
{
	struct dial_rep r;
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof r };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t n = recvmsg(dialer_fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The dialer is gone: what it was making fails; new connections go through the broker. */
		close(dialer_fd);
		dialer_fd = -1;
		for (int k = 0; k < n_conns; k++)
			if (conns[k]->dialing) {
				conns[k]->dialing = 0;
				conns[k]->connect_err = ESHUTDOWN;
			}
		return;
	}
	int fd = -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	for (int k = 0; k < n_conns; k++) {
		struct relay_conn *c = conns[k];
		if (!c->dialing || c->serial != r.serial)
			continue;
		c->dialing = 0;
		if (n != (ssize_t)sizeof r || (r.err == 0) != (fd >= 0))
			c->connect_err = EIO;
		else if (r.err)
			c->connect_err = r.err;
		else {
			c->target = fd;
			fd = -1;
		}
		break;
	}
	if (fd >= 0)
		close(fd); /* the connection ended while its dial was under way */
}

/* ---- the broker's control lines (MODE_AWAIT and MODE_DIAL) --------------- */

/*
 * One line from the broker: "pipe", "dial ID A.B.C.D PORT [connect HOST]" or
 * "pass F". Returns -1 for anything else: the broker and the relay ship
 * together, so an unknown line is a bug, and the connection closes.
 */
static int relay_control(struct relay_conn *c, char *line)
{
	if (c->mode == MODE_AWAIT && strcmp(line, "pipe") == 0) {
		c->mode = MODE_PIPE;
		c->up.keep = 0;
		return 0;
	}
	if (c->mode == MODE_AWAIT && strncmp(line, "dial ", 5) == 0) {
		char ip[32], extra[16] = "";
		unsigned long id;
		unsigned port;
		int used = 0;
		if (sscanf(line + 5, "%lu %31s %u%n", &id, ip, &port, &used) < 3 || port < 1 || port > 65535)
			return -1;
		const char *rest = line + 5 + used;
		if (*rest == ' ') {
			if (sscanf(rest, " %15s %255s", extra, c->host) != 2 || strcmp(extra, "connect") != 0)
				return -1;
			c->connect_reply = 1;
		} else if (*rest)
			return -1;
		struct in_addr a;
		if (inet_pton(AF_INET, ip, &a) != 1)
			return -1;
		c->mode = MODE_DIAL;
		c->id = id;
		c->dport = port;
		relay_dial(c, a.s_addr, port);
		return 0;
	}
	if (c->mode == MODE_DIAL && !c->passed && strncmp(line, "pass ", 5) == 0) {
		char *end;
		errno = 0;
		unsigned long long from = strtoull(line + 5, &end, 10);
		if (errno || *end || end == line + 5 || from > c->up.len)
			return -1;
		/* From here the client's bytes from offset F on go upstream, not to the broker. */
		c->passed = 1;
		c->up.off = (size_t)from;
		c->up.keep = 0;
		return 0;
	}
	return -1;
}

/* Read what the broker sent while it speaks in lines; in MODE_PIPE, leave the rest for the client. */
static int relay_read_control(struct relay_conn *c)
{
	for (;;) {
		if (c->mode == MODE_PIPE)
			return 0;
		ssize_t n = read(c->broker, c->ctl + c->ctl_len, sizeof c->ctl - 1 - c->ctl_len);
		if (n == 0)
			return -1; /* refused, or the broker is gone: the connection ends */
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->ctl_len += (size_t)n;
		char *nl;
		while (c->mode != MODE_PIPE && (nl = memchr(c->ctl, '\n', c->ctl_len)) != NULL) {
			*nl = 0;
			if (relay_control(c, c->ctl) < 0)
				return -1;
			size_t used = (size_t)(nl + 1 - c->ctl);
			memmove(c->ctl, nl + 1, c->ctl_len - used);
			c->ctl_len -= used;
		}
		if (c->mode == MODE_PIPE) {
			/* What follows "pipe" is for the client. */
			memcpy(c->down.buf, c->ctl, c->ctl_len);
			c->down.len = c->ctl_len;
			c->ctl_len = 0;
			return 0;
		}
		if (c->ctl_len == sizeof c->ctl - 1)
			return -1;
	}
}

/* The dial finished: the connect's outcome, and for a CONNECT the answer the client waits for. */
static int relay_connected(struct relay_conn *c, short uev)
{
	int err = 0;
	socklen_t el = sizeof err;
	if (!(uev & (POLLOUT | POLLERR | POLLHUP)))
		return 0;
	if (getsockopt(c->target, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err) {
		c->connect_err = err;
		close(c->target);
		c->target = -1;
		return 0;
	}
	c->connected = 1;
	if (c->connect_reply) {
		static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
		memcpy(c->down.buf, ok, sizeof ok - 1);
		c->down.len = sizeof ok - 1;
	}
	return 0;
}

/* The dial failed: a CONNECT gets the broker's kind of 502; a raw connection is closed. */
static void relay_dial_failed(struct relay_conn *c)
{
	if (c->connect_reply && c->client >= 0 && !c->connected) {
		char body[400], msg[600];
		int b = snprintf(body, sizeof body, "ward: could not reach %s:%u (%s).\n", c->host, c->dport,
				 errno_name(c->connect_err));
		int m = snprintf(msg, sizeof msg,
				 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
				 "Content-Length: %d\r\n\r\n%s", b, body);
		if (m > 0 && m < (int)sizeof msg)
			send(c->client, msg, (size_t)m, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
}

/* ---- the loop ------------------------------------------------------------- */

/*
 * Adds c's sockets to the poll set at p[n], only those it wants something
 * from, and returns the new count. Why only those: poll() reports POLLHUP and
 * POLLERR even for events 0, so a client that sent FIN and then RST while its
 * dial is pending woke the loop at once on every turn, a busy spin on the
 * host's CPU, outside the sandbox's cgroup. And poll() fails (EINVAL) when
 * nfds exceeds RLIMIT_NOFILE: -1 placeholders count toward nfds, real fds
 * cannot outnumber the limit.
 */
static int relay_events(struct relay_conn *c, struct pollfd *p, int n)
{
	short cev = 0, bev = 0, uev = 0;
	int direct_up = c->mode == MODE_DIAL && c->passed;
	if (!c->up.eof && half_room(&c->up))
		cev |= POLLIN;
	if (c->down.off < c->down.len && c->client >= 0)
		cev |= POLLOUT;
	if (c->mode == MODE_PIPE) {
		if (!c->down.eof && half_room(&c->down))
			bev |= POLLIN;
	} else
		bev |= POLLIN; /* control lines, or EOF: the broker refused or is gone */
	if (!direct_up && c->up.off < c->up.len && !c->broker_shut)
		bev |= POLLOUT;
	if (c->target >= 0) {
		if (!c->connected)
			uev |= POLLOUT;
		else {
			if (!c->down.eof && half_room(&c->down))
				uev |= POLLIN;
			if (direct_up && c->up.off < c->up.len)
				uev |= POLLOUT;
		}
	}
	int fds[3] = { c->client, c->broker, c->target };
	short evs[3] = { cev, bev, uev };
	for (int k = 0; k < 3; k++) {
		c->slot[k] = -1;
		if (fds[k] < 0 || evs[k] == 0)
			continue;
		c->slot[k] = n;
		p[n++] = (struct pollfd){ .fd = fds[k], .events = evs[k] };
	}
	return n;
}

static short relay_revents(const struct relay_conn *c, const struct pollfd *p, int k)
{
	return c->slot[k] < 0 ? 0 : p[c->slot[k]].revents;
}

/* One connection's turn. Returns 1 when it is over (and must be freed). */
static int relay_step(struct relay_conn *c, struct pollfd *p, int udp, long long now)
{
	short cev = relay_revents(c, p, 0), bev = relay_revents(c, p, 1), uev = relay_revents(c, p, 2);
	int bad = 0;
	if (c->client < 0) { /* a DNS query over UDP */
		bad |= relay_pump(-1, c->broker, &c->up, 0, bev, NULL, NULL);
		bad |= relay_pump(c->broker, -1, &c->down, bev, 0, NULL, NULL);
		if (c->down.eof || bad)
			relay_dns_answer(udp, c);
		return bad || c->down.eof || !half_room(&c->down);
	}
	if (c->mode != MODE_PIPE && (bev & (POLLIN | POLLHUP | POLLERR)))
		bad |= relay_read_control(c) < 0;
	if (bad)
		return 1;
	if (c->mode == MODE_DIAL) {
		if (c->target >= 0 && !c->connected)
			relay_connected(c, uev);
		if (!c->connected && !c->dialing && (c->target < 0 || c->connect_err)) {
			if (!c->connect_err)
				c->connect_err = EIO;
			relay_dial_failed(c);
			return 1;
		}
		if (!c->connected && now >= c->deadline) {
			c->connect_err = ETIMEDOUT;
			relay_dial_failed(c);
			return 1;
		}
	}
	int to_broker = !(c->mode == MODE_DIAL && c->passed);
	if (to_broker) {
		/* Until "pass", the client's bytes are the broker's to check; it shuts when the client does. */
		bad |= relay_pump(c->client, c->broker, &c->up, cev, bev, NULL, NULL);
		if (!bad && c->up.eof && c->up.off == c->up.len && !c->broker_shut) {
			shutdown(c->broker, SHUT_WR);
			c->broker_shut = 1;
		}
	} else if (c->connected) {
		bad |= relay_pump(c->client, c->target, &c->up, cev, uev, NULL, &c->bytes_up);
		if (!bad && c->up.eof && c->up.off == c->up.len && !c->up_shut) {
			shutdown(c->target, SHUT_WR);
			c->up_shut = 1;
		}
	} else if (cev & (POLLIN | POLLHUP)) {
		/* Passed before the dial is through: read on, send when connected. */
		bad |= relay_pump(c->client, -1, &c->up, cev, 0, NULL, NULL);
	}
	if (c->mode == MODE_PIPE)
		bad |= relay_pump(c->broker, c->client, &c->down, bev, cev, NULL, NULL);
	else if (c->mode == MODE_DIAL && c->connected)
		bad |= relay_pump(c->target, c->client, &c->down, uev, cev, &c->bytes_down, NULL);
	else if (c->down.off < c->down.len)
		bad |= relay_pump(-1, c->client, &c->down, 0, cev, NULL, NULL);
	/* A client in error (reset) is over in every mode, once what it sent before is read. */
	if (bad || (cev & (POLLERR | POLLNVAL)))
		return 1;
	/* Half-close: pass on an EOF once its buffered bytes are through. */
	if (c->down.eof && c->down.off == c->down.len && !c->client_shut) {
		shutdown(c->client, SHUT_WR);
		c->client_shut = 1;
	}
	if (c->mode == MODE_PIPE)
		return c->broker_shut && c->client_shut;
	if (c->mode == MODE_DIAL)
		return c->up_shut && c->client_shut;
	return 0;
}

/*
 * The relay's own fds besides its connections': lifeline, pidfd, dialer, UDP,
 * stdio, and what a turn opens for a moment (a "done" or "over" report, a
 * dialed socket for a connection that is gone). The listeners come on top.
 */
#define RELAY_FDS_RESERVE 16
/* client, broker, upstream */
#define RELAY_FDS_PER_CONN 3

static int relay_max_conns = RELAY_MAX_CONNS;

/*
 * How many connections the relay's fds allow: each holds up to three, and a
 * relay out of fds can neither accept nor report. The soft limit is raised
 * towards the hard one first (what the relay needs for RELAY_MAX_CONNS), as
 * a process may. Returns the cap, or -1 when not even one connection fits.
 */
static int relay_conn_cap(int n_tcp)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	rlim_t want = (rlim_t)(RELAY_FDS_RESERVE + n_tcp + RELAY_FDS_PER_CONN * RELAY_MAX_CONNS);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t raised = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		struct rlimit up = { .rlim_cur = raised, .rlim_max = rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = raised;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return RELAY_MAX_CONNS;
	long room = (long)rl.rlim_cur - RELAY_FDS_RESERVE - n_tcp;
	return room < RELAY_FDS_PER_CONN ? -1 : (int)(room / RELAY_FDS_PER_CONN);
}

/* One line to the broker on a connection of its own ("over", "exit"): it writes the record. */
static void relay_tell(const char *line, size_t len)
{
	int fd = relay_dial_broker();
	if (fd < 0)
		return; /* the broker is gone: there is no run left to tell */
	send(fd, line, len, MSG_NOSIGNAL); /* a fresh unix socket takes a short line at once */
	close(fd);
}

/*
 * A connection past the cap: closed at once (the client sees EOF, not a
 * connect that hangs in the backlog) and recorded by the broker as an
 * overload refusal, as its own cap does.
 */
static void relay_refuse(int cl, const char *ip, unsigned port)
{
	close(cl);
	char line[64];
	int n = snprintf(line, sizeof line, "over %s %u\n", ip, port);
	relay_tell(line, (size_t)n);
}

static volatile sig_atomic_t relay_signal;

static void relay_on_signal(int sig)
{
	relay_signal = sig;
}

/*
 * The end: every connection is cut, and the broker gets the counts of those it
 * handed us. `why` set: the relay could not go on (the sandbox loses its network
 * for the rest of the run); after the counts the broker is told why, so Ward
 * reports it instead of the network vanishing unnoticed.
 */
__attribute__((noreturn)) static void relay_exit(struct relay_conn **conns, int n_conns, const char *why, int err)
{
	for (int k = 0; k < n_conns; k++)
		relay_free(conns[k]);
	if (!why)
		_exit(0);
	char line[96];
	int n = snprintf(line, sizeof line, "exit %s %s\n", why, errno_name(err));
	relay_tell(line, (size_t)n);
	_exit(EXIT_LAUNCHER);
}

__attribute__((noreturn)) static void relay_loop(int pidfd, int *tcp, int n_tcp, int udp)
{
	static struct relay_conn *conns[RELAY_MAX_CONNS];
	int n_conns = 0;
	static struct pollfd p[3 + RELAY_MAX_PORTS + 1 + 3 * RELAY_MAX_CONNS];
	/* accept() ran out of something (fds, memory): listen again once a connection ends, not in a spin. */
	int starved = 0;
	/*
	 * SIGTERM (the host's, not the sandbox's: it cannot signal us) ends the relay the
	 * reported way. Blocked but inside ppoll, so it cannot slip in between the check and the wait.
	 */
	sigset_t term, during_poll;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &during_poll);
	sigdelset(&during_poll, SIGTERM);
	struct sigaction sa = { .sa_handler = relay_on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		if (relay_signal)
			relay_exit(conns, n_conns, "SIGTERM", EINTR);
		int n = 0;
		p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN }; /* lifeline */
		p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (dialer_fd >= 0)
			p[n++] = (struct pollfd){ .fd = dialer_fd, .events = POLLIN };
		int dialer_slot = dialer_fd >= 0 ? n - 1 : -1;
		int first_listener = n;
		/* Past the cap, TCP is still accepted, to be refused at once; UDP queries wait in the socket. */
		if (!starved)
			for (int k = 0; k < n_tcp; k++)
				p[n++] = (struct pollfd){ .fd = tcp[k], .events = POLLIN };
		int udp_slot = -1;
		if (n_conns < relay_max_conns) {
			udp_slot = n;
			p[n++] = (struct pollfd){ .fd = udp, .events = POLLIN };
		}
		long long now = now_ms(), wake = -1;
		for (int k = 0; k < n_conns; k++) {
			n = relay_events(conns[k], p, n);
			if (conns[k]->mode == MODE_DIAL && !conns[k]->connected) {
				long long left = conns[k]->deadline > now ? conns[k]->deadline - now : 0;
				if (wake < 0 || left < wake)
					wake = left;
			}
		}
		struct timespec ts = { .tv_sec = (wake + 1) / 1000, .tv_nsec = ((wake + 1) % 1000) * 1000000 };
		if (ppoll(p, (nfds_t)n, wake < 0 ? NULL : &ts, &during_poll) < 0) {
			if (errno == EINTR)
				continue;
			relay_exit(conns, n_conns, "poll", errno);
		}
		if (p[0].revents) {
			char ch;
			ssize_t r = read(0, &ch, 1);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
				relay_exit(conns, n_conns, NULL, 0); /* Ward is gone or done */
		}
		if (p[1].revents)
			relay_exit(conns, n_conns, NULL, 0); /* the sandbox init exited */
		if (dialer_slot >= 0 && p[dialer_slot].revents)
			relay_dialer_reply(conns, n_conns);

		/* Existing connections first: their slots index this turn's poll set. */
		now = now_ms();
		for (int k = n_conns - 1; k >= 0; k--) {
			if (relay_step(conns[k], p, udp, now)) {
				relay_free(conns[k]);
				conns[k] = conns[--n_conns];
				starved = 0;
			}
		}

		for (int k = 0; !starved && k < n_tcp; k++) {
			if (!(p[first_listener + k].revents & POLLIN))
				continue;
			struct sockaddr_in local;
			socklen_t ll = sizeof local;
			int cl = accept4(tcp[k], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (cl < 0) {
				if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
					starved = 1;
				continue;
			}
			/* We forward what we read at once; Nagle would hold a small write for an ACK (~40 ms). */
			int one = 1;
			setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			char head[64];
			if (getsockname(cl, (struct sockaddr *)&local, &ll) < 0 ||
			    local.sin_family != AF_INET) {
				close(cl);
				continue;
			}
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &local.sin_addr, ip, sizeof ip);
			if (n_conns >= relay_max_conns) {
				relay_refuse(cl, ip, ntohs(local.sin_port));
				continue;
			}
			int can_dial = dialer_fd >= 0;
			int hl = snprintf(head, sizeof head, "tcp %s %u%s\n", ip, ntohs(local.sin_port),
					  can_dial ? " dial" : "");
			struct relay_conn *c = relay_new_conn(cl, head, (size_t)hl, can_dial);
			if (!c) {
				close(cl); /* no broker: the connection fails, nothing leaks */
				continue;
			}
			conns[n_conns++] = c;
		}
		if (udp_slot >= 0 && n_conns < relay_max_conns && (p[udp_slot].revents & POLLIN)) {
			unsigned char q[2 + 4 + 1500];
			struct sockaddr_in peer;
			socklen_t pl = sizeof peer;
			memcpy(q, "dns\n", 4);
			ssize_t m = recvfrom(udp, q + 6, sizeof q - 6, 0, (struct sockaddr *)&peer, &pl);
			if (m > 0 && pl == sizeof peer) {
				q[4] = (unsigned char)(m >> 8);
				q[5] = (unsigned char)m;
				struct relay_conn *c = relay_new_conn(-1, (const char *)q, 6 + (size_t)m, 0);
				if (c) {
					c->peer = peer;
					c->up.eof = 1;
					c->broker_shut = 1;
					conns[n_conns++] = c;
				}
			}
		}
	}
}

/* Drop every capability we hold in the sandbox's user namespace: binding is done. */
static int drop_all_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	return (int)syscall(SYS_capset, &h, d);
}

/*
 * In the relay child: join the sandbox's namespaces, listen, tell the
 * watchdog's caller (bwrap, blocked on --block-fd) to go on. On any failure
 * the sandbox init is killed before bwrap is released: the command never
 * starts without the network the policy asked for.
 */
/*
 * Join the sandbox's network namespace, with the capabilities its *owner*
 * user namespace grants. That owner is not always the user namespace the
 * init is in when we look: an unprivileged bwrap that mounts devpts first
 * maps uid 0, builds the sandbox, then moves into a second, nested user
 * namespace with the caller's uid. Capabilities in that nested one do not
 * reach the network namespace (binding port 53 failed with EACCES about one
 * launch in seven), so we ask the network namespace who owns it
 * (NS_GET_USERNS) and join that. Returns 0 or an errno; *step names the call.
 */
static int join_sandbox_net(int pidfd, pid_t init_pid, const char **step)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/ns/net", (long)init_pid);
	*step = "relay-open-netns";
	int netfd = open(path, O_RDONLY | O_CLOEXEC);
	if (netfd < 0)
		return errno;
	/* The pid may have been reused between bwrap's report and the open: the pidfd says. */
	struct pollfd gone = { .fd = pidfd, .events = POLLIN };
	if (poll(&gone, 1, 0) != 0) {
		close(netfd);
		return ESRCH;
	}
	*step = "relay-owner-userns";
	int userfd = ioctl(netfd, NS_GET_USERNS);
	if (userfd < 0) {
		int err = errno;
		close(netfd);
		return err;
	}
	struct stat mine, owner;
	int same = stat("/proc/self/ns/user", &mine) == 0 && fstat(userfd, &owner) == 0 &&
		   mine.st_ino == owner.st_ino && mine.st_dev == owner.st_dev;
	*step = "relay-setns";
	if (!same && syscall(SYS_setns, userfd, CLONE_NEWUSER) < 0) {
		int err = errno;
		close(userfd);
		close(netfd);
		return err;
	}
	close(userfd);
	if (syscall(SYS_setns, netfd, CLONE_NEWNET) < 0) {
		int err = errno;
		close(netfd);
		return err;
	}
	close(netfd);
	return 0;
}

__attribute__((noreturn)) static void run_relay(int pidfd, pid_t init_pid, int block_fd)
{
	stage = "relay";
	prctl(PR_SET_NAME, "ward-relay", 0, 0, 0);
	char dir[PATH_MAX];
	size_t dir_len = (size_t)(relay_name - relay_socket);
	memcpy(dir, relay_socket, dir_len);
	dir[dir_len > 1 ? dir_len - 1 : dir_len] = 0; /* without the '/' before the name, unless it is the root */
	if (chdir(dir) < 0) {
		int err = errno;
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
		_exit(report_failure("relay-chdir", err, dir, "the relay reaches the broker's socket from its directory"));
	}
	/*
	 * The dialer first, while we are still in the host's network namespace.
	 * Without it the relay still works, the slower way (the broker carries
	 * every byte): so its failure is not the sandbox's.
	 */
	dialer_fd = start_dialer();
	const char *step = "relay-setns";
	int err = join_sandbox_net(pidfd, init_pid, &step);
	if (err) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
		_exit(report_failure(step, err, NULL,
				     "the relay joins the sandbox's network namespace (and the user namespace that owns it)"));
	}
	/* Nothing in the sandbox may trace or dump this process (it is in their user namespace now). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int tcp[RELAY_MAX_PORTS + 1], n_tcp = 0;
	for (int k = 0; k <= n_relay_ports; k++) {
		int port = k < n_relay_ports ? relay_ports[k] : 53;
		int dup = 0;
		for (int j = 0; j < k; j++)
			dup |= relay_ports[j] == port;
		if (dup)
			continue;
		int fd = relay_listen(SOCK_STREAM, port);
		if (fd < 0) {
			int err = errno;
			char what[32];
			snprintf(what, sizeof what, "tcp port %d", port);
			syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
			_exit(report_failure("relay-listen", err, what, NULL));
		}
		tcp[n_tcp++] = fd;
	}
	int udp = relay_listen(SOCK_DGRAM, 53);
	if (udp < 0 || drop_all_caps() < 0) {
		int err = errno;
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
		_exit(report_failure(udp < 0 ? "relay-listen" : "relay-capset", err,
				     udp < 0 ? "udp port 53" : NULL, NULL));
	}
	/* Step "relay-nofile": a relay that cannot hold one connection would fail every one. */
	relay_max_conns = relay_conn_cap(n_tcp);
	if (relay_max_conns < 1) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
		_exit(report_failure("relay-nofile", EMFILE, "RLIMIT_NOFILE leaves the relay no room for a connection",
				     "raise Ward's open-file limit (ulimit -n; the relay needs 3 per connection, 16 and one per allowed port besides)"));
	}
	/* Ready: release bwrap, and close the status fd so Ward's reader can reach EOF. */
	if (write_all(block_fd, "1", 1) < 0) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
		_exit(EXIT_LAUNCHER);
	}
	close(block_fd);
	close(status_fd);
	status_fd = -1;
	relay_loop(pidfd, tcp, n_tcp, udp);
}

/* ------------------------------------------------------------------------ */
/* user namespace limits                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Inotify and fanotify instances and watches are counted per user, at every
 * level of the user namespace chain: the sandbox's use is also charged to the
 * caller's uid on the host, against the host's limit (128 inotify instances
 * by default). A new user namespace's own limits start at INT_MAX, so without
 * this a sandbox could take every instance the caller's uid has, and the
 * caller's other processes (every root daemon, for a root caller) would get
 * EMFILE for as long as it held them. The limits of the sandbox's user
 * namespace are its /proc/sys/user/max_* seen from inside it, writable with
 * CAP_SYS_RESOURCE there: this process, the namespace's owner, gets that by
 * joining it. Nothing in the sandbox has it (bwrap drops every capability),
 * so the sandbox cannot raise them back.
 */
#define USERNS_MAX_LIMITS 8
static const char *const userns_limit_names[] = { "max_inotify_instances", "max_inotify_watches",
						  "max_fanotify_groups", "max_fanotify_marks" };
static const char *userns_limits[USERNS_MAX_LIMITS]; /* "NAME=VALUE", validated */
static int n_userns_limits;

static int join_sandbox_net(int pidfd, pid_t init_pid, const char **step);

/* In a child that joins the namespace and writes each limit. 0, or -1 once the failure is reported. */
static int set_userns_limits(int pidfd, pid_t init_pid)
{
	static const char hint[] = "Ward bounds the sandbox's inotify and fanotify use by joining its user namespace (setns, as its owner) and writing /proc/sys/user there; a host that forbids this (a seccomp or AppArmor profile refusing setns) must allow it for Ward's launcher";
	signal(SIGCHLD, SIG_DFL); /* the watchdog ignores it otherwise: we need this child's status */
	pid_t child = fork();
	if (child == 0) {
		const char *step = "userns-setns";
		int err = join_sandbox_net(pidfd, init_pid, &step);
		if (err)
			_exit(report_failure("userns-limits", err, step, hint));
		for (int k = 0; k < n_userns_limits; k++) {
			const char *eq = strchr(userns_limits[k], '=');
			char path[64];
			snprintf(path, sizeof path, "/proc/sys/user/%.*s", (int)(eq - userns_limits[k]),
				 userns_limits[k]);
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write_all(fd, eq + 1, strlen(eq + 1)) < 0 || close(fd) < 0)
				_exit(report_failure("userns-limits", errno, userns_limits[k], hint));
		}
		_exit(0);
	}
	int st = 0, err = errno;
	if (child > 0)
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
	signal(SIGCHLD, SIG_IGN);
	if (child < 0 || !WIFEXITED(st)) {
		report_failure("userns-limits", child < 0 ? err : ECHILD, child < 0 ? "fork" : "the helper was killed", NULL);
		return -1;
	}
	return WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* watchdog                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Why a watchdog: Ward (the Node process) may be SIGKILLed at any moment.
 * bwrap --die-with-parent covers most of that, but not all: a process's
 * parent-death signal is cleared by fork, and bwrap's sandbox init (pid 1 of
 * the new pid namespace) sets its own only some time after it is cloned.
 * If Ward dies inside that window, the bwrap monitor dies with it and the
 * init, orphaned, goes on to start the command: the sandbox keeps running
 * with nobody recording it. bwrap has no check for this.
 *
 * So "outer" leaves behind one small process that is outside the sandbox
 * (the agent cannot see or signal it: other pid namespace, Landlock signal
 * scope), outside the sandbox's cgroup (forked before the join, so it never
 * keeps the cgroup busy), and holding nothing but two fds:
 *   fd 0: its end of the lifeline, a socket whose other end only Ward holds.
 *         EOF on it means Ward closed it or died.
 *   fd 1: the read end of a pipe that bwrap's --info-fd writes to: bwrap
 *         reports the sandbox init's pid there ({"child-pid": N}).
 * On lifeline EOF it SIGKILLs the sandbox init (which takes the whole pid
 * namespace down) and every process still in the sandbox's cgroups, then
 * exits. It also exits, doing nothing, as soon as the init is gone. Either
 * way, if Ward itself has died, it removes the run's cgroups (remove_cgroups).
 *
 * If bwrap died before reporting the init's pid (in an unprivileged run the
 * orphaned init then waits forever for the uid map its parent never wrote),
 * the init is found as the holder of Ward's status socket, which bwrap
 * passes down and only the inner launcher closes.
 */
static int cgroup_is_empty_after_kill(const char *procs_file)
{
	/* v2: cgroup.kill beside cgroup.procs kills the whole subtree at once. */
	const char *base = strrchr(procs_file, '/');
	if (base && strcmp(base + 1, "cgroup.procs") == 0) {
		char kill_file[PATH_MAX];
		int n = snprintf(kill_file, sizeof kill_file, "%.*s/cgroup.kill",
				 (int)(base - procs_file), procs_file);
		if (n > 0 && (size_t)n < sizeof kill_file) {
			int fd = open(kill_file, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				(void)!write(fd, "1", 1);
				close(fd);
			}
		}
	}
	/* v1 (and v2 without cgroup.kill): kill each listed task; report whether any was left. */
	FILE *f = fopen(procs_file, "re");
	if (!f)
		return 1; /* removed: Ward cleaned up, so it is empty */
	int empty = 1;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
			empty = 0;
	}
	fclose(f);
	return empty;
}

/*
 * Kill every process that holds the socket with this inode (Ward's status
 * socket: only bwrap, its init and the inner launcher before its exec hold
 * it). For the case where bwrap never told us the init's pid.
 */
static void kill_holders_of_socket(unsigned long ino)
{
	char want[64], link[64], path[64];
	snprintf(want, sizeof want, "socket:[%lu]", ino);
	DIR *proc = opendir("/proc");
	if (!proc)
		return;
	struct dirent *e;
	while ((e = readdir(proc)) != NULL) {
		uint64_t pid;
		if (parse_u64(e->d_name, &pid) < 0 || pid == (uint64_t)getpid())
			continue;
		snprintf(path, sizeof path, "/proc/%llu/fd", (unsigned long long)pid);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		struct dirent *f;
		while ((f = readdir(fds)) != NULL) {
			uint64_t fd;
			if (parse_u64(f->d_name, &fd) < 0)
				continue;
			snprintf(path, sizeof path, "/proc/%llu/fd/%llu", (unsigned long long)pid,
				 (unsigned long long)fd);
			ssize_t n = readlink(path, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (strcmp(link, want) == 0) {
				kill((pid_t)pid, SIGKILL);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
}

/* The "child-pid" bwrap's --info-fd reports, or 0 when it has not (yet). */
static pid_t child_pid_of(const char *info)
{
	const char *at = strstr(info, "\"child-pid\"");
	if (at && (at = strchr(at, ':')))
		return (pid_t)strtol(at + 1, NULL, 10);
	return 0;
}

/* Ward's pid (the outer launcher's parent), taken before the watchdog forks. */
static pid_t ward_pid;

/*
 * Whether Ward (the process that spawned us) has exited, waiting up to `ms` for it: the
 * lifeline's EOF alone does not say, since a Ward that is done closes it too. A Ward killed
 * with SIGKILL is seen exited a moment after its lifeline closes (its threads exit one by
 * one). -1 for `wardfd`: unknown (no pidfd), so no.
 */
static int ward_gone(int wardfd, int ms)
{
	struct pollfd w = { .fd = wardfd, .events = POLLIN };
	return wardfd >= 0 && poll(&w, 1, ms) > 0;
}

/*
 * Whether the lifeline (fd 0) reaches EOF within `ms`. When a sandbox init dies with Ward
 * (bwrap's --die-with-parent: the signal comes as soon as the thread that spawned bwrap
 * exits), Ward's other threads may still hold the lifeline open a moment longer.
 */
static int lifeline_closes(int ms)
{
	struct pollfd l = { .fd = 0, .events = POLLIN };
	char c;
	return poll(&l, 1, ms) > 0 && read(0, &c, 1) == 0;
}

static void watchdog_fire(int pidfd, pid_t init_pid, unsigned long status_ino, char **cgroup_files,
			  int n_cgroup)
{
	if (pidfd >= 0)
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0U);
	else if (init_pid > 0)
		kill(init_pid, SIGKILL);
	else if (status_ino)
		kill_holders_of_socket(status_ino);
	/* The pid namespace is the containment; the cgroup is the second net. A few rounds
	 * because a fork may land between reading the list and the kill. */
	for (int round = 0; round < 50; round++) {
		int empty = 1;
		for (int k = 0; k < n_cgroup; k++)
			empty &= cgroup_is_empty_after_kill(cgroup_files[k]);
		if (empty)
			break;
		usleep(10000);
	}
}

/*
 * Ward removes the run's cgroups when a run ends, after reading what they recorded (an OOM
 * kill, peak memory); a Ward that died cannot, and the next run's sweep only comes if there is
 * a next run. So they are removed here, and only once Ward is known dead (ward_gone). The
 * killed tasks leave them once reaped (EBUSY until then: bwrap, orphaned by Ward's death, is
 * reaped by the host's init, which on some hosts takes seconds).
 */
static void remove_cgroups(char **cgroup_files, int n_cgroup)
{
	for (int k = 0; k < n_cgroup; k++) {
		const char *slash = strrchr(cgroup_files[k], '/');
		char dir[PATH_MAX];
		if (!slash || slash == cgroup_files[k] ||
		    (size_t)(slash - cgroup_files[k]) >= sizeof dir)
			continue;
		memcpy(dir, cgroup_files[k], (size_t)(slash - cgroup_files[k]));
		dir[slash - cgroup_files[k]] = 0;
		for (int round = 0; round < 300 && rmdir(dir) < 0 && errno == EBUSY; round++)
			usleep(round < 50 ? 10000 : 100000);
	}
}

/*
 * The sandbox init is gone on its own (its pidfd readable, or no such pid any more). If it went
 * because Ward died, nothing else will clean up: the lifeline closes (Ward's last thread gone)
 * and Ward's pidfd reads exited, each within 200 ms; then the rest of the sandbox is killed and
 * the run's cgroups removed. A Ward that is alive does both itself.
 */
static void if_died_with_ward(int wardfd, int pidfd, pid_t init_pid, unsigned long status_ino,
			      char **cgroup_files, int n_cgroup)
{
	if (lifeline_closes(200) && ward_gone(wardfd, 200)) {
		watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
		remove_cgroups(cgroup_files, n_cgroup);
	}
}

__attribute__((noreturn)) static void run_watchdog(int lifeline, int info, int block,
						   char **cgroup_files, int n_cgroup)
{
	struct stat st;
	unsigned long status_ino = status_fd >= 0 && fstat(status_fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
	/*
	 * Keep only what we need, at fixed numbers, so Ward's output pipes never
	 * wait on us: 0 lifeline, 1 info; when bwrap waits for us (a relay, or
	 * user namespace limits to set) also 3 the status fd (for a failure
	 * report) and 4 the write end of bwrap's --block-fd.
	 */
	int blocks = block >= 0;
	int want[4] = { lifeline, info, blocks ? status_fd : -1, blocks ? block : -1 };
	int high[4];
	for (int k = 0; k < 4; k++)
		high[k] = want[k] < 0 ? -1 : fcntl(want[k], F_DUPFD_CLOEXEC, 100);
	if (high[0] < 0 || high[1] < 0 || dup2(high[0], 0) < 0 || dup2(high[1], 1) < 0)
		_exit(EXIT_LAUNCHER);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0 && null != 2) {
		dup2(null, 2);
		close(null);
	}
	static const int relay_fds[2] = { 3, 4 };
	if (blocks) {
		if (high[2] < 0 || high[3] < 0 || dup2(high[2], 3) < 0 || dup2(high[3], 4) < 0)
			_exit(EXIT_LAUNCHER);
		status_fd = 3;
	}
	if (close_fds_except(relay_fds, blocks ? 2 : 0) < 0)
		for (int fd = blocks ? 5 : 3; fd < 1024; fd++)
			close(fd);
	int wardfd = (int)syscall(SYS_pidfd_open, ward_pid, 0U);
	/* The relay is our child; nobody needs its exit status. */
	signal(SIGCHLD, SIG_IGN);
	/* A report on the status socket, or the release of bwrap, after Ward or bwrap died must fail
	 * with EPIPE, not kill us: the cleanup of a dead Ward's sandbox is still to come. */
	signal(SIGPIPE, SIG_IGN);
	/* Own session: the terminal's ^C for the command's process group is not ours. */
	setsid();
	prctl(PR_SET_NAME, "ward-watchdog", 0, 0, 0);

	char buf[512];
	size_t used = 0;
	int info_open = 1, pidfd = -1;
	pid_t init_pid = 0;
	for (;;) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN },
				       { .fd = info_open ? 1 : pidfd, .events = POLLIN } };
		int n = poll(p, p[1].fd >= 0 ? 2 : 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			char c;
			ssize_t r = read(0, &c, 1);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				/* Ward is gone or done. If bwrap has not told us the init yet,
				 * wait briefly for it: it writes right after the clone. */
				if (info_open && init_pid == 0) {
					struct pollfd q = { .fd = 1, .events = POLLIN };
					if (poll(&q, 1, 200) > 0) {
						ssize_t m = read(1, buf + used, sizeof buf - 1 - used);
						if (m > 0)
							used += (size_t)m;
						buf[used] = 0;
						init_pid = child_pid_of(buf);
					}
				}
				watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
				if (ward_gone(wardfd, 200))
					remove_cgroups(cgroup_files, n_cgroup);
				_exit(0);
			}
		}
		if (p[1].fd >= 0 && p[1].revents) {
			if (!info_open) {
				/* The pidfd is readable: the sandbox init exited. With Ward? */
				if_died_with_ward(wardfd, pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
				_exit(0);
			}
			ssize_t m = read(1, buf + used, sizeof buf - 1 - used);
			if (m > 0) {
				used += (size_t)m;
				if (used < sizeof buf - 1)
					continue;
			} else if (m < 0 && errno == EINTR) {
				continue;
			}
			/* EOF (or a full buffer): bwrap has said all it will say. */
			buf[used] = 0;
			info_open = 0;
			close(1);
			init_pid = child_pid_of(buf);
			if (init_pid > 0) {
				pidfd = (int)syscall(SYS_pidfd_open, init_pid, 0U);
				if (pidfd < 0 && errno == ESRCH) {
					/* Already gone. With Ward? */
					if_died_with_ward(wardfd, -1, 0, 0, cgroup_files, n_cgroup);
					_exit(0);
				}
			}
			if (blocks) {
				/*
				 * The limits and the relay need the init's pidfd to join its
				 * namespaces; without it, or if the limits cannot be set, the
				 * command must not start: kill whatever bwrap started. Then go on
				 * watching as usual (the init's exit, the lifeline), so that a Ward
				 * that died meanwhile (the usual reason the init is gone this
				 * early) still gets its sandbox's cgroups removed.
				 */
				int failed = pidfd < 0;
				if (failed)
					report_failure(relay_socket ? "relay" : "userns-limits", errno ? errno : ESRCH, "no sandbox init to attach to", NULL);
				else if (n_userns_limits > 0)
					failed = set_userns_limits(pidfd, init_pid) < 0;
				if (failed) {
					watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
					close(3);
					close(4);
					status_fd = -1;
					continue;
				}
			}
			if (blocks && !relay_socket) {
				/* Limits set: let bwrap go on, and let Ward's reader reach EOF. A
				 * bwrap that is gone (EPIPE) takes its sandbox with it; watch on. */
				if (write_all(4, "1", 1) < 0)
					watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
				close(3);
				close(4);
				status_fd = -1;
			}
			if (relay_socket) {
				pid_t relay = fork();
				if (relay == 0)
					run_relay(pidfd, init_pid, 4);
				if (relay < 0) {
					report_failure("relay", errno, "fork", NULL);
					watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
					_exit(EXIT_LAUNCHER);
				}
				/* Only the relay holds these now: its write or exit releases bwrap and Ward's reader. */
				close(3);
				close(4);
				status_fd = -1;
			}
			/* No pid: bwrap failed before the clone, or died before telling us
			 * (then its init may be stuck or running). Keep watching the lifeline. */
		}
	}
	watchdog_fire(pidfd, init_pid, status_ino, cgroup_files, n_cgroup);
	if (ward_gone(wardfd, 200))
		remove_cgroups(cgroup_files, n_cgroup);
	_exit(0);
}

/*
 * Start the watchdog as a grandchild (reparented at once, so bwrap never sees
 * an unknown child), and put the write end of its info pipe at fd info_fd
 * for bwrap's --info-fd.
 */
/* A close-on-exec pipe whose ends sit at fd 100 or above, clear of the fd numbers we dup2 onto. */
static void high_pipe(int p[2])
{
	int low[2];
	if (pipe2(low, O_CLOEXEC) < 0)
		fail("watchdog", errno, "pipe", NULL);
	for (int k = 0; k < 2; k++) {
		p[k] = fcntl(low[k], F_DUPFD_CLOEXEC, 100);
		if (p[k] < 0)
			fail("watchdog", errno, "fcntl", NULL);
		close(low[k]);
	}
}

static void start_watchdog(int lifeline, int info_fd, int block_fd, char **cgroup_files, int n_cgroup)
{
	int p[2], b[2] = { -1, -1 };
	high_pipe(p);
	if (block_fd >= 0)
		high_pipe(b);
	ward_pid = getppid();
	pid_t child = fork();
	if (child < 0)
		fail("watchdog", errno, "fork", NULL);
	if (child == 0) {
		pid_t grandchild = fork();
		if (grandchild == 0) {
			close(p[1]);
			if (b[0] >= 0)
				close(b[0]);
			run_watchdog(lifeline, p[0], b[1], cgroup_files, n_cgroup);
		}
		_exit(grandchild < 0 ? EXIT_LAUNCHER : 0);
	}
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			fail("watchdog", errno, "waitpid", NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("watchdog", EAGAIN, "fork", NULL);
	close(p[0]);
	if (dup2(p[1], info_fd) < 0) /* dup2 leaves the new fd inheritable */
		fail("watchdog", errno, "dup2", NULL);
	close(p[1]);
	if (block_fd >= 0) {
		/* bwrap waits on the read end (--block-fd) until the limits are set and the relay listens. */
		close(b[1]);
		if (dup2(b[0], block_fd) < 0)
			fail("watchdog", errno, "dup2", NULL);
		close(b[0]);
	}
	/* bwrap and the sandbox must not hold the lifeline. */
	int flags = fcntl(lifeline, F_GETFD);
	if (flags < 0 || fcntl(lifeline, F_SETFD, flags | FD_CLOEXEC) < 0)
		fail("watchdog", errno, "lifeline", NULL);
}

/* ------------------------------------------------------------------------ */
/* outer                                                                     */
/* ------------------------------------------------------------------------ */

static int run_outer(int argc, char **argv)
{
	int i, lifeline = -1, info_fd = -1, block_fd = -1, key_fd = -1, n_files = 0, keep[12], n_keep = 0;
	stage = "outer";

	/* Pass 1: validate every option before doing anything. */
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--cgroup-procs") == 0) {
			const char *file = option_value(argc, argv, &i);
			if (file[0] != '/')
				usage_error("option --cgroup-procs: '%s' is not an absolute path", file);
			if (++n_files > 64)
				usage_error("option --cgroup-procs: more than 64 files");
		} else if (strcmp(argv[i], "--status-fd") == 0) {
			parse_status_fd(argv[i], option_value(argc, argv, &i), 0);
		} else if (strcmp(argv[i], "--relay") == 0) {
			const char *path = option_value(argc, argv, &i);
			const char *name = strrchr(path, '/');
			if (path[0] != '/' || strlen(path) >= PATH_MAX || !name[1] ||
			    strlen(name + 1) >= sizeof(((struct sockaddr_un *)0)->sun_path))
				usage_error("option --relay: '%s' is not an absolute socket path (its name under 108 bytes)", path);
			relay_socket = path;
			relay_name = name + 1;
		} else if (strcmp(argv[i], "--relay-key-fd") == 0) {
			const char *value = option_value(argc, argv, &i);
			uint64_t v;
			if (parse_u64(value, &v) < 0 || v < 3 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
				usage_error("option --relay-key-fd: '%s' is not an open fd >= 3", value);
			key_fd = (int)v;
		} else if (strcmp(argv[i], "--relay-port") == 0) {
			const char *value = option_value(argc, argv, &i);
			uint64_t v;
			if (parse_u64(value, &v) < 0 || v < 1 || v > 65535)
				usage_error("option --relay-port: '%s' is not a port number", value);
			if (n_relay_ports == RELAY_MAX_PORTS)
				usage_error("option --relay-port: at most %d ports", RELAY_MAX_PORTS);
			relay_ports[n_relay_ports++] = (int)v;
		} else if (strcmp(argv[i], "--userns-limit") == 0) {
			const char *value = option_value(argc, argv, &i), *eq = strchr(value, '=');
			uint64_t v;
			int known = 0;
			for (size_t k = 0; eq && k < sizeof userns_limit_names / sizeof *userns_limit_names; k++)
				known |= strlen(userns_limit_names[k]) == (size_t)(eq - value) &&
					 strncmp(value, userns_limit_names[k], (size_t)(eq - value)) == 0;
			if (!known || parse_u64(eq + 1, &v) < 0 || v > INT_MAX)
				usage_error("option --userns-limit: '%s' is not NAME=N with NAME one of max_inotify_instances max_inotify_watches max_fanotify_groups max_fanotify_marks", value);
			if (n_userns_limits == USERNS_MAX_LIMITS)
				usage_error("option --userns-limit: at most %d", USERNS_MAX_LIMITS);
			userns_limits[n_userns_limits++] = value;
		} else if (strcmp(argv[i], "--block-fd") == 0) {
			const char *value = option_value(argc, argv, &i);
			uint64_t v;
			if (parse_u64(value, &v) < 0 || v < 3 || v > INT_MAX || fcntl((int)v, F_GETFD) >= 0)
				usage_error("option --block-fd: '%s' is not a free fd number >= 3", value);
			block_fd = (int)v;
		} else if (strcmp(argv[i], "--keep-fd") == 0) {
			const char *value = option_value(argc, argv, &i);
			uint64_t v;
			if (parse_u64(value, &v) < 0 || v < 3 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
				usage_error("option --keep-fd: '%s' is not an open fd >= 3", value);
			if (n_keep == 8)
				usage_error("option --keep-fd: at most 8");
			keep[n_keep++] = (int)v;
		} else if (strcmp(argv[i], "--lifeline-fd") == 0 || strcmp(argv[i], "--info-fd") == 0) {
			const char *opt = argv[i], *value = option_value(argc, argv, &i);
			uint64_t v;
			if (parse_u64(value, &v) < 0 || v < 3 || v > INT_MAX)
				usage_error("option %s: '%s' is not a file descriptor number >= 3", opt, value);
			int is_lifeline = opt[2] == 'l';
			if ((is_lifeline ? lifeline : info_fd) >= 0)
				usage_error("option %s given twice", opt);
			if (is_lifeline && fcntl((int)v, F_GETFD) < 0)
				usage_error("option %s: fd %s is not open", opt, value);
			if (!is_lifeline && fcntl((int)v, F_GETFD) >= 0)
				usage_error("option %s: fd %s is already in use", opt, value);
			*(is_lifeline ? &lifeline : &info_fd) = (int)v;
		} else if (argv[i][0] != '-') {
			usage_error("outer: unexpected argument '%s' (the program goes after '--')",
				    argv[i]);
		} else {
			usage_error("outer: unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc)
		usage_error("outer: missing '--' before the program");
	char **prog = argv + i + 1;
	if (!prog[0])
		usage_error("outer: missing program after '--'");
	if ((lifeline < 0) != (info_fd < 0))
		usage_error("outer: --lifeline-fd and --info-fd go together");
	if (relay_socket && (block_fd < 0 || lifeline < 0))
		usage_error("outer: --relay needs --block-fd and --lifeline-fd");
	if (n_userns_limits > 0 && (block_fd < 0 || lifeline < 0))
		usage_error("outer: --userns-limit needs --block-fd and --lifeline-fd");
	if (block_fd >= 0 && !relay_socket && n_userns_limits == 0)
		usage_error("outer: --block-fd without --relay or --userns-limit");
	if (!relay_socket && n_relay_ports > 0)
		usage_error("outer: --relay-port without --relay");
	if ((relay_socket != NULL) != (key_fd >= 0))
		usage_error("outer: --relay and --relay-key-fd go together");

	/*
	 * Step "relay-key": the key the relay proves itself to the broker with.
	 * Read now, before anything is forked, and closed: only our memory (and
	 * so the watchdog's, the relay's and the dialer's) keeps it; bwrap's exec
	 * drops it, and the sandbox never gets the fd.
	 */
	if (key_fd >= 0) {
		size_t got = 0;
		while (got < RELAY_KEY_LEN) {
			ssize_t n = read(key_fd, relay_key + got, RELAY_KEY_LEN - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				fail("relay-key", n < 0 ? errno : EIO, "reading the relay's key", NULL);
			got += (size_t)n;
		}
		close(key_fd);
	}

	/*
	 * Step "parent-death": die with Ward. bwrap sets the same signal for
	 * itself, but only after it has started; set here, it already holds
	 * from our exec on (it survives exec of a binary that is not set-id).
	 * If Ward died before the prctl, our parent has changed: stop now.
	 */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail("parent-death", errno, NULL, NULL);
	if (getppid() != parent)
		_exit(EXIT_LAUNCHER);

	/* Step "watchdog": before the cgroup join, so that it stays outside the cgroup. */
	char *cgroup_files[64];
	int n_cgroup = 0;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i += 2)
		if (strcmp(argv[i], "--cgroup-procs") == 0 && n_cgroup < 64)
			cgroup_files[n_cgroup++] = argv[i + 1];
	if (lifeline >= 0)
		start_watchdog(lifeline, info_fd, block_fd, cgroup_files, n_cgroup);

	/*
	 * Step "cgroup-join": move this process into each cgroup (v1: one file
	 * per controller hierarchy; v2: one cgroup.procs). It must happen here,
	 * before bwrap: bwrap's cgroup namespace makes the cgroup we are in the
	 * root of the sandbox's view, and everything bwrap forks inherits it.
	 * To a cgroup.procs file we write our decimal pid. To a v1 "tasks" file
	 * we write "0", "the calling thread": we are single-threaded, so it moves
	 * the whole process, and the kernel then skips the global threadgroup
	 * lock that a process move takes (its writer waits out an RCU grace
	 * period: 6-25 ms per launch on a 2-core VM, against 0.1 ms).
	 */
	char pid[24];
	int pidlen = snprintf(pid, sizeof pid, "%ld", (long)getpid());
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--cgroup-procs") != 0) {
			i++; /* every other option's value */
			continue;
		}
		const char *file = argv[++i];
		int fd = open(file, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			fail("cgroup-join", errno, file, NULL);
		const char *base = strrchr(file, '/');
		int is_tasks = base && strcmp(base + 1, "tasks") == 0;
		if (write_all(fd, is_tasks ? "0" : pid, is_tasks ? 1 : (size_t)pidlen) < 0) {
			int err = errno;
			close(fd);
			fail("cgroup-join", err, file, NULL);
		}
		if (close(fd) < 0)
			fail("cgroup-join", errno, file, NULL);
	}

	/*
	 * Step "close-fds": bwrap gets 0-2, the status fd, the info fd and the fds
	 * named by --keep-fd (its --args and --seccomp), nothing else: Ward may
	 * have inherited fds it does not know about, and bwrap passes every
	 * open fd down to the sandbox's init.
	 */
	if (status_fd >= 0)
		keep[n_keep++] = status_fd;
	if (info_fd >= 0)
		keep[n_keep++] = info_fd;
	if (block_fd >= 0)
		keep[n_keep++] = block_fd;
	if (close_fds_except(keep, n_keep) < 0)
		fail("close-fds", errno, NULL, NULL);

	/* Step "exec": become bwrap (or whatever the caller runs next). */
	execvp(prog[0], prog);
	fail("exec", errno, prog[0], NULL);
}

/* ------------------------------------------------------------------------ */
/* inner                                                                     */
/* ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "cpu", RLIMIT_CPU },	   { "fsize", RLIMIT_FSIZE }, { "nofile", RLIMIT_NOFILE },
	{ "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },	      { "data", RLIMIT_DATA },
	{ "core", RLIMIT_CORE },   { "stack", RLIMIT_STACK }, { "memlock", RLIMIT_MEMLOCK },
	{ "sigpending", RLIMIT_SIGPENDING }, { "msgqueue", RLIMIT_MSGQUEUE },
};
#define N_RLIMITS (sizeof rlimit_names / sizeof rlimit_names[0])

struct rlimit_opt {
	const char *arg; /* "nofile=16:16", for reports */
	int index; /* into rlimit_names */
	struct rlimit value;
};

/* Rights letters of --ll. */
#define RIGHT_R 1u
#define RIGHT_W 2u
#define RIGHT_X 4u
#define RIGHT_D 8u
#define RIGHT_NOSOCK 16u /* 'n': w without MAKE_SOCK (no unix socket bound to a path) */

struct ll_rule {
	const char *path;
	unsigned rights; /* RIGHT_* */
	int skipped; /* the path does not exist */
};

enum ll_mode { LL_UNSET, LL_REQUIRED, LL_OPTIONAL, LL_OFF };
static const char *const ll_mode_names[] = { "unset", "required", "optional", "off" };

static int parse_limit_value(const char *s, rlim_t *out)
{
	uint64_t v;
	if (strcmp(s, "unlimited") == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (parse_u64(s, &v) < 0 || (rlim_t)v != v)
		return -1;
	*out = (rlim_t)v;
	return 0;
}

/* NAME=SOFT[:HARD]; HARD defaults to SOFT so the command cannot raise it back. */
static void parse_rlimit(const char *arg, struct rlimit_opt *out)
{
	char buf[128];
	if (strlen(arg) >= sizeof buf)
		usage_error("option --rlimit: '%s' is too long", arg);
	strcpy(buf, arg);
	char *eq = strchr(buf, '=');
	if (!eq)
		usage_error("option --rlimit: '%s' is not NAME=SOFT[:HARD]", arg);
	*eq = '\0';
	char *soft = eq + 1, *hard = strchr(soft, ':');
	if (hard)
		*hard++ = '\0';
	out->arg = arg;
	out->index = -1;
	for (size_t k = 0; k < N_RLIMITS; k++)
		if (strcmp(buf, rlimit_names[k].name) == 0)
			out->index = (int)k;
	if (out->index < 0)
		usage_error("option --rlimit: unknown resource '%s' (known: cpu fsize nofile nproc as "
			    "data core stack memlock sigpending msgqueue)",
			    buf);
	if (parse_limit_value(soft, &out->value.rlim_cur) < 0 ||
	    parse_limit_value(hard ? hard : soft, &out->value.rlim_max) < 0)
		usage_error("option --rlimit: '%s': values are decimal numbers or 'unlimited'", arg);
}

/* RIGHTS:PATH with RIGHTS a non-empty combination of r w x d n, PATH absolute. */
static void parse_ll_rule(const char *arg, struct ll_rule *out)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg)
		usage_error("option --ll: '%s' is not RIGHTS:PATH", arg);
	out->rights = 0;
	out->skipped = 0;
	for (const char *p = arg; p < colon; p++) {
		switch (*p) {
		case 'r': out->rights |= RIGHT_R; break;
		case 'w': out->rights |= RIGHT_W; break;
		case 'x': out->rights |= RIGHT_X; break;
		case 'd': out->rights |= RIGHT_D; break;
		case 'n': out->rights |= RIGHT_NOSOCK; break;
		default:
			usage_error("option --ll: '%s': unknown right '%c' (rights are r, w, x, d, n)",
				    arg, *p);
		}
	}
	out->path = colon + 1;
	if (out->path[0] != '/')
		usage_error("option --ll: '%s': the path must be absolute", arg);
}

/* Every filesystem right the running ABI knows: all of them are handled, so
 * whatever a rule does not grant is denied. (Rights added by ABIs newer than
 * this file stay unhandled, i.e. allowed, until they are added here.) */
static uint64_t ll_handled_fs(int abi)
{
	uint64_t r = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR |
		     LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR | LL_FS_MAKE_DIR |
		     LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO | LL_FS_MAKE_BLOCK |
		     LL_FS_MAKE_SYM;
	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

/* Letters to Landlock rights. Device nodes (MAKE_CHAR, MAKE_BLOCK) are never granted. */
static uint64_t ll_access(unsigned rights)
{
	uint64_t a = 0;
	if (rights & RIGHT_R)
		a |= LL_FS_READ_FILE | LL_FS_READ_DIR;
	if (rights & RIGHT_W)
		a |= LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR |
		     LL_FS_MAKE_REG | LL_FS_MAKE_SYM | LL_FS_MAKE_FIFO | LL_FS_MAKE_SOCK |
		     LL_FS_TRUNCATE | LL_FS_REFER;
	if (rights & RIGHT_X)
		a |= LL_FS_EXECUTE;
	if (rights & RIGHT_D)
		a |= LL_FS_IOCTL_DEV;
	/* Rights add up along a path: the planner puts 'n' on every rule of the tree it is meant
	 * for (src/plan/rules.ts, withoutSocketNodes), not on one alone. */
	if (rights & RIGHT_NOSOCK)
		a &= ~LL_FS_MAKE_SOCK;
	return a;
}

/* The running Landlock ABI version, or -errno (ENOSYS: not built in;
 * EOPNOTSUPP: built in but not enabled at boot). */
static int ll_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, (size_t)0, LL_CREATE_RULESET_VERSION);
	return v < 0 ? -errno : (int)v;
}

/* Close every fd >= 3 except the n fds in keep (each >= 3, any order); close_range(2)
 * over the gaps where it exists (5.9), else walk /proc/self/fd. */
static int close_fds_except(const int *keep, int n)
{
	int sorted[16];
	if (n < 0 || n > 16) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < n; i++) { /* insertion sort: a handful of fds */
		int j = i;
		for (; j > 0 && sorted[j - 1] > keep[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = keep[i];
	}
	int ok = 1;
	unsigned from = 3;
	for (int i = 0; ok && i < n; i++) {
		if ((unsigned)sorted[i] > from && syscall(SYS_close_range, from, (unsigned)sorted[i] - 1, 0U) != 0)
			ok = 0;
		if ((unsigned)sorted[i] + 1 > from)
			from = (unsigned)sorted[i] + 1;
	}
	if (ok && syscall(SYS_close_range, from, ~0U, 0U) == 0)
		return 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint64_t fd;
		if (parse_u64(e->d_name, &fd) < 0 || fd < 3 || fd > INT_MAX || (int)fd == dirfd(d))
			continue;
		int kept = 0;
		for (int k = 0; k < n; k++)
			kept |= keep[k] == (int)fd;
		if (!kept)
			close((int)fd);
	}
	closedir(d);
	return 0;
}

/* The /proc/self/status fields we report, in this order. */
static const char *const proc_fields[] = {
	"NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh", "CapPrm", "CapEff",
	"CapBnd",     "CapAmb",  "Uid",		    "Gid",
};

/* The text of /proc/self/status read from fd (opened earlier), or NULL. */
static char *read_proc_status(int fd)
{
	static char buf[16384];
	size_t len = 0;
	ssize_t n;
	if (fd < 0)
		return NULL;
	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* The value of the "NAME:\tvalue" line of a /proc status text, copied into out; NULL if absent. */
static const char *proc_field(const char *text, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vlen = next ? (size_t)(next - v) : strlen(v);
			if (vlen >= size)
				vlen = size - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return out;
		}
		line = next ? next + 1 : NULL;
	}
	return NULL;
}

/* "proc_status":{...} from the status text, or null. */
static void json_proc_status(FILE *f, const char *text)
{
	if (!text) {
		fputs("null", f);
		return;
	}
	fputc('{', f);
	int first = 1;
	for (size_t k = 0; k < sizeof proc_fields / sizeof proc_fields[0]; k++) {
		char v[128];
		if (!proc_field(text, proc_fields[k], v, sizeof v))
			continue;
		fputs(first ? "" : ",", f);
		json_str(f, proc_fields[k]);
		fputc(':', f);
		json_str(f, v);
		first = 0;
	}
	fputc('}', f);
}

/*
 * Step "confinement": what the caller requires to be in force, checked from
 * inside before the command can run. bwrap is a separate program found on the
 * host; one that dropped an option (`--seccomp`, an `--unshare-*`, `--cap-drop`)
 * would still run us, and without this the command would run with the layer
 * missing and only the report would show it. Only fields the kernel shows
 * are checked: the filters' count, not their content.
 */
#define MAX_REQUIRED_NS 8
#define CONFINEMENT_HINT                                                                             \
	"the bwrap Ward ran did not build the sandbox Ward asked for: check WARD_BWRAP and that bwrap " \
	"is the distribution's (`ward doctor`)"
struct required_ns {
	char name[16];
	uint64_t host_ino;
};

static void require_confinement(const char *text, unsigned long min_filters, int unprivileged)
{
	char v[128];
	const char *hint = CONFINEMENT_HINT;
	if (!text)
		fail("confinement", EACCES, "/proc/self/status cannot be read, so what is in force cannot be checked", hint);
	char d[200];
	if (min_filters > 0) {
		const char *mode = proc_field(text, "Seccomp", v, sizeof v);
		if (!mode || strcmp(mode, "2") != 0) {
			snprintf(d, sizeof d, "Seccomp is %s, not 2: no seccomp filter is in force", mode ? mode : "absent");
			fail("confinement", EPERM, d, hint);
		}
		/* Absent before Linux 5.9: the mode alone is checked there. */
		const char *count = proc_field(text, "Seccomp_filters", v, sizeof v);
		uint64_t have;
		if (count && (parse_u64(count, &have) < 0 || have < min_filters)) {
			snprintf(d, sizeof d, "Seccomp_filters is %s, fewer than the %lu Ward installs", count, min_filters);
			fail("confinement", EPERM, d, hint);
		}
	}
	if (unprivileged) {
		const char *nnp = proc_field(text, "NoNewPrivs", v, sizeof v);
		if (!nnp || strcmp(nnp, "1") != 0)
			fail("confinement", EPERM, "NoNewPrivs is not 1: a setuid program would gain privileges", hint);
		static const char *const caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
		for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
			const char *set = proc_field(text, caps[k], v, sizeof v);
			if (!set || strspn(set, "0") != strlen(set) || !*set) {
				snprintf(d, sizeof d, "%s is %s: the sandbox holds capabilities", caps[k], set ? set : "absent");
				fail("confinement", EPERM, d, hint);
			}
		}
	}
}

/* Each namespace named must be a new one: its inode differs from the host's (given by Ward). */
static void require_namespaces(const struct required_ns *ns, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char p[64], d[200];
		struct stat st;
		snprintf(p, sizeof p, "/proc/self/ns/%.15s", ns[k].name);
		if (stat(p, &st) < 0)
			fail("confinement", errno, p, NULL);
		if ((uint64_t)st.st_ino == ns[k].host_ino) {
			snprintf(d, sizeof d, "the %.15s namespace is the host's (inode %llu): bwrap did not unshare it", ns[k].name,
				 (unsigned long long)st.st_ino);
			fail("confinement", EPERM, d, CONFINEMENT_HINT);
		}
	}
}

static void json_limit(FILE *f, rlim_t v)
{
	if (v == RLIM_INFINITY)
		fputs("\"unlimited\"", f);
	else
		fprintf(f, "%llu", (unsigned long long)v);
}

/*
 * Supervised mode (src/supervisor/): --supervise-fd N names a SOCK_SEQPACKET
 * unix socket whose other end is held by Ward's supervisor, outside the
 * sandbox. Over it, in this order:
 *   1. Ward sends one message: a classic BPF program (struct sock_filter[]),
 *      compiled in TypeScript (src/supervisor/filter.ts), that answers
 *      SECCOMP_RET_USER_NOTIF for the syscalls Ward decides at run time;
 *   2. we install it with SECCOMP_FILTER_FLAG_NEW_LISTENER and send the
 *      listener fd back with SCM_RIGHTS (not pidfd_getfd: that needs ptrace
 *      rights Yama may refuse, SCM_RIGHTS needs none);
 *   3. Ward answers one byte once its loop runs; only then do we go on to exec.
 * Any failure is fatal: a command that was to run supervised never runs
 * unsupervised. The filter is installed after Landlock and chdir, so our own
 * setup is not intercepted; the command's exec is the first notified call.
 * Both filters run on every syscall and the kernel takes the most restrictive
 * answer (KILL > ERRNO > USER_NOTIF > ALLOW), so bwrap's static denials stay
 * static: the supervisor never sees a call the static filter refuses.
 */
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#define WARD_SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
/*
 * 5.19+: once Ward has received a notification, a signal to the caller no
 * longer interrupts the call (only a fatal one ends it). Without it, a
 * signal arriving while Ward performs the call on the caller's behalf (an
 * O_CREAT open, a mkdir, a rename) abandons the answer, and the restarted
 * call meets Ward's finished work: EEXIST, ENOENT. Programs that take
 * signals all the time (interval timers, Go's preemption) saw that.
 */
#define WARD_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#define SUPERVISE_MAX_INSNS 4096 /* BPF_MAXINSNS */

struct ward_sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};
struct ward_sock_fprog {
	unsigned short len;
	struct ward_sock_filter *filter;
};

static void supervise_handshake(int sfd)
{
	static struct ward_sock_filter insns[SUPERVISE_MAX_INSNS];
	ssize_t n;
	do
		n = recv(sfd, insns, sizeof insns, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("supervise-filter", errno, "receiving the filter from Ward", NULL);
	if (n == 0)
		fail("supervise-filter", EPIPE, "Ward's supervisor closed its socket before sending the filter",
		     "the supervisor failed to start; Ward reports why");
	if ((size_t)n > sizeof insns || n % (ssize_t)sizeof insns[0] != 0)
		fail("supervise-filter", EINVAL, "the filter is not a whole number of instructions (at most 4096)",
		     NULL);

	/* seccomp(2) requires no_new_privs (or CAP_SYS_ADMIN); bwrap set it, set it again to stand alone. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("no-new-privs", errno, NULL, NULL);
	struct ward_sock_fprog prog = { (unsigned short)(n / (ssize_t)sizeof insns[0]), insns };
	/* The byte sent with the listener says which: 'K' killable waits, 'L' older kernels. */
	char byte = 'K';
	int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				    WARD_SECCOMP_FILTER_FLAG_NEW_LISTENER | WARD_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
				    &prog);
	if (listener < 0 && errno == EINVAL) {
		byte = 'L';
		listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
					WARD_SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	}
	if (listener < 0)
		fail("supervise-install", errno, "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)",
		     errno == EBUSY ? "another filter of this process already has a listener" : NULL);

	n = send_with_fd(sfd, &byte, 1, listener);
	if (n != 1)
		fail("supervise-send", n < 0 ? errno : EIO, "passing the listener fd to Ward", NULL);
	/* Our copy goes now: only Ward's copy keeps the filter's notifications answerable. */
	close(listener);

	do
		n = recv(sfd, &byte, 1, 0);
	while (n < 0 && errno == EINTR);
	if (n != 1 || byte != 'G')
		fail("supervise-ack", n < 0 ? errno : EPIPE, "Ward's supervisor did not confirm it is running",
		     NULL);
	close(sfd);
}

/*
 * Pooled sandboxes (src/pool/): --argv-fd N names the read end of a channel
 * whose write end only Ward holds, outside the sandbox. After "ready", with
 * every restriction in force, inner blocks reading exactly one message:
 *
 *   u32 LEN (host byte order) | LEN bytes: ARG0 NUL ARG1 NUL ... ARGn NUL
 *
 * The message is the command's argv and nothing else: the environment, the
 * directory, the limits and every restriction were fixed by the policy
 * before it could arrive, so nothing in it can change them. EOF (the pool
 * closed or discarded this sandbox) or a malformed message ends the
 * launcher without exec (fail closed), with a status line naming why.
 * Having read it, inner answers one byte 'A' ("taken"): Ward then knows the
 * command started here, and that a sandbox which died before the byte never
 * ran it (the pool gives the command to another one). The channel is a
 * socket (Node's pipes are socketpairs); it is made one-way after the byte,
 * and closed before the exec: the command never holds it.
 */
#define ARGV_MSG_MAX (1U << 20)  /* 1 MiB: above what Ward sends (src/pool/message.ts) */
#define ARGV_MSG_MAX_ARGS 65536

/* Reads len bytes; returns 0, or -1 with errno (EPIPE at EOF, with *got the bytes read). */
static int read_exact(int fd, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, (char *)buf + *got, len - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		*got += (size_t)n;
	}
	return 0;
}

static char **read_argv(int fd)
{
	uint32_t len;
	size_t got;
	if (read_exact(fd, &len, sizeof len, &got) < 0)
		fail("argv-read", errno,
		     got == 0 && errno == EPIPE ? "no command was handed out: Ward closed the argv channel"
						: "reading the length of the argv message",
		     NULL);
	if (len < 2 || len > ARGV_MSG_MAX)
		fail("argv-message", EINVAL, "the argv message's length is out of range (2 bytes to 1 MiB)", NULL);
	char *buf = malloc(len);
	if (!buf)
		fail("argv-read", ENOMEM, "the argv message", NULL);
	if (read_exact(fd, buf, len, &got) < 0)
		fail("argv-read", errno, "the argv message ended early", NULL);
	if (buf[len - 1] != '\0')
		fail("argv-message", EINVAL, "the argv message does not end with NUL", NULL);
	if (buf[0] == '\0')
		fail("argv-message", EINVAL, "the command (argv[0]) is empty", NULL);
	size_t n_args = 0;
	for (uint32_t k = 0; k < len; k++)
		n_args += buf[k] == '\0';
	if (n_args > ARGV_MSG_MAX_ARGS)
		fail("argv-message", E2BIG, "more than 65536 arguments", NULL);
	char **cmd = calloc(n_args + 1, sizeof *cmd);
	if (!cmd)
		fail("argv-read", ENOMEM, "the argv array", NULL);
	char *p = buf;
	for (size_t k = 0; k < n_args; k++) {
		cmd[k] = p;
		p += strlen(p) + 1;
	}
	/* No ack, no exec: Ward would take a command it cannot see start for one that never ran. */
	ssize_t sent;
	do
		sent = send(fd, "A", 1, MSG_NOSIGNAL); /* EPIPE, not SIGPIPE: the failure is reported */
	while (sent < 0 && errno == EINTR);
	if (sent != 1)
		fail("argv-ack", errno, "answering Ward that the command was taken", NULL);
	/* Nothing more goes back to Ward this way, whoever else holds this socket (bwrap's init). */
	if (shutdown(fd, SHUT_WR) < 0)
		fail("argv-ack", errno, "shutdown of the argv channel's sandbox end", NULL);
	if (close(fd) < 0)
		fail("argv-read", errno, "closing the argv channel", NULL);
	return cmd;
}

static int run_inner(int argc, char **argv)
{
	int i;
	stage = "inner";

	/* Parse and validate every option before doing anything. */
	struct rlimit_opt rlimits[N_RLIMITS];
	size_t n_rlimits = 0;
	struct ll_rule *rules = calloc((size_t)argc + 1, sizeof *rules);
	size_t n_rules = 0;
	enum ll_mode mode = LL_UNSET;
	int scope = 0;
	const char *chdir_to = NULL;
	int supervise_fd = -1;
	int argv_fd = -1;
	unsigned long min_filters = 0;
	int unprivileged = 0;
	struct required_ns req_ns[MAX_REQUIRED_NS];
	size_t n_req_ns = 0;
	if (!rules)
		fail("parse", ENOMEM, NULL, NULL);

	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "--rlimit") == 0) {
			struct rlimit_opt r;
			parse_rlimit(option_value(argc, argv, &i), &r);
			for (size_t k = 0; k < n_rlimits; k++)
				if (rlimits[k].index == r.index)
					usage_error("option --rlimit: '%s' given twice",
						    rlimit_names[r.index].name);
			rlimits[n_rlimits++] = r;
		} else if (strcmp(opt, "--landlock") == 0) {
			const char *v = option_value(argc, argv, &i);
			if (mode != LL_UNSET)
				usage_error("option --landlock given twice");
			if (strcmp(v, "required") == 0)
				mode = LL_REQUIRED;
			else if (strcmp(v, "optional") == 0)
				mode = LL_OPTIONAL;
			else if (strcmp(v, "off") == 0)
				mode = LL_OFF;
			else
				usage_error("option --landlock: '%s' is not required, optional or off", v);
		} else if (strcmp(opt, "--ll") == 0) {
			parse_ll_rule(option_value(argc, argv, &i), &rules[n_rules++]);
		} else if (strcmp(opt, "--ll-scope") == 0) {
			if (scope)
				usage_error("option --ll-scope given twice");
			scope = 1;
		} else if (strcmp(opt, "--chdir") == 0) {
			if (chdir_to)
				usage_error("option --chdir given twice");
			chdir_to = option_value(argc, argv, &i);
			if (!*chdir_to)
				usage_error("option --chdir: empty directory");
		} else if (strcmp(opt, "--status-fd") == 0) {
			parse_status_fd(opt, option_value(argc, argv, &i), 1);
		} else if (strcmp(opt, "--supervise-fd") == 0) {
			const char *v = option_value(argc, argv, &i);
			uint64_t fd;
			if (supervise_fd >= 0)
				usage_error("option --supervise-fd given twice");
			if (parse_u64(v, &fd) < 0 || fd < 3 || fd > INT_MAX)
				usage_error("option --supervise-fd: '%s' is not an fd number >= 3", v);
			supervise_fd = (int)fd;
		} else if (strcmp(opt, "--argv-fd") == 0) {
			const char *v = option_value(argc, argv, &i);
			uint64_t fd;
			if (argv_fd >= 0)
				usage_error("option --argv-fd given twice");
			if (parse_u64(v, &fd) < 0 || fd < 3 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0)
				usage_error("option --argv-fd: '%s' is not an open fd >= 3", v);
			argv_fd = (int)fd;
		} else if (strcmp(opt, "--require-seccomp") == 0) {
			const char *v = option_value(argc, argv, &i);
			uint64_t n;
			if (min_filters > 0)
				usage_error("option --require-seccomp given twice");
			if (parse_u64(v, &n) < 0 || n < 1 || n > 1000)
				usage_error("option --require-seccomp: '%s' is not a filter count 1..1000", v);
			min_filters = (unsigned long)n;
		} else if (strcmp(opt, "--require-unprivileged") == 0) {
			unprivileged = 1;
		} else if (strcmp(opt, "--require-ns") == 0) {
			const char *v = option_value(argc, argv, &i);
			const char *colon = strchr(v, ':');
			uint64_t ino;
			if (n_req_ns >= MAX_REQUIRED_NS)
				usage_error("option --require-ns: at most %d", MAX_REQUIRED_NS);
			if (!colon || colon == v || (size_t)(colon - v) >= sizeof req_ns[0].name ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyz_") != (size_t)(colon - v) || parse_u64(colon + 1, &ino) < 0)
				usage_error("option --require-ns: '%s' is not NAME:HOST_INODE", v);
			memcpy(req_ns[n_req_ns].name, v, (size_t)(colon - v));
			req_ns[n_req_ns].name[colon - v] = '\0';
			req_ns[n_req_ns++].host_ino = ino;
		} else if (opt[0] != '-') {
			usage_error("inner: unexpected argument '%s' (the command goes after '--')", opt);
		} else {
			usage_error("inner: unknown option '%s'", opt);
		}
	}
	if (i >= argc)
		usage_error("inner: missing '--' before the command");
	char **cmd = argv + i + 1;
	if (argv_fd >= 0 && cmd[0])
		usage_error("inner: with --argv-fd the command comes from that fd: nothing may follow '--'");
	if (argv_fd < 0 && !cmd[0])
		usage_error("inner: missing command after '--'");
	if (argv_fd >= 0 && (argv_fd == status_fd || argv_fd == supervise_fd))
		usage_error("option --argv-fd: fd %d is already the status or supervise fd", argv_fd);
	/* Landlock is never left to a default: the caller says what it wants. */
	if (mode == LL_UNSET)
		usage_error("inner: --landlock required|optional|off must be given");
	if (mode == LL_OFF && (n_rules > 0 || scope))
		usage_error("inner: --ll and --ll-scope make no sense with --landlock off");

	/*
	 * Step "close-fds": the command must inherit exactly fds 0, 1, 2 (and
	 * not, say, a pipe to the supervisor or a directory fd outside the
	 * sandbox's view). First, so that nothing we open later can be missed
	 * and before Landlock could deny the /proc fallback. The status fd
	 * stays, close-on-exec.
	 */
	int keep[3], n_keep = 0;
	if (status_fd >= 0)
		keep[n_keep++] = status_fd;
	if (supervise_fd >= 0)
		keep[n_keep++] = supervise_fd;
	if (argv_fd >= 0)
		keep[n_keep++] = argv_fd;
	if (close_fds_except(keep, n_keep) < 0)
		fail("close-fds", errno, "/proc/self/fd", NULL);

	/*
	 * Step "proc-status": open /proc/self/status now and read it after the
	 * restrictions. The kernel generates its text at read time, so what we
	 * read shows the final state; opening it now means the Landlock policy
	 * need not grant /proc. Failure is not fatal: the report says null.
	 */
	int proc_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	/* Step "confinement" (namespaces): fixed since bwrap made them; seccomp refuses new ones. */
	require_namespaces(req_ns, n_req_ns);

	/*
	 * Step "landlock-abi": which Landlock the kernel has. Mode "required"
	 * refuses to run without it; "optional" runs and reports "unavailable";
	 * "off" makes no Landlock call at all (and reports abi 0).
	 */
	int abi = mode == LL_OFF ? 0 : ll_abi();
	int ll_errno = abi < 0 ? -abi : 0;
	const char *ll_status = "off";
	size_t n_applied = 0;
	int scoped = 0;
	if (mode != LL_OFF && abi < 1) {
		if (mode == LL_REQUIRED)
			fail("landlock-abi", ll_errno ? ll_errno : ENOSYS, "required",
			     ll_errno == EOPNOTSUPP
				     ? "Landlock is built into this kernel but not enabled: add "
				       "'landlock' to the lsm= kernel boot parameter, or set the "
				       "policy's landlock mode to optional"
				     : "this kernel has no Landlock (needs Linux >= 5.13 with "
				       "CONFIG_SECURITY_LANDLOCK=y): upgrade the kernel, or set the "
				       "policy's landlock mode to optional");
		ll_status = "unavailable";
	}

	if (mode != LL_OFF && abi >= 1) {
		/*
		 * Step "landlock-ruleset": handle every fs right this ABI knows,
		 * so anything not granted below is denied. The struct grew with
		 * the ABI; pass the size this kernel knows.
		 */
		struct ll_ruleset_attr attr = { 0, 0, 0 };
		attr.handled_access_fs = ll_handled_fs(abi);
		if (scope && abi >= 6) {
			/* No abstract unix sockets to, or signals at, processes outside. */
			attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
			scoped = 1;
		}
		size_t attr_size = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
		int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0U);
		if (ruleset < 0)
			fail("landlock-ruleset", errno, NULL, NULL);

		/*
		 * Step "landlock-rule": one path_beneath rule per --ll. O_PATH
		 * follows symlinks (/lib -> usr/lib): the rule is on the target.
		 * A missing path is skipped and reported: the caller has
		 * already decided which paths should exist, and a grant on
		 * nothing grants nothing. Any other error is fatal in every
		 * mode: the policy would not be what was asked for.
		 */
		for (size_t k = 0; k < n_rules; k++) {
			struct ll_rule *r = &rules[k];
			int fd = open(r->path, O_PATH | O_CLOEXEC);
			if (fd < 0) {
				if (errno == ENOENT || errno == ENOTDIR) {
					r->skipped = 1;
					continue;
				}
				fail("landlock-rule", errno, r->path, NULL);
			}
			struct stat st;
			if (fstat(fd, &st) < 0)
				fail("landlock-rule", errno, r->path, NULL);
			uint64_t access = ll_access(r->rights) & attr.handled_access_fs;
			/* On a non-directory the kernel accepts only file rights. */
			if (!S_ISDIR(st.st_mode))
				access &= LL_FS_FILE_RIGHTS;
			/* E.g. "d" on a kernel before ABI 5: nothing to grant. */
			if (access != 0) {
				struct ll_path_beneath_attr pb;
				pb.allowed_access = access;
				pb.parent_fd = fd;
				if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb,
					    0U) < 0)
					fail("landlock-rule", errno, r->path, NULL);
				n_applied++;
			}
			close(fd);
		}

		/*
		 * Step "no-new-privs": landlock_restrict_self requires it (or
		 * CAP_SYS_ADMIN). bwrap has set it already; setting it again
		 * is harmless and keeps this file correct on its own.
		 */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			fail("no-new-privs", errno, NULL, NULL);

		/* Step "landlock-restrict": from now on this thread, and what it execs, is confined. */
		if (syscall(SYS_landlock_restrict_self, ruleset, 0U) < 0)
			fail("landlock-restrict", errno, NULL, NULL);
		close(ruleset);
		ll_status = "applied";
	}

	/* Step "chdir": after Landlock, so the policy applies from the first access. */
	if (chdir_to && chdir(chdir_to) < 0)
		fail("chdir", errno, chdir_to, NULL);

	/* Step "supervise": the notify filter and its listener (see supervise_handshake). */
	if (supervise_fd >= 0)
		supervise_handshake(supervise_fd);

	/*
	 * Step "rlimit": here, inside the sandbox's user namespace, because
	 * RLIMIT_NPROC is counted per user namespace: set before bwrap it
	 * would count the user's processes outside. And last, so the limits
	 * meant for the command never constrain the steps above (nofile=4
	 * would leave no fd for the Landlock ruleset). Hard = soft unless
	 * given, so the command cannot raise the soft limit back.
	 */
	for (size_t k = 0; k < n_rlimits; k++)
		if (setrlimit(rlimit_names[rlimits[k].index].resource, &rlimits[k].value) < 0)
			fail("rlimit", errno, rlimits[k].arg, NULL);

	/*
	 * Step "confinement" (seccomp, privileges): last, after our own filter
	 * (supervised mode) and every other step, on what the report will show.
	 */
	const char *proc_text = read_proc_status(proc_fd);
	if (min_filters > 0 || unprivileged)
		require_confinement(proc_text, min_filters, unprivileged);

	/*
	 * Step "status": report what is in force, observed from inside, as one
	 * line. The status fd is close-on-exec: a successful exec closes it.
	 */
	if (status_fd >= 0) {
		char *line = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&line, &len);
		if (!f)
			fail("status", errno, NULL, NULL);
		fprintf(f, "{\"stage\":\"inner\",\"protocol\":%d,\"landlock\":{\"mode\":",
			WARD_STATUS_PROTOCOL);
		json_str(f, ll_mode_names[mode]);
		fprintf(f, ",\"abi\":%d,\"status\":", abi > 0 ? abi : 0);
		json_str(f, ll_status);
		fprintf(f, ",\"rules\":%zu,\"scoped\":%s,\"skipped\":[", n_applied,
			scoped ? "true" : "false");
		int first = 1;
		for (size_t k = 0; k < n_rules; k++) {
			if (!rules[k].skipped)
				continue;
			fputs(first ? "" : ",", f);
			json_str(f, rules[k].path);
			first = 0;
		}
		fputc(']', f);
		if (mode != LL_OFF && abi < 1)
			fprintf(f, ",\"errno\":%d", ll_errno);
		fputs("},\"proc_status\":", f);
		json_proc_status(f, proc_text);
		fputs(",\"rlimits\":{", f);
		for (size_t k = 0; k < N_RLIMITS; k++) {
			struct rlimit rl;
			if (getrlimit(rlimit_names[k].resource, &rl) < 0)
				continue;
			fprintf(f, "%s\"%s\":[", k ? "," : "", rlimit_names[k].name);
			json_limit(f, rl.rlim_cur);
			fputc(',', f);
			json_limit(f, rl.rlim_max);
			fputc(']', f);
		}
		fputs("}}\n", f);
		if (fclose(f) != 0)
			fail("status", errno, NULL, NULL);
		/* If the supervisor cannot learn what is in force, do not run. */
		if (send_status(line, len) < 0) {
			int err = errno;
			fprintf(stderr, "ward-launch inner: status: cannot write the status fd: %s\n",
				strerror(err));
			_exit(EXIT_LAUNCHER);
		}
	}
	if (proc_fd >= 0)
		close(proc_fd);
	free(rules);

	/* Step "argv" (pooled): everything is in force; wait for the command (see read_argv). */
	if (argv_fd >= 0)
		cmd = read_argv(argv_fd);

	/* Step "exec": the command. Errors as a shell reports them: 127 not found, else 126. */
	execvp(cmd[0], cmd);
	int err = errno;
	fprintf(stderr, "ward: cannot execute %s: %s\n", cmd[0], strerror(err));
	if (status_fd >= 0)
		report_failure("exec", err, cmd[0], NULL);
	_exit(err == ENOENT ? 127 : 126);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	if (argc < 2)
		usage_error("missing subcommand");
	if (strcmp(argv[1], "--version") == 0 && argc == 2) {
		printf("ward-launch %s (status protocol %d)\n", WARD_LAUNCH_VERSION,
		       WARD_STATUS_PROTOCOL);
		return 0;
	}
	if (strcmp(argv[1], "landlock-abi") == 0 && argc == 2) {
		/* For Ward's doctor: 0 when the kernel has no (enabled) Landlock. */
		int abi = ll_abi();
		printf("%d\n", abi > 0 ? abi : 0);
		return 0;
	}
	if (strcmp(argv[1], "outer") == 0)
		return run_outer(argc - 2, argv + 2);
	if (strcmp(argv[1], "inner") == 0)
		return run_inner(argc - 2, argv + 2);
	usage_error("unknown subcommand or extra arguments: '%s'", argv[1]);
}
