/* The machine's floor for a FastAGI session (benchmarks/agi_hold.py --modes c-floor).
 *
 * A FastAGI server in C that does what pbxgate serve does on the wire and nothing else: reads
 * the environment block, sends COMMANDS commands one after another (each waiting for its
 * reply: GET VARIABLE CHANNEL(linkedid), then SET VARIABLE PBXGATE_EVENT queued, the last sent
 * with the end of our side, as pbxgate's finish() does), and closes once the last reply has
 * come. No storage, no parsing beyond line ends: what is left of a call's hold is the kernel's
 * TCP over loopback and the callers. PROCESSES processes accept on one listening socket.
 *
 * Usage: agi_floor COMMANDS PROCESSES   prints "READY <port>", serves until killed
 * (SIGTERM; the other processes end with the first).
 * Build: cc -O2 -o agi_floor agi_floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

struct conn {
    int active;
    int env_done;   /* the blank line that ends the environment has come */
    int sent;       /* commands sent */
    int replies;    /* replies read */
    char last;      /* the last byte read (a blank line spans reads) */
};

static struct conn conns[MAX_FDS];
static int commands;
static int epfd, lfd;

static void die(const char *what) {
    fprintf(stderr, "agi_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void send_next(int fd) {
    static const char get[] = "GET VARIABLE \"CHANNEL(linkedid)\"\n";
    static const char set[] = "SET VARIABLE PBXGATE_EVENT queued\n";
    struct conn *c = &conns[fd];
    int last = c->sent == commands - 1;
    const char *line = last ? set : get;
    size_t len = last ? sizeof set - 1 : sizeof get - 1;
    /* a few dozen bytes into an empty socket buffer: all of it or an error (the caller gone,
       whose read of the end then finishes the session) */
    if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) return;
    c->sent++;
    if (last) shutdown(fd, SHUT_WR);
}

static void finish(int fd) {
    conns[fd].active = 0;
    close(fd);
}

static void readable(int fd) {
    char buf[16384];
    struct conn *c = &conns[fd];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got == 0) { finish(fd); return; }
        if (got < 0) {
            if (errno == EAGAIN) return;
            finish(fd);
            return;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\r') continue;  /* CRLF ends a line as LF does */
            if (buf[i] != '\n') { c->last = buf[i]; continue; }
            if (!c->env_done) {
                if (c->last == '\n') { c->env_done = 1; send_next(fd); }
            } else if (++c->replies == commands) {
                finish(fd);
                return;
            } else {
                send_next(fd);
            }
            c->last = '\n';
        }
    }
}

static void serve(void) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    if (cfd >= MAX_FDS) { close(cfd); continue; }
                    int one = 1;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    memset(&conns[cfd], 0, sizeof conns[cfd]);
                    conns[cfd].active = 1;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
                }
            } else if (conns[fd].active) {
                readable(fd);
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: agi_floor COMMANDS PROCESSES\n"); return 2; }
    commands = atoi(argv[1]);
    int processes = atoi(argv[2]);
    if (commands < 1 || processes < 1) { fprintf(stderr, "agi_floor: both must be positive\n"); return 2; }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    socklen_t len = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    printf("READY %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    pid_t first = getpid();
    for (int p = 1; p < processes; p++) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  /* ends with the first (the benchmark's child) */
            if (getppid() != first) return 0;  /* it ended before the line above */
            serve();
        }
    }
    serve();
}
