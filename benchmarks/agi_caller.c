/* A simulated Asterisk for the FastAGI hold benchmark (benchmarks/agi_hold.py --client-loop c).
 *
 * CONCURRENCY callers in a closed loop, as agi_hold.py's asyncio callers do: each connects,
 * writes the AGI environment block, answers every command line with "200 result=1", and
 * notes the hold from its first byte to the server's end of the session (EOF or reset); the
 * moment one call ends, its caller begins the next. One thread and epoll, so that the load
 * generator takes as little as possible of the CPU it shares with the server it measures
 * (the asyncio callers take about as much as the server itself).
 *
 * Usage: agi_caller PORT CALLS CONCURRENCY TEMPLATE
 *   TEMPLATE: a file with the environment block; every "{ID}" in it becomes the call's id
 *   (<seconds>.<n>), as the uniqueid of agi_hold.py's calls.
 * Prints one hold a line (seconds), then "rate <calls/s>"; exits 1 with one line on error.
 *
 * Build: cc -O2 -o agi_caller agi_caller.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define REPLY "200 result=1\n"

struct call {
    int active;
    int connected;
    double started;
};

static struct call calls[MAX_FDS];
static char tmpl[65536];
static size_t tmpl_len;
static long next_call, total_calls;
static long id_base;
static int epfd;
static struct sockaddr_in server;
static double *holds;
static long done_calls;

static void die(const char *what) {
    fprintf(stderr, "agi_caller: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The environment block of call n: the template with each {ID} replaced. */
static size_t env_block(long n, char *out, size_t cap) {
    char id[64];
    int id_len = snprintf(id, sizeof id, "%ld.%ld", id_base, n);
    size_t o = 0;
    for (size_t i = 0; i < tmpl_len;) {
        if (i + 4 <= tmpl_len && memcmp(tmpl + i, "{ID}", 4) == 0) {
            if (o + id_len >= cap) break;
            memcpy(out + o, id, id_len);
            o += id_len;
            i += 4;
        } else {
            if (o + 1 >= cap) break;
            out[o++] = tmpl[i++];
        }
    }
    return o;
}

static void start_call(void) {
    if (next_call >= total_calls) return;
    next_call++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (fd >= MAX_FDS) { errno = EMFILE; die("socket"); }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  /* as asyncio's transports */
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS)
        die("connect");
    calls[fd].active = 1;
    calls[fd].connected = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void end_call(int fd) {
    holds[done_calls++] = now() - calls[fd].started;
    calls[fd].active = 0;
    close(fd);  /* also leaves the epoll set */
    start_call();
}

static void connected(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { errno = err; die("connect"); }
    calls[fd].connected = 1;
    calls[fd].started = now();
    char block[sizeof tmpl + 256];
    size_t n = env_block(next_call - 1, block, sizeof block);
    if (write(fd, block, n) != (ssize_t)n) die("write of the environment");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl");
}

static void readable(int fd) {
    char buf[16384];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got > 0) {
            /* every complete line is a command: one reply each */
            for (ssize_t i = 0; i < got; i++)
                if (buf[i] == '\n' && write(fd, REPLY, sizeof REPLY - 1) < 0 && errno != EPIPE
                    && errno != ECONNRESET)
                    die("write of a reply");
            continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
            end_call(fd);  /* the server ended the session (EOF or reset) */
            return;
        }
        if (errno == EAGAIN) return;
    }
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: agi_caller PORT CALLS CONCURRENCY TEMPLATE\n");
        return 2;
    }
    int port = atoi(argv[1]);
    total_calls = atol(argv[2]);
    long concurrency = atol(argv[3]);
    FILE *f = fopen(argv[4], "rb");
    if (!f) die(argv[4]);
    tmpl_len = fread(tmpl, 1, sizeof tmpl - 1, f);
    fclose(f);
    if (port <= 0 || total_calls <= 0 || concurrency <= 0) {
        fprintf(stderr, "agi_caller: PORT, CALLS and CONCURRENCY must be positive\n");
        return 2;
    }
    holds = calloc(total_calls, sizeof *holds);
    if (!holds) die("calloc");
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    /* milliseconds, as the asyncio callers': a run started in the second of the one before
       (the warm-up) gives new ids, not ones the outbox has and answers at less cost */
    id_base = (long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");

    double began = now();
    for (long i = 0; i < concurrency; i++) start_call();
    struct epoll_event events[256];
    while (done_calls < total_calls) {
        int n = epoll_wait(epfd, events, 256, 10000);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        if (n == 0) { errno = ETIMEDOUT; die("no progress in 10 s"); }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (!calls[fd].active) continue;
            if (!calls[fd].connected) {
                if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connected(fd);
            } else {
                readable(fd);
            }
        }
    }
    double elapsed = now() - began;
    for (long i = 0; i < total_calls; i++) printf("%.9f\n", holds[i]);
    printf("rate %.1f\n", total_calls / elapsed);
    return 0;
}
