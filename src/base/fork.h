/* fork.h - telling a child process from the one that created an object.
 * A counter that a pthread_atfork child handler bumps: an object records
 * the value when it is made, and a different value later means this is a
 * child (or grandchild) of the process that made it. No system call. */
#ifndef DLOCK_FORK_H
#define DLOCK_FORK_H

#include "ctx.h"

/* The current fork generation: 0 in a process that has not forked since
 * the first call (which registers the handler), one more in each child.
 * Any thread; async-signal-safe after the first call. */
DL_INTERNAL unsigned dl_fork_gen(void);

#endif
