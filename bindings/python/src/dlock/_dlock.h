/* _dlock.h - what the three files of the extension share: the Client and
 * Lock objects, the per-client mutex, errors and result types.
 *
 * Threads. A dlock_client is used by one thread at a time. Each Client
 * object has a mutex (pd_mutex) that every call into its dlock_client takes,
 * the blocking calls with the GIL released around the C call, so two Python
 * threads never run one C client at once and the others keep running while
 * one blocks. The mutex is re-entrant for the thread that holds it:
 * dlock_client_process runs our callbacks with it held, and a callback may
 * free a Lock of the same client.
 *
 * The async engine's callbacks run inside dlock_client_process, which is
 * only ever called from Python (Client._process), so the GIL is held there.
 * The thread keepalive's on_lost runs on dlock's keepalive thread and takes
 * the GIL itself (on_lost in _dlock_lock.c). */
#ifndef PD_DLOCK_H
#define PD_DLOCK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "dlock.h"

typedef struct pd_mutex {
    PyThread_type_lock mu;
    unsigned long owner; /* thread holding mu (read and written under the GIL), 0 if none */
    int depth;
} pd_mutex;

typedef struct ClientObject {
    PyObject_HEAD
    dlock_client *c;
    pd_mutex mu;
    PyObject *pending; /* dict: async op id -> (callback, object kept alive) */
    PyObject *notify;  /* callable run by dlock_client_set_notify, or NULL */
    PyObject *sockets; /* callable(fd, events) of dlock_client_set_socket_fn, or NULL */
    PyObject *driver;  /* free slot for the Python layer (its asyncio driver) */
    PyObject *weakrefs;
} ClientObject;

/* What an on_lost needs, owned by the Lock and never by a callback: the
 * callable and a weak reference to the Lock (the keepalive thread may run
 * the callback while the Lock is being deallocated). */
typedef struct pd_lostbox {
    PyObject *fn;
    PyObject *wref;
} pd_lostbox;

typedef struct LockObject {
    PyObject_HEAD
    ClientObject *client; /* strong: the C client must outlive the handle */
    dlock_lock *l;
    pd_lostbox *box; /* the keepalive's on_lost, or NULL */
    PyObject *weakrefs;
} LockObject;

/* _dlock_module.c */
extern PyTypeObject PdClient_Type;
extern PyTypeObject PdLock_Type;
extern PyTypeObject *pd_lock_class;  /* Lock or the subclass the Python layer registered */
extern PyTypeObject *pd_holder_type; /* struct sequence Holder */
extern PyTypeObject *pd_info_type;   /* struct sequence LockInfo */
extern int pd_exiting; /* the interpreter is exiting: run no more on_lost */

int pd_mutex_init(pd_mutex *m);
void pd_mutex_free(pd_mutex *m);
/* Take / give back the client mutex; call with the GIL held. Waits with
 * the GIL released. */
void pd_lock(pd_mutex *m);
void pd_unlock(pd_mutex *m);

/* A str from C text that may not be UTF-8 (lock names are any bytes). */
PyObject *pd_str(const char *s);
/* The exception for status with detail (falls back to the description). */
PyObject *pd_error_new(int status, const char *detail);
/* Raise it; returns NULL. */
PyObject *pd_raise(int status, const char *detail);
/* Raise for a failed call on client c: its dlock_client_errstr. Call with
 * c's mutex still held (the detail is valid until the next call). */
PyObject *pd_raise_client(ClientObject *c, int status);

/* A lock name from str (UTF-8) or bytes: no NUL, checked by the library
 * for length. *keep holds the bytes until Py_XDECREF. */
int pd_name(PyObject *o, const char **name, PyObject **keep);
/* Holder for an inspect result. */
PyObject *pd_holder_new(const dlock_holder *h);

/* _dlock_lock.c */
/* Wrap l (ownership passes to the new object) acquired through client.
 * On failure l is freed (its lease ends by its TTL) and NULL returned. */
PyObject *pd_lock_wrap(ClientObject *client, dlock_lock *l);

/* _dlock_client.c */
/* Call a Python callback from C; an exception it raises is reported as
 * unraisable (there is no caller to give it to). Steals args. */
void pd_call_unraisable(PyObject *fn, PyObject *args);

#endif
