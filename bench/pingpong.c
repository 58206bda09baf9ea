/* Syscall-bound loops for `make bench`, on a unix socketpair in one thread. MODE:
 *   plain  send(16 B) + recv(16 B)                       2 intercepted calls per round
 *   poll   send + poll(POLLIN) + recv                    3 calls per round
 *   epoll  send + epoll_wait (level-triggered) + recv    3 calls per round
 *   churn  epoll_create1 + epoll_ctl(ADD) + close         reported per cycle: closing an epoll fd
 *          must cost the shim no scan of its whole registration table
 *   file   pwrite(16 B) + pread(16 B) on a regular file  2 calls per round (the file fast path)
 * Prints nanoseconds per intercepted call. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long iter = argc > 1 ? atol(argv[1]) : 1000000;
    const char *mode = argc > 2 ? argv[2] : "plain";
    int calls = strcmp(mode, "plain") && strcmp(mode, "file") ? 3 : 2;
    if (!strcmp(mode, "churn")) calls = 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[1]}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
    struct pollfd p = {.fd = sv[1], .events = POLLIN};
    char buf[16] = {0};
    char path[] = "/tmp/chaos-bench-XXXXXX";
    int file = -1;
    if (!strcmp(mode, "file")) {
        file = mkstemp(path);
        if (file < 0) return 7;
        unlink(path);
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; mode[0] == 'c' && i < iter; i++) {
        int e = epoll_create1(0);
        if (e < 0 || epoll_ctl(e, EPOLL_CTL_ADD, sv[0], &ev)) return 6;
        close(e);
    }
    for (long i = 0; file >= 0 && i < iter; i++) {
        if (pwrite(file, buf, sizeof buf, 0) != sizeof buf) return 8;
        if (pread(file, buf, sizeof buf, 0) != sizeof buf) return 9;
    }
    for (long i = 0; mode[0] != 'c' && file < 0 && i < iter; i++) {
        if (send(sv[0], buf, sizeof buf, 0) != sizeof buf) return 2;
        if (mode[0] == 'p' && mode[1] == 'o' && poll(&p, 1, -1) != 1) return 4;
        if (mode[0] == 'e' && epoll_wait(ep, &out, 1, -1) != 1) return 5;
        if (recv(sv[1], buf, sizeof buf, 0) != sizeof buf) return 3;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / ((double)calls * iter));
    return 0;
}
