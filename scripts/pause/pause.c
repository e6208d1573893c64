/*
 * pause: PID 1 of a pod sandbox, written for minikube-py.
 *
 * It holds the pod's namespaces open and does nothing else, except the two
 * jobs the kernel gives to the init of a PID namespace:
 *   - exit on SIGTERM/SIGINT, with status 0, so `docker stop` is prompt
 *     (PID 1 gets no default signal action: without handlers both signals
 *     would be ignored and docker would SIGKILL after its grace period);
 *   - reap orphans re-parented to it, so no zombie outlives its process.
 *
 * Signals stay blocked except inside sigsuspend(), so a signal cannot slip
 * in between "check the flags" and "go to sleep" (no lost wake-ups).
 *
 * Build: gcc -static -O2 -s -o pause pause.c
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "3.10-minikube-py"

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

/* Only wakes sigsuspend(); the reaping happens in the main loop. */
static void on_child(int sig) { (void)sig; }

static void handle(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = (sig == SIGCHLD) ? SA_NOCLDSTOP : 0;
    if (sigaction(sig, &sa, NULL) != 0) {
        perror("pause: sigaction");
        _exit(2);
    }
}

static void reap_children(void) {
    /* One SIGCHLD may stand for many exits: loop until none is left. */
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid > 0) continue;
        if (pid < 0 && errno == EINTR) continue;
        return; /* 0: children still running; -1/ECHILD: none at all */
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("pause %s\n", VERSION);
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not PID 1, orphans will not come to me\n");
    }

    sigset_t blocked, during_wait;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGCHLD);
    /* during_wait = the inherited mask minus our three signals, which a parent
     * might have left blocked across exec. */
    if (sigprocmask(SIG_BLOCK, &blocked, &during_wait) != 0) {
        perror("pause: sigprocmask");
        return 2;
    }
    sigdelset(&during_wait, SIGTERM);
    sigdelset(&during_wait, SIGINT);
    sigdelset(&during_wait, SIGCHLD);

    handle(SIGTERM, on_stop);
    handle(SIGINT, on_stop);
    handle(SIGCHLD, on_child);

    for (;;) {
        reap_children();
        if (stop_signal) return 0;
        sigsuspend(&during_wait); /* always returns -1/EINTR after a handler ran */
    }
}
