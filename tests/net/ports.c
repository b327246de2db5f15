/*
 * evr-ports N — prints N free TCP ports on 127.0.0.1, one per line, as the
 * kernel hands them out (bound to port 0, then released). Another program
 * may take one before the test binds it; the server then fails with "address
 * in use" and says so.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORTS_MAX 64

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > PORTS_MAX) {
        fprintf(stderr, "usage: evr-ports N (1..%d)\n", PORTS_MAX);
        return 2;
    }
    int fds[PORTS_MAX];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            perror("evr-ports");
            return 1;
        }
        printf("%d\n", ntohs(a.sin_port));
    }
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    return 0;
}
