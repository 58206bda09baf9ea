/* The motivating macOS bug, small enough to read in a minute.
 *
 * A supervisor hands work to a child over a unix socket. The child writes a ready-frame and exits
 * (closing its end). The supervisor reaps the child, then reads the frame, arming SO_RCVTIMEO before
 * each read so a stuck child cannot hang it.
 *
 * On Linux that always works: setsockopt succeeds and the read returns the buffered frame. On macOS
 * the socket is "fully shut down" once the peer has closed, and setsockopt fails with EINVAL
 * (xnu sosetoptlock). The naive supervisor treats that as fatal and aborts a handoff that actually
 * completed. Linux CI never sees it; `chaos-ctl run --platform macos` does, every time.
 *
 *   naive: any setsockopt error is fatal.
 *   fixed: on EINVAL, check with poll() that the read cannot block (the frame or EOF is already
 *          there), then read without the timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fixed = argc > 1 && !strcmp(argv[1], "fixed");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { perror("socketpair"); return 2; }
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        const char frame[] = "READY\n";
        /* Short writes happen (chaos's benign profile found this loop missing in the first draft). */
        for (size_t off = 0; off < sizeof frame - 1;) {
            ssize_t n = write(sv[1], frame + off, sizeof frame - 1 - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) _exit(3);
            off += n;
        }
        _exit(0);
    }
    close(sv[1]);
    int status;
    waitpid(child, &status, 0); /* the handoff is complete; now collect the child's frame */

    char frame[64];
    size_t got = 0;
    while (got < sizeof frame - 1) {
        struct timeval tv = {2, 0};
        if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
            int e = errno;
            struct pollfd p = {.fd = sv[0], .events = POLLIN};
            if (!(fixed && e == EINVAL && poll(&p, 1, 0) == 1)) {
                fprintf(stderr, "supervisor: arming the receive timeout failed: %s; aborting handoff\n", strerror(e));
                return 1;
            }
            /* Fully shut down: the frame (or EOF) is already buffered, so this read cannot block. */
        }
        ssize_t n = read(sv[0], frame + got, sizeof frame - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
        if (frame[got - 1] == '\n') break;
    }
    frame[got] = 0;
    if (strcmp(frame, "READY\n")) { fprintf(stderr, "supervisor: bad frame '%s'\n", frame); return 1; }
    printf("handoff complete: READY\n");
    return 0;
}
