/* Syscall-bound loop for `make bench`: ITER round trips of send(16 B) + recv(16 B) on a unix
 * socketpair, in one thread. Prints nanoseconds per intercepted call (two calls per round trip). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
    long iter = argc > 1 ? atol(argv[1]) : 1000000;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    char buf[16] = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < iter; i++) {
        if (send(sv[0], buf, sizeof buf, 0) != sizeof buf) return 2;
        if (recv(sv[1], buf, sizeof buf, 0) != sizeof buf) return 3;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / (2.0 * iter));
    return 0;
}
