/* fork.c - the fork generation (fork.h). */
#include "fork.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_uint fork_gen;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

/* Runs in the child of every fork(), before fork() returns there. */
static void on_fork_child(void) { atomic_fetch_add(&fork_gen, 1); }

static void watch(void) { pthread_atfork(NULL, NULL, on_fork_child); }

unsigned dl_fork_gen(void) {
    pthread_once(&watch_once, watch);
    return atomic_load(&fork_gen);
}
