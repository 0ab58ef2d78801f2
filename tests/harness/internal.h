/* internal.h - shared between the harness source files; not for tests. */
#ifndef DLOCK_TEST_HARNESS_INTERNAL_H
#define DLOCK_TEST_HARNESS_INTERNAL_H

#include <sys/types.h>

/* Process registry (proc.c). Async-signal-safe to read: the timeout handler
 * walks it. A slot holds the pid to SIGKILL (0: none running), the pid of the
 * owning process and, for servers, the directory to remove (dir NULL marks a
 * plain child, which the exit cleanup kills before the servers). */
int th__reg_add(pid_t pid, const char *dir); /* slot index, or -1 if full */
void th__reg_set_pid(int slot, pid_t pid);
void th__reg_del(int slot);

/* Runs fn from the atexit handler of the process (at most once per fn). */
void th__at_cleanup(void (*fn)(void));

/* Removes dir and everything below it. Async-signal-safe. */
void th__rm_tree(const char *dir);

/* Blocks all signals in the calling thread; returns the old mask in *old. */
#include <signal.h>
void th__block_signals(sigset_t *old);

#endif
