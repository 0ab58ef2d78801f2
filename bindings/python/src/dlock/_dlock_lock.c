/* _dlock_lock.c - the Lock type: one dlock_lock (an acquired lease) and the
 * Client it came from. release/extend block (GIL released, client mutex
 * held); held/info/fence/token are local and never block. keepalive()
 * starts the library's keepalive: a thread shared by the client's locks
 * for a lock from the blocking calls, timers in the engine for a lock from
 * the async ones; either way on_lost is told once if the lease is lost. */
#include "_dlock.h"

#include <stdio.h>
#include <string.h>

static int check_lock(LockObject *self) {
    if (self->l != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "dlock Lock is not initialised");
    return -1;
}

PyObject *pd_lock_wrap(ClientObject *client, dlock_lock *l) {
    LockObject *o = (LockObject *)pd_lock_class->tp_alloc(pd_lock_class, 0);
    if (o == NULL) {
        dlock_lock_free(l);
        return NULL;
    }
    Py_INCREF(client);
    o->client = client;
    o->l = l;
    return (PyObject *)o;
}

/* ---- on_lost ---- */

/* The library's on_lost: from the keepalive thread (thread flavour) or
 * from dlock_client_process (engine flavour). Either way the box is alive
 * until the keepalive is stopped, and stopping waits for this call. */
static void on_lost(dlock_lock *l, int status, void *ud) {
    pd_lostbox *b = ud;
    if (pd_exiting)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = b->fn != NULL ? Py_NewRef(b->fn) : NULL;
    PyObject *lock = b->wref != NULL ? PyWeakref_GetObject(b->wref) : Py_None;
    if (fn != NULL && lock != NULL && lock != Py_None) {
        Py_INCREF(lock);
        dlock_info info;
        dlock_info_get(l, &info);
        char detail[400];
        if (status == DLOCK_ENOTHELD)
            snprintf(detail, sizeof detail,
                     "lock '%.200s' was lost: its key is gone or carries another token",
                     info.name);
        else if (status == DLOCK_ETIMEDOUT)
            snprintf(detail, sizeof detail,
                     "lock '%.200s' could not be extended before its lease ran out: no "
                     "extension was confirmed in time",
                     info.name);
        else
            snprintf(detail, sizeof detail, "lock '%.200s' is no longer kept alive: %s",
                     info.name, dlock_strerror(status));
        PyObject *err = pd_error_new(status, detail);
        if (err != NULL) {
            pd_call_unraisable(fn, PyTuple_Pack(2, lock, err));
            Py_DECREF(err);
        } else {
            PyErr_WriteUnraisable(fn);
        }
        Py_DECREF(lock);
    }
    PyErr_Clear();
    Py_XDECREF(fn);
    PyGILState_Release(g);
}

static void box_free(pd_lostbox *b) {
    if (b == NULL)
        return;
    Py_XDECREF(b->fn);
    Py_XDECREF(b->wref);
    PyMem_Free(b);
}

/* Stop the keepalive (waiting for a running on_lost: without the GIL, which
 * that callback needs) and free its box. */
static void stop_keepalive(LockObject *self) {
    pd_lock(&self->client->mu);
    Py_BEGIN_ALLOW_THREADS
    dlock_keepalive_stop(self->l);
    Py_END_ALLOW_THREADS
    pd_unlock(&self->client->mu);
    box_free(self->box);
    self->box = NULL;
}

static PyObject *lock_keepalive(LockObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"interval", "on_lost", NULL};
    long long interval = 0;
    PyObject *fn = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|LO", kwlist, &interval, &fn) ||
        check_lock(self) < 0)
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "on_lost must be callable or None");
        return NULL;
    }
    pd_lostbox *b = NULL;
    if (fn != Py_None) {
        b = PyMem_Calloc(1, sizeof *b);
        if (b == NULL)
            return PyErr_NoMemory();
        b->fn = Py_NewRef(fn);
        b->wref = PyWeakref_NewRef((PyObject *)self, NULL);
        if (b->wref == NULL) {
            box_free(b);
            return NULL;
        }
    }
    stop_keepalive(self);
    int rc;
    pd_lock(&self->client->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = dlock_keepalive_start(self->l, interval, b != NULL ? on_lost : NULL, b);
    Py_END_ALLOW_THREADS
    if (rc != DLOCK_OK) {
        pd_raise_client(self->client, rc);
        pd_unlock(&self->client->mu);
        box_free(b);
        return NULL;
    }
    pd_unlock(&self->client->mu);
    self->box = b;
    Py_RETURN_NONE;
}

static PyObject *lock_stop_keepalive(LockObject *self, PyObject *unused) {
    (void)unused;
    if (check_lock(self) < 0)
        return NULL;
    stop_keepalive(self);
    Py_RETURN_NONE;
}

/* ---- release / extend ---- */

static PyObject *lock_release(LockObject *self, PyObject *unused) {
    (void)unused;
    if (check_lock(self) < 0)
        return NULL;
    int rc;
    pd_lock(&self->client->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = dlock_release(self->l); /* stops the keepalive first */
    Py_END_ALLOW_THREADS
    if (rc != DLOCK_OK)
        pd_raise_client(self->client, rc);
    pd_unlock(&self->client->mu);
    box_free(self->box);
    self->box = NULL;
    return rc == DLOCK_OK ? Py_NewRef(Py_None) : NULL;
}

static PyObject *lock_extend(LockObject *self, PyObject *args) {
    long long ttl;
    if (!PyArg_ParseTuple(args, "L", &ttl) || check_lock(self) < 0)
        return NULL;
    int rc;
    pd_lock(&self->client->mu);
    Py_BEGIN_ALLOW_THREADS
    rc = dlock_extend(self->l, ttl);
    Py_END_ALLOW_THREADS
    if (rc != DLOCK_OK)
        pd_raise_client(self->client, rc);
    pd_unlock(&self->client->mu);
    return rc == DLOCK_OK ? Py_NewRef(Py_None) : NULL;
}

/* _dlock_client.c */
PyObject *pd_handle_async(LockObject *lock, long long ttl, PyObject *fn);

static PyObject *lock_release_async(LockObject *self, PyObject *fn) {
    if (check_lock(self) < 0)
        return NULL;
    PyObject *op = pd_handle_async(self, -1, fn);
    if (op != NULL) { /* the start stopped the keepalive */
        box_free(self->box);
        self->box = NULL;
    }
    return op;
}

static PyObject *lock_extend_async(LockObject *self, PyObject *args) {
    long long ttl;
    PyObject *fn;
    if (!PyArg_ParseTuple(args, "LO", &ttl, &fn) || check_lock(self) < 0)
        return NULL;
    if (ttl < 0)
        return pd_raise(DLOCK_EINVAL, "ttl must be 1..TTL_MAX ms");
    return pd_handle_async(self, ttl, fn);
}

/* ---- local state ---- */

static PyObject *name_object(const dlock_info *i) {
    PyObject *s = PyUnicode_DecodeUTF8(i->name, (Py_ssize_t)i->name_len, NULL);
    if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        s = PyBytes_FromStringAndSize(i->name, (Py_ssize_t)i->name_len);
    }
    return s;
}

static int get_info(LockObject *self, dlock_info *i) {
    if (check_lock(self) < 0)
        return -1;
    dlock_info_get(self->l, i);
    return 0;
}

static PyObject *lock_get_info(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    if (get_info(self, &i) < 0)
        return NULL;
    PyObject *t = PyStructSequence_New(pd_info_type);
    if (t == NULL)
        return NULL;
    PyObject *v[6] = {name_object(&i),
                      PyUnicode_FromString(i.token),
                      PyLong_FromLongLong(i.fence),
                      PyLong_FromLongLong(i.acquired_at),
                      PyLong_FromLongLong(i.expires_at),
                      PyBool_FromLong(i.held)};
    int bad = 0;
    for (int k = 0; k < 6; k++) {
        bad |= v[k] == NULL;
        PyStructSequence_SET_ITEM(t, k, v[k]);
    }
    if (bad) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

static PyObject *lock_get_name(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    return get_info(self, &i) < 0 ? NULL : name_object(&i);
}

static PyObject *lock_get_token(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    return get_info(self, &i) < 0 ? NULL : PyUnicode_FromString(i.token);
}

static PyObject *lock_get_fence(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    return get_info(self, &i) < 0 ? NULL : PyLong_FromLongLong(i.fence);
}

static PyObject *lock_get_held(LockObject *self, void *closure) {
    (void)closure;
    return check_lock(self) < 0 ? NULL : PyBool_FromLong(dlock_held(self->l));
}

static PyObject *lock_get_acquired_at(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    return get_info(self, &i) < 0 ? NULL : PyLong_FromLongLong(i.acquired_at);
}

static PyObject *lock_get_expires_at(LockObject *self, void *closure) {
    (void)closure;
    dlock_info i;
    return get_info(self, &i) < 0 ? NULL : PyLong_FromLongLong(i.expires_at);
}

static PyObject *lock_get_client(LockObject *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->client != NULL ? (PyObject *)self->client : Py_None);
}

static PyObject *lock_repr(LockObject *self) {
    dlock_info i;
    if (self->l == NULL)
        return PyUnicode_FromFormat("<%s (empty)>", Py_TYPE(self)->tp_name);
    dlock_info_get(self->l, &i);
    PyObject *name = name_object(&i);
    if (name == NULL)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("<%s %R fence=%lld %s>", Py_TYPE(self)->tp_name, name,
                                       (long long)i.fence, i.held ? "held" : "not held");
    Py_DECREF(name);
    return r;
}

/* ---- life cycle ---- */

static int lock_traverse(LockObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->client);
    if (self->box != NULL)
        Py_VISIT(self->box->fn);
    return 0;
}

/* Break a cycle through on_lost (say, a callback that refers to its Lock):
 * the callback is dropped; the keepalive runs on until the Lock is freed. */
static int lock_clear(LockObject *self) {
    if (self->box != NULL)
        Py_CLEAR(self->box->fn);
    return 0;
}

static void lock_dealloc(LockObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->l != NULL) {
        /* Not released: the lease ends by its TTL (as dlock_lock_free). */
        dlock_lock *l = self->l;
        self->l = NULL;
        pd_lock(&self->client->mu);
        Py_BEGIN_ALLOW_THREADS
        dlock_lock_free(l);
        Py_END_ALLOW_THREADS
        pd_unlock(&self->client->mu);
    }
    box_free(self->box);
    self->box = NULL;
    Py_CLEAR(self->client);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef lock_methods[] = {
    {"release", (PyCFunction)lock_release, METH_NOARGS,
     "Release the lock (and stop its keepalive). Raises NotHeld if it was lost."},
    {"extend", (PyCFunction)lock_extend, METH_VARARGS,
     "extend(ttl): set the remaining lease to ttl ms. Raises NotHeld if it was lost."},
    {"keepalive", (PyCFunction)(void (*)(void))lock_keepalive, METH_VARARGS | METH_KEYWORDS,
     "keepalive(interval=0, on_lost=None): extend the lease every interval ms (0: ttl/3) "
     "until released; on_lost(lock, error) is called once if the lease is lost."},
    {"stop_keepalive", (PyCFunction)lock_stop_keepalive, METH_NOARGS,
     "Stop extending the lease; on_lost is not called after this returns."},
    {"_release_async", (PyCFunction)lock_release_async, METH_O, "_release_async(cb) -> op id"},
    {"_extend_async", (PyCFunction)lock_extend_async, METH_VARARGS,
     "_extend_async(ttl, cb) -> op id"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef lock_getset[] = {
    {"name", (getter)lock_get_name, NULL, "The lock name (bytes if not UTF-8).", NULL},
    {"token", (getter)lock_get_token, NULL, "This handle's token: 32 hex digits.", NULL},
    {"fence", (getter)lock_get_fence, NULL,
     "The fencing token: larger than every earlier one for this name.", NULL},
    {"held", (getter)lock_get_held, NULL,
     "True while the lease is valid by this process's monotonic clock (no server call).",
     NULL},
    {"info", (getter)lock_get_info, NULL, "LockInfo(name, token, fence, acquired_at, "
                                          "expires_at, held).", NULL},
    {"acquired_at", (getter)lock_get_acquired_at, NULL, "Wall clock, ms since the epoch.",
     NULL},
    {"expires_at", (getter)lock_get_expires_at, NULL,
     "Wall clock, ms since the epoch, when the local validity ends.", NULL},
    {"_client", (getter)lock_get_client, NULL, "The _dlock.Client it came from.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject PdLock_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dlock._dlock.Lock",
    .tp_doc = "An acquired lease (made by the Client's acquire calls).",
    .tp_basicsize = sizeof(LockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)lock_dealloc,
    .tp_traverse = (traverseproc)lock_traverse,
    .tp_clear = (inquiry)lock_clear,
    .tp_repr = (reprfunc)lock_repr,
    .tp_weaklistoffset = offsetof(LockObject, weakrefs),
    .tp_methods = lock_methods,
    .tp_getset = lock_getset,
};
