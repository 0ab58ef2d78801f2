/* _dlock_client.c - the Client type: one dlock_client, its blocking calls
 * (run with the GIL released, under the client's mutex) and the primitives
 * the asyncio driver in dlock/_aio.py is built from: async starts that take
 * a Python callback, the engine's fd, timeout, process and cancel.
 *
 * An async operation's callback is kept in self->pending under the op id
 * the start returned, with whatever must outlive the operation (the Lock a
 * release or extend works on). The C callback (ud = the Client) pops it and
 * calls it with (status, value, detail): value is the new Lock of an
 * acquire, the Holder of an inspect, else None. */
#include "_dlock.h"

#include <string.h>

#define PD_DEFAULT_TTL 10000 /* ms, as the dlock tool's --ttl */

void pd_call_unraisable(PyObject *fn, PyObject *args) {
    if (args == NULL) {
        PyErr_WriteUnraisable(fn);
        return;
    }
    PyObject *r = PyObject_Call(fn, args, NULL);
    Py_DECREF(args);
    if (r == NULL)
        PyErr_WriteUnraisable(fn);
    Py_XDECREF(r);
}

static int check_client(ClientObject *self) {
    if (self->c != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "dlock client is not initialised");
    return -1;
}

/* ---- life cycle ---- */

static int opt_int(PyObject *o, const char *what, long lo, long hi, int *out) {
    if (o == Py_None)
        return 0;
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be %ld..%ld, not %ld", what, lo, hi, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

typedef struct pd_optargs {
    PyObject *prefix, *label, *connect, *command, *retries, *delay, *max_delay, *jitter;
    PyObject *drift, *fencing, *waiting, *replicas, *replica_timeout, *pid;
} pd_optargs;

/* Options from keyword arguments; None keeps the library's default. */
static int fill_options(const pd_optargs *a, dlock_options *o) {
    dlock_options_init(o);
    if (a->prefix != Py_None && (o->key_prefix = PyUnicode_AsUTF8(a->prefix)) == NULL)
        return -1;
    if (a->label != Py_None && (o->owner_label = PyUnicode_AsUTF8(a->label)) == NULL)
        return -1;
    if (opt_int(a->connect, "connect_timeout", 1, 86400000, &o->connect_timeout_ms) < 0 ||
        opt_int(a->command, "command_timeout", 1, 86400000, &o->command_timeout_ms) < 0 ||
        opt_int(a->retries, "retry_count", 0, 1000000, &o->retry_count) < 0 ||
        opt_int(a->delay, "retry_delay", 0, 86400000, &o->retry_delay_ms) < 0 ||
        opt_int(a->max_delay, "retry_max_delay", 0, 86400000, &o->retry_max_delay_ms) < 0 ||
        opt_int(a->jitter, "retry_jitter", 0, 100, &o->retry_jitter_pct) < 0 ||
        opt_int(a->replicas, "replicas", 0, 1000, &o->replicas) < 0 ||
        opt_int(a->replica_timeout, "replica_timeout", 0, 86400000, &o->replica_timeout_ms) < 0)
        return -1;
    if (a->drift != Py_None && ((o->drift_factor = PyFloat_AsDouble(a->drift)) == -1.0 &&
                                PyErr_Occurred()))
        return -1;
    if (a->fencing != Py_None && (o->fencing = PyObject_IsTrue(a->fencing)) < 0)
        return -1;
    if (a->pid != Py_None && ((o->owner_pid = PyLong_AsLong(a->pid)) == -1 && PyErr_Occurred()))
        return -1;
    if (a->waiting != Py_None) {
        const char *w = PyUnicode_Check(a->waiting) ? PyUnicode_AsUTF8(a->waiting) : NULL;
        if (w != NULL && strcmp(w, "push") == 0)
            o->waiting = DLOCK_WAIT_PUSH;
        else if (w != NULL && strcmp(w, "poll") == 0)
            o->waiting = DLOCK_WAIT_POLL;
        else {
            PyErr_SetString(PyExc_ValueError, "waiting must be 'push' or 'poll'");
            return -1;
        }
    }
    return 0;
}

static int client_init(ClientObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"url", "key_prefix", "owner_label", "connect_timeout",
                             "command_timeout", "retry_count", "retry_delay",
                             "retry_max_delay", "retry_jitter", "drift_factor", "fencing",
                             "waiting", "replicas", "replica_timeout", "owner_pid", NULL};
    const char *url;
    pd_optargs a;
    a.prefix = a.label = a.connect = a.command = a.retries = a.delay = a.max_delay = Py_None;
    a.jitter = a.drift = a.fencing = a.waiting = a.replicas = a.replica_timeout = Py_None;
    a.pid = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|$OOOOOOOOOOOOOO", kwlist, &url, &a.prefix,
                                     &a.label, &a.connect, &a.command, &a.retries, &a.delay,
                                     &a.max_delay, &a.jitter, &a.drift, &a.fencing, &a.waiting,
                                     &a.replicas, &a.replica_timeout, &a.pid))
        return -1;
    if (self->c != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Client.__init__ called twice");
        return -1;
    }
    dlock_options o;
    if (fill_options(&a, &o) < 0)
        return -1;
    dlock_client *c = NULL;
    int rc = dlock_client_new(&c, url, &o); /* no I/O: connections are lazy */
    if (rc != DLOCK_OK) {
        pd_raise(rc, c != NULL ? dlock_client_errstr(c) : NULL);
        dlock_client_free(c);
        return -1;
    }
    if (pd_mutex_init(&self->mu) < 0) {
        dlock_client_free(c);
        PyErr_NoMemory();
        return -1;
    }
    self->pending = PyDict_New();
    if (self->pending == NULL) {
        dlock_client_free(c);
        return -1;
    }
    self->c = c;
    return 0;
}

static int client_traverse(ClientObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->pending);
    Py_VISIT(self->notify);
    Py_VISIT(self->sockets);
    Py_VISIT(self->driver);
    return 0;
}

static int client_clear(ClientObject *self) {
    Py_CLEAR(self->pending);
    Py_CLEAR(self->notify);
    Py_CLEAR(self->sockets);
    Py_CLEAR(self->driver);
    return 0;
}

static void client_dealloc(ClientObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    client_clear(self);
    if (self->c != NULL) {
        /* No Lock is left (each holds the client), so no on_lost can run;
         * the keepalive thread is joined without the GIL all the same. */
        dlock_client *c = self->c;
        self->c = NULL;
        Py_BEGIN_ALLOW_THREADS
        dlock_client_free(c);
        Py_END_ALLOW_THREADS
    }
    pd_mutex_free(&self->mu);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- blocking calls ---- */

enum { PD_ACQUIRE, PD_TRY, PD_WAIT };

static PyObject *acquire_common(ClientObject *self, int kind, PyObject *args, PyObject *kw) {
    static char *kw_ttl[] = {"name", "ttl", NULL};
    static char *kw_wait[] = {"name", "timeout", "ttl", NULL};
    PyObject *nameo, *keep;
    long long ttl = PD_DEFAULT_TTL, timeout = 0;
    int ok = kind == PD_WAIT
                 ? PyArg_ParseTupleAndKeywords(args, kw, "OL|L", kw_wait, &nameo, &timeout, &ttl)
                 : PyArg_ParseTupleAndKeywords(args, kw, "O|L", kw_ttl, &nameo, &ttl);
    const char *name;
    if (!ok || check_client(self) < 0 || pd_name(nameo, &name, &keep) < 0)
        return NULL;
    dlock_lock *l = NULL;
    int rc;
    pd_lock(&self->mu);
    Py_BEGIN_ALLOW_THREADS
    if (kind == PD_ACQUIRE)
        rc = dlock_acquire(self->c, name, ttl, &l);
    else if (kind == PD_TRY)
        rc = dlock_try_acquire(self->c, name, ttl, &l);
    else
        rc = dlock_wait(self->c, name, timeout, ttl, &l);
    Py_END_ALLOW_THREADS
    Py_DECREF(keep);
    if (rc != DLOCK_OK) {
        PyObject *r = NULL;
        if (kind == PD_TRY && rc == DLOCK_EBUSY)
            r = Py_NewRef(Py_None); /* the seed's tryAcquire: null when held */
        else
            pd_raise_client(self, rc);
        pd_unlock(&self->mu);
        return r;
    }
    pd_unlock(&self->mu);
    return pd_lock_wrap(self, l);
}

static PyObject *client_acquire(ClientObject *self, PyObject *args, PyObject *kw) {
    return acquire_common(self, PD_ACQUIRE, args, kw);
}

static PyObject *client_try_acquire(ClientObject *self, PyObject *args, PyObject *kw) {
    return acquire_common(self, PD_TRY, args, kw);
}

static PyObject *client_wait(ClientObject *self, PyObject *args, PyObject *kw) {
    return acquire_common(self, PD_WAIT, args, kw);
}

/* dlock_inspect on a name object: 0, or -1 with the exception set. */
static int inspect_name(ClientObject *self, PyObject *nameo, dlock_holder *h) {
    PyObject *keep;
    const char *name;
    if (check_client(self) < 0 || pd_name(nameo, &name, &keep) < 0)
        return -1;
    int rc;
    pd_lock(&self->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = dlock_inspect(self->c, name, h);
    Py_END_ALLOW_THREADS
    Py_DECREF(keep);
    if (rc != DLOCK_OK)
        pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return rc == DLOCK_OK ? 0 : -1;
}

static PyObject *client_inspect(ClientObject *self, PyObject *nameo) {
    dlock_holder h;
    return inspect_name(self, nameo, &h) < 0 ? NULL : pd_holder_new(&h);
}

/* As dlock_is_locked, which is this same INSPECT. */
static PyObject *client_is_locked(ClientObject *self, PyObject *nameo) {
    dlock_holder h;
    return inspect_name(self, nameo, &h) < 0 ? NULL : PyBool_FromLong(h.locked);
}

/* release_token(name, token) / extend_token(name, token, ttl) */
static PyObject *by_token(ClientObject *self, PyObject *args, int extend) {
    PyObject *nameo, *keep;
    const char *name, *token;
    long long ttl = 0;
    int ok = extend ? PyArg_ParseTuple(args, "OsL", &nameo, &token, &ttl)
                    : PyArg_ParseTuple(args, "Os", &nameo, &token);
    if (!ok || check_client(self) < 0 || pd_name(nameo, &name, &keep) < 0)
        return NULL;
    int rc;
    pd_lock(&self->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = extend ? dlock_extend_token(self->c, name, token, ttl)
                : dlock_release_token(self->c, name, token);
    Py_END_ALLOW_THREADS
    Py_DECREF(keep);
    if (rc != DLOCK_OK)
        pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return rc == DLOCK_OK ? Py_NewRef(Py_None) : NULL;
}

static PyObject *client_release_token(ClientObject *self, PyObject *args) {
    return by_token(self, args, 0);
}

static PyObject *client_extend_token(ClientObject *self, PyObject *args) {
    return by_token(self, args, 1);
}

static PyObject *client_ping(ClientObject *self, PyObject *unused) {
    (void)unused;
    if (check_client(self) < 0)
        return NULL;
    int rc;
    pd_lock(&self->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = dlock_client_ping(self->c);
    Py_END_ALLOW_THREADS
    if (rc != DLOCK_OK)
        pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return rc == DLOCK_OK ? Py_NewRef(Py_None) : NULL;
}

/* ---- async primitives (driven by dlock/_aio.py on the loop's thread) ---- */

/* The pending entry of op, removed; NULL if there is none. */
static PyObject *pop_pending(ClientObject *self, uint64_t op) {
    if (self->pending == NULL)
        return NULL;
    PyObject *key = PyLong_FromUnsignedLongLong(op);
    if (key == NULL)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(self->pending, key);
    Py_XINCREF(entry);
    if (entry != NULL)
        PyDict_DelItem(self->pending, key);
    Py_DECREF(key);
    PyErr_Clear();
    return entry;
}

/* The C callback of every async op. Runs inside dlock_client_process,
 * which only Client._process calls, with the mutex held (and the GIL:
 * PyGILState_Ensure costs nothing then). */
static void on_done(const dlock_result *r, void *ud, int kind) {
    ClientObject *self = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *entry = pop_pending(self, r->op);
    dlock_lock *fresh = kind == 'a' && r->status == DLOCK_OK ? r->lock : NULL;
    if (entry == NULL) { /* cleared by the garbage collector: nobody to tell */
        dlock_lock_free(fresh);
        PyGILState_Release(g);
        return;
    }
    PyObject *value = Py_None;
    if (fresh != NULL)
        value = pd_lock_wrap(self, fresh);
    else if (kind == 'i' && r->status == DLOCK_OK)
        value = pd_holder_new(r->holder);
    else
        Py_INCREF(value);
    PyObject *fn = PyTuple_GET_ITEM(entry, 0);
    if (value == NULL) {
        PyErr_WriteUnraisable(fn);
        value = Py_NewRef(Py_None);
    }
    pd_call_unraisable(fn, Py_BuildValue("iNN", r->status, value, pd_str(r->detail)));
    Py_DECREF(entry);
    PyGILState_Release(g);
}

static void on_done_acquire(const dlock_result *r, void *ud) { on_done(r, ud, 'a'); }
static void on_done_inspect(const dlock_result *r, void *ud) { on_done(r, ud, 'i'); }
static void on_done_handle(const dlock_result *r, void *ud) { on_done(r, ud, 'h'); }

/* Remember fn (and keep) under op; the op id is returned to Python. */
static PyObject *register_op(ClientObject *self, uint64_t op, PyObject *fn, PyObject *keep) {
    PyObject *key = PyLong_FromUnsignedLongLong(op);
    PyObject *entry = key ? PyTuple_Pack(2, fn, keep ? keep : Py_None) : NULL;
    if (entry == NULL || PyDict_SetItem(self->pending, key, entry) < 0) {
        /* The op runs on; its callback will find no entry. */
        Py_XDECREF(entry);
        Py_XDECREF(key);
        return NULL;
    }
    Py_DECREF(entry);
    return key;
}

static int check_async(ClientObject *self, PyObject *fn) {
    if (check_client(self) < 0)
        return -1;
    if (self->pending == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "dlock client was cleared");
        return -1;
    }
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable");
        return -1;
    }
    return 0;
}

static PyObject *async_acquire_common(ClientObject *self, PyObject *args, int kind) {
    PyObject *nameo, *fn, *keep;
    long long ttl, timeout = 0;
    int ok = kind == PD_WAIT ? PyArg_ParseTuple(args, "OLLO", &nameo, &timeout, &ttl, &fn)
                             : PyArg_ParseTuple(args, "OLO", &nameo, &ttl, &fn);
    const char *name;
    if (!ok || check_async(self, fn) < 0 || pd_name(nameo, &name, &keep) < 0)
        return NULL;
    uint64_t op = 0;
    int rc;
    pd_lock(&self->mu);
    if (kind == PD_ACQUIRE)
        rc = dlock_acquire_async(self->c, name, ttl, on_done_acquire, self, &op);
    else if (kind == PD_TRY)
        rc = dlock_try_acquire_async(self->c, name, ttl, on_done_acquire, self, &op);
    else
        rc = dlock_wait_async(self->c, name, timeout, ttl, on_done_acquire, self, &op);
    Py_DECREF(keep);
    PyObject *r = rc == DLOCK_OK ? register_op(self, op, fn, NULL) : pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_acquire_async(ClientObject *self, PyObject *args) {
    return async_acquire_common(self, args, PD_ACQUIRE);
}

static PyObject *client_try_acquire_async(ClientObject *self, PyObject *args) {
    return async_acquire_common(self, args, PD_TRY);
}

static PyObject *client_wait_async(ClientObject *self, PyObject *args) {
    return async_acquire_common(self, args, PD_WAIT);
}

static PyObject *client_inspect_async(ClientObject *self, PyObject *args) {
    PyObject *nameo, *fn, *keep;
    const char *name;
    if (!PyArg_ParseTuple(args, "OO", &nameo, &fn) || check_async(self, fn) < 0 ||
        pd_name(nameo, &name, &keep) < 0)
        return NULL;
    uint64_t op = 0;
    pd_lock(&self->mu);
    int rc = dlock_inspect_async(self->c, name, on_done_inspect, self, &op);
    Py_DECREF(keep);
    PyObject *r = rc == DLOCK_OK ? register_op(self, op, fn, NULL) : pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return r;
}

/* For _dlock_lock.c: release (ttl < 0) or extend lock asynchronously. */
PyObject *pd_handle_async(LockObject *lock, long long ttl, PyObject *fn);
PyObject *pd_handle_async(LockObject *lock, long long ttl, PyObject *fn) {
    ClientObject *self = lock->client;
    if (check_async(self, fn) < 0)
        return NULL;
    uint64_t op = 0;
    int rc;
    pd_lock(&self->mu);
    /* Both may wait for a keepalive thread's extension or on_lost (which
     * takes the GIL); the engine's notify takes it back by itself. */
    Py_BEGIN_ALLOW_THREADS
    if (ttl < 0)
        rc = dlock_release_async(lock->l, on_done_handle, self, &op);
    else
        rc = dlock_extend_async(lock->l, ttl, on_done_handle, self, &op);
    Py_END_ALLOW_THREADS
    PyObject *r = rc == DLOCK_OK ? register_op(self, op, fn, (PyObject *)lock)
                                 : pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_fd(ClientObject *self, PyObject *unused) {
    (void)unused;
    if (check_client(self) < 0)
        return NULL;
    pd_lock(&self->mu);
    int fd = dlock_client_fd(self->c);
    /* The starts report ENOTSUP for deployments the engine does not drive,
     * and the driver asks for the fd only after a start succeeded: what is
     * left is the engine's own set-up failing (epoll, getrandom). */
    PyObject *r = fd >= 0 ? PyLong_FromLong(fd) : pd_raise_client(self, DLOCK_EIO);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_timeout(ClientObject *self, PyObject *unused) {
    (void)unused;
    if (check_client(self) < 0)
        return NULL;
    pd_lock(&self->mu);
    int64_t t = dlock_client_timeout(self->c);
    pd_unlock(&self->mu);
    return PyLong_FromLongLong(t);
}

static PyObject *client_process(ClientObject *self, PyObject *unused) {
    (void)unused;
    if (check_client(self) < 0)
        return NULL;
    pd_lock(&self->mu);
    int n = dlock_client_process(self->c);
    PyObject *r = n >= 0 ? PyLong_FromLong(n) : pd_raise_client(self, n);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_cancel(ClientObject *self, PyObject *arg) {
    unsigned long long op = PyLong_AsUnsignedLongLong(arg);
    if ((op == (unsigned long long)-1 && PyErr_Occurred()) || check_client(self) < 0)
        return NULL;
    pd_lock(&self->mu);
    int rc = dlock_op_cancel(self->c, op);
    pd_unlock(&self->mu);
    return PyBool_FromLong(rc == DLOCK_OK); /* False: finished, its callback is due */
}

/* From an async start, cancel or keepalive start: on the calling thread,
 * which may have released the GIL around it. */
static void on_notify(dlock_client *c, void *ud) {
    (void)c;
    ClientObject *self = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = self->notify; /* a reference of our own: fn may replace itself */
    if (fn != NULL) {
        Py_INCREF(fn);
        pd_call_unraisable(fn, PyTuple_New(0));
        Py_DECREF(fn);
    }
    PyGILState_Release(g);
}

static PyObject *client_set_notify(ClientObject *self, PyObject *fn) {
    if (check_client(self) < 0)
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "notify must be callable or None");
        return NULL;
    }
    pd_lock(&self->mu);
    Py_XSETREF(self->notify, fn == Py_None ? NULL : Py_NewRef(fn));
    dlock_client_set_notify(self->c, self->notify ? on_notify : NULL, self);
    pd_unlock(&self->mu);
    Py_RETURN_NONE;
}

/* The engine's socket function: the driver watches fd for events (0:
 * no more). From inside dlock calls, some made without the GIL. */
static void on_socket(dlock_client *c, int fd, int events, void *ud) {
    (void)c;
    ClientObject *self = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = self->sockets;
    if (fn != NULL) {
        Py_INCREF(fn);
        pd_call_unraisable(fn, Py_BuildValue("(ii)", fd, events));
        Py_DECREF(fn);
    }
    PyGILState_Release(g);
}

static PyObject *client_set_sockets(ClientObject *self, PyObject *fn) {
    if (check_client(self) < 0)
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "sockets must be callable or None");
        return NULL;
    }
    pd_lock(&self->mu);
    /* A new fn hears of the sockets already watched; the old one is told 0
     * for each before it goes. */
    if (fn != Py_None)
        Py_XSETREF(self->sockets, Py_NewRef(fn));
    int rc = dlock_client_set_socket_fn(self->c, fn != Py_None ? on_socket : NULL, self);
    if (fn == Py_None && rc == DLOCK_OK)
        Py_CLEAR(self->sockets);
    PyObject *r = rc == DLOCK_OK ? Py_NewRef(Py_None) : pd_raise_client(self, rc);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_process_fd(ClientObject *self, PyObject *args) {
    int fd, events;
    if (!PyArg_ParseTuple(args, "ii", &fd, &events) || check_client(self) < 0)
        return NULL;
    pd_lock(&self->mu);
    int n = dlock_client_process_fd(self->c, fd, events);
    PyObject *r = n >= 0 ? PyLong_FromLong(n) : pd_raise_client(self, n);
    pd_unlock(&self->mu);
    return r;
}

static PyObject *client_pending(ClientObject *self, void *closure) {
    (void)closure;
    return PyLong_FromSsize_t(self->pending ? PyDict_Size(self->pending) : 0);
}

static PyObject *client_get_driver(ClientObject *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->driver ? self->driver : Py_None);
}

static int client_set_driver(ClientObject *self, PyObject *v, void *closure) {
    (void)closure;
    Py_XSETREF(self->driver, v == NULL || v == Py_None ? NULL : Py_NewRef(v));
    return 0;
}

static PyMethodDef client_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))client_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(name, ttl=10000) -> Lock. Retries with backoff; raises LockBusy."},
    {"try_acquire", (PyCFunction)(void (*)(void))client_try_acquire,
     METH_VARARGS | METH_KEYWORDS, "try_acquire(name, ttl=10000) -> Lock, or None if held."},
    {"wait", (PyCFunction)(void (*)(void))client_wait, METH_VARARGS | METH_KEYWORDS,
     "wait(name, timeout, ttl=10000) -> Lock. Waits up to timeout ms; raises Timeout."},
    {"inspect", (PyCFunction)client_inspect, METH_O, "inspect(name) -> Holder."},
    {"is_locked", (PyCFunction)client_is_locked, METH_O, "is_locked(name) -> bool."},
    {"release_token", (PyCFunction)client_release_token, METH_VARARGS,
     "release_token(name, token): release name if it carries token."},
    {"extend_token", (PyCFunction)client_extend_token, METH_VARARGS,
     "extend_token(name, token, ttl): set name's lease to ttl ms if it carries token."},
    {"ping", (PyCFunction)client_ping, METH_NOARGS, "Connect to and PING every server."},
    {"_acquire_async", (PyCFunction)client_acquire_async, METH_VARARGS,
     "_acquire_async(name, ttl, cb) -> op id"},
    {"_try_acquire_async", (PyCFunction)client_try_acquire_async, METH_VARARGS,
     "_try_acquire_async(name, ttl, cb) -> op id"},
    {"_wait_async", (PyCFunction)client_wait_async, METH_VARARGS,
     "_wait_async(name, timeout, ttl, cb) -> op id"},
    {"_inspect_async", (PyCFunction)client_inspect_async, METH_VARARGS,
     "_inspect_async(name, cb) -> op id"},
    {"_fd", (PyCFunction)client_fd, METH_NOARGS, "The engine's fd to watch for reading."},
    {"_timeout", (PyCFunction)client_timeout, METH_NOARGS,
     "Milliseconds until _process must run anyway; -1: nothing pending."},
    {"_process", (PyCFunction)client_process, METH_NOARGS,
     "Advance the engine, run the callbacks; returns the operations in flight."},
    {"_cancel", (PyCFunction)client_cancel, METH_O,
     "Cancel an op; False if it had finished (its callback is due)."},
    {"_set_notify", (PyCFunction)client_set_notify, METH_O,
     "Call fn() after each async start or cancel (None: stop)."},
    {"_set_sockets", (PyCFunction)client_set_sockets, METH_O,
     "Call fn(fd, events) for each socket to watch (READABLE 1 | WRITABLE 2; 0: stop); "
     "None: back to _fd (every socket is told 0 first)."},
    {"_process_fd", (PyCFunction)client_process_fd, METH_VARARGS,
     "_process_fd(fd, events): fd became ready; advance the engine, run the callbacks."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef client_getset[] = {
    {"driver", (getter)client_get_driver, (setter)client_set_driver,
     "Free slot for the Python layer's event-loop driver.", NULL},
    {"_pending", (getter)client_pending, NULL, "Async ops whose callback has not run.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject PdClient_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dlock._dlock.Client",
    .tp_doc = "Client(url, *, key_prefix=None, owner_label=None, connect_timeout=None, "
              "command_timeout=None, retry_count=None, retry_delay=None, retry_max_delay=None, "
              "retry_jitter=None, drift_factor=None, fencing=None, waiting=None, "
              "replicas=None, replica_timeout=None, owner_pid=None)\n\n"
              "One libdlock client (times in ms; None: the library's default).",
    .tp_basicsize = sizeof(ClientObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)client_init,
    .tp_dealloc = (destructor)client_dealloc,
    .tp_traverse = (traverseproc)client_traverse,
    .tp_clear = (inquiry)client_clear,
    .tp_weaklistoffset = offsetof(ClientObject, weakrefs),
    .tp_methods = client_methods,
    .tp_getset = client_getset,
};
