/* vmaspace-executor: runs trace calls on the live kernel for vmaspace-oracle.
 *
 * A static program without libc, so that its address space holds nothing but its own ELF
 * segments, one bss VMA, the vDSO, the stack and [vsyscall] (reference/live-kernel.md §6):
 * it never allocates and never maps anything itself, so every VMA the trace creates stays as
 * the trace made it.
 *
 * Protocol (all words are little-endian u64). Process k reads commands from fd 100+2k and
 * writes results to fd 101+2k. A command is 10 words:
 *   kind, nr, a0..a5, str_arg, str_len   followed by str_len bytes padded to 8.
 * If str_arg < 6, the string (NUL-terminated here) replaces argument str_arg.
 * Kinds and their replies:
 *   1 SYSCALL  raw syscall `nr` with a0..a5           -> one word: the raw return value
 *   2 TOUCH    write one byte per page of [a0, a0+a1) -> one word: 0 or the signal number
 *   3 PEEK     read one byte per page                 -> one word: 0 or the signal number
 *   4 CAT      copy the file named by the string      -> chunks: word len, bytes (padded); len 0 ends
 *   5 FORK     fork; the child switches to fds a0, a1 -> parent: one word (raw return value)
 *   6 EXIT     exit_group(a0)                         -> nothing
 */

typedef unsigned long u64;
typedef long i64;

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_rt_sigaction 13
#define SYS_rt_sigreturn 15
#define SYS_fork 57
#define SYS_exit_group 231

static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
    register i64 r10 __asm__("r10") = d;
    register i64 r8 __asm__("r8") = e;
    register i64 r9 __asm__("r9") = f;
    i64 r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}
#define sys3(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

/* Page probes. The fault handler resumes at probe_done with the signal number in rax. */
extern int probe_write(u64 addr);
extern int probe_read(u64 addr);
extern char probe_done[];
extern char probe_start[];
extern void restorer(void);
__asm__(".text\n"
        ".globl probe_start\nprobe_start:\n"
        ".globl probe_write\nprobe_write:\n"
        "  xorl %eax, %eax\n"
        "  movb $0x5a, (%rdi)\n"
        "  ret\n"
        ".globl probe_read\nprobe_read:\n"
        "  xorl %eax, %eax\n"
        "  movb (%rdi), %cl\n"
        ".globl probe_done\nprobe_done:\n"
        "  ret\n"
        ".globl restorer\nrestorer:\n"
        "  movq $15, %rax\n"
        "  syscall\n");

/* x86_64 ucontext: uc_flags, uc_link, uc_stack (24 bytes), then mcontext gregs[23]. */
#define GREG_OFFSET 40
#define REG_RAX 13
#define REG_RIP 16

static void on_fault(int sig, void *info, void *uc) {
    (void)info;
    u64 *gregs = (u64 *)((char *)uc + GREG_OFFSET);
    u64 rip = gregs[REG_RIP];
    if (rip < (u64)probe_start || rip >= (u64)probe_done) {
        sys3(SYS_exit_group, 128 + sig, 0, 0); /* a fault outside a probe: the executor is broken */
    }
    gregs[REG_RAX] = (u64)sig;
    gregs[REG_RIP] = (u64)probe_done;
}

struct kernel_sigaction {
    void *handler;
    u64 flags;
    void *restorer;
    u64 mask;
};
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTORER 0x04000000
#define SA_NODEFER 0x40000000

static void install(int sig) {
    struct kernel_sigaction sa = {(void *)on_fault, SA_SIGINFO | SA_RESTORER | SA_NODEFER, (void *)restorer, 0};
    sys6(SYS_rt_sigaction, sig, (i64)&sa, 0, 8, 0, 0);
}

static int in_fd = 100, out_fd = 101;
static char buf[65536];
static u64 cmd[10];
static char str[4104];

static void die(int code) {
    for (;;) sys3(SYS_exit_group, code, 0, 0);
}

static void read_full(void *p, u64 n) {
    char *c = p;
    while (n) {
        i64 r = sys3(SYS_read, in_fd, c, n);
        if (r == -4) continue; /* EINTR */
        if (r <= 0) die(0);    /* the driver went away */
        c += r;
        n -= (u64)r;
    }
}

static void write_full(const void *p, u64 n) {
    const char *c = p;
    while (n) {
        i64 r = sys3(SYS_write, out_fd, c, n);
        if (r == -4) continue;
        if (r <= 0) die(0);
        c += r;
        n -= (u64)r;
    }
}

static void reply(i64 v) {
    write_full(&v, 8);
}

static u64 probe_pages(u64 addr, u64 len, int write) {
    u64 end = addr + len, p = addr;
    if (end < addr) end = ~0UL;
    while (p < end) {
        int r = write ? probe_write(p) : probe_read(p);
        if (r) return (u64)r;
        u64 next = (p & ~0xfffUL) + 0x1000;
        if (next <= p) break;
        p = next;
    }
    return 0;
}

static void cat(const char *path) {
    i64 fd = sys3(SYS_open, path, 0, 0);
    if (fd < 0) {
        u64 z = 0;
        write_full(&z, 8);
        return;
    }
    for (;;) {
        i64 n = sys3(SYS_read, fd, buf, sizeof buf);
        if (n == -4) continue;
        if (n <= 0) break;
        u64 len = (u64)n;
        write_full(&len, 8);
        write_full(buf, (len + 7) & ~7UL);
    }
    sys3(SYS_close, fd, 0, 0);
    u64 z = 0;
    write_full(&z, 8);
}

void __attribute__((noreturn)) main_loop(void) {
    install(11); /* SIGSEGV */
    install(7);  /* SIGBUS */
    for (;;) {
        read_full(cmd, sizeof cmd);
        u64 slen = cmd[9];
        if (slen > sizeof str - 8) die(3);
        read_full(str, (slen + 7) & ~7UL);
        str[slen] = 0;
        i64 a[6];
        for (int i = 0; i < 6; i++) a[i] = (i64)cmd[2 + i];
        if (cmd[8] < 6) a[cmd[8]] = (i64)str;
        switch (cmd[0]) {
        case 1:
            reply(sys6((i64)cmd[1], a[0], a[1], a[2], a[3], a[4], a[5]));
            break;
        case 2:
        case 3:
            reply((i64)probe_pages(cmd[2], cmd[3], cmd[0] == 2));
            break;
        case 4:
            cat(str);
            break;
        case 5: {
            i64 pid = sys3(SYS_fork, 0, 0, 0);
            if (pid == 0) {
                in_fd = (int)cmd[2];
                out_fd = (int)cmd[3];
            } else {
                reply(pid);
            }
            break;
        }
        case 6:
            die((int)cmd[2]);
            break;
        default:
            die(4);
        }
    }
}

__asm__(".text\n.globl _start\n_start:\n"
        "  xorl %ebp, %ebp\n"
        "  andq $-16, %rsp\n"
        "  call main_loop\n"
        "  hlt\n");
