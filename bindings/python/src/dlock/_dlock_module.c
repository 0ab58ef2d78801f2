/* _dlock_module.c - the module dlock._dlock: exceptions made from the C
 * status table, the client mutex, result types, and module set-up. The
 * Client type is in _dlock_client.c, the Lock type in _dlock_lock.c. */
#include "_dlock.h"

#include <string.h>

/* ---- the client mutex ---- */

int pd_mutex_init(pd_mutex *m) {
    m->mu = PyThread_allocate_lock();
    m->owner = 0;
    m->depth = 0;
    return m->mu != NULL ? 0 : -1;
}

void pd_mutex_free(pd_mutex *m) {
    if (m->mu != NULL)
        PyThread_free_lock(m->mu);
    m->mu = NULL;
}

void pd_lock(pd_mutex *m) {
    unsigned long me = PyThread_get_thread_ident();
    if (m->owner == me) {
        m->depth++;
        return;
    }
    if (!PyThread_acquire_lock(m->mu, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(m->mu, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    m->owner = me;
    m->depth = 1;
}

void pd_unlock(pd_mutex *m) {
    if (--m->depth > 0)
        return;
    m->owner = 0;
    PyThread_release_lock(m->mu);
}

/* ---- exceptions, one per row of DLOCK_ERRNO_MAP ----
 *
 * Every status needs a class name here: a status added to the C table
 * without one stops the build (PD_PY_<name> undeclared), so the Python
 * classes cannot drift from the table. */
#define PD_PY_OK NULL
#define PD_PY_EBUSY "LockBusy"
#define PD_PY_ETIMEDOUT "Timeout"
#define PD_PY_ENOTHELD "NotHeld"
#define PD_PY_EINVAL "InvalidArgument"
#define PD_PY_EIO "ConnectionError"
#define PD_PY_ESERVER "ServerError"
#define PD_PY_ENOQUORUM "NoQuorum"
#define PD_PY_EUNKNOWN "UnknownOutcome"
#define PD_PY_ENOMEM "OutOfMemory"
#define PD_PY_EPROTO "ProtocolError"
#define PD_PY_ENOTSUP "NotSupported"
#define PD_PY_ECANCELED "Cancelled"
#define PD_PY_EMAXHOLD "MaxHoldReached"
#define PD_PY_ENOREPLICAS "NoReplicas"

typedef struct pd_err {
    int status;
    const char *pyname;
    const char *desc;
    PyObject *cls;
} pd_err;

#define PD_ERR_ROW(name, value, desc) {DLOCK_##name, PD_PY_##name, desc, NULL},
static pd_err pd_errs[] = {DLOCK_ERRNO_MAP(PD_ERR_ROW)};
#undef PD_ERR_ROW
#define PD_NERRS ((int)(sizeof pd_errs / sizeof pd_errs[0]))

static PyObject *pd_base_error;   /* DlockError */
static PyObject *pd_acquire_error; /* LockAcquisitionError: LockBusy, Timeout */

static PyObject *class_for(int status) {
    for (int i = 0; i < PD_NERRS; i++)
        if (pd_errs[i].status == status && pd_errs[i].cls != NULL)
            return pd_errs[i].cls;
    return pd_base_error;
}

PyObject *pd_str(const char *s) {
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

PyObject *pd_error_new(int status, const char *detail) {
    if (detail == NULL || detail[0] == '\0')
        detail = dlock_strerror(status);
    PyObject *det = pd_str(detail);
    if (det == NULL)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(class_for(status), det);
    if (exc == NULL) {
        Py_DECREF(det);
        return NULL;
    }
    PyObject *st = PyLong_FromLong(status);
    PyObject *name = PyUnicode_FromString(dlock_err_name(status));
    int bad = st == NULL || name == NULL ||
              PyObject_SetAttrString(exc, "status", st) < 0 ||
              PyObject_SetAttrString(exc, "name", name) < 0 ||
              PyObject_SetAttrString(exc, "detail", det) < 0;
    Py_XDECREF(st);
    Py_XDECREF(name);
    Py_XDECREF(det);
    if (bad) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

PyObject *pd_raise(int status, const char *detail) {
    PyObject *exc = pd_error_new(status, detail);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *pd_raise_client(ClientObject *c, int status) {
    return pd_raise(status, dlock_client_errstr(c->c));
}

/* The classes: DlockError(Exception); LockAcquisitionError(DlockError);
 * one per status, a few also under the builtin they mean (a Timeout is a
 * TimeoutError, a ConnectionError a builtins.ConnectionError, an
 * InvalidArgument a ValueError). */
static PyObject *make_class(PyObject *m, const pd_err *e) {
    PyObject *parent = pd_base_error, *extra = NULL;
    switch (e->status) {
    case DLOCK_EBUSY:
        parent = pd_acquire_error;
        break;
    case DLOCK_ETIMEDOUT:
        parent = pd_acquire_error;
        extra = PyExc_TimeoutError;
        break;
    case DLOCK_EIO:
        extra = PyExc_ConnectionError;
        break;
    case DLOCK_EINVAL:
        extra = PyExc_ValueError;
        break;
    default:
        break;
    }
    char qual[96];
    snprintf(qual, sizeof qual, "dlock.%s", e->pyname);
    char doc[256];
    snprintf(doc, sizeof doc, "%s: %s.", dlock_err_name(e->status), e->desc);
    PyObject *bases = extra ? PyTuple_Pack(2, parent, extra) : PyTuple_Pack(1, parent);
    if (bases == NULL)
        return NULL;
    PyObject *cls = PyErr_NewExceptionWithDoc(qual, doc, bases, NULL);
    Py_DECREF(bases);
    if (cls == NULL || PyModule_AddObjectRef(m, e->pyname, cls) < 0) {
        Py_XDECREF(cls);
        return NULL;
    }
    return cls;
}

static int add_errors(PyObject *m) {
    pd_base_error = PyErr_NewExceptionWithDoc(
        "dlock.DlockError",
        "A dlock call failed. .status is the C status (negative), .name its name "
        "(\"DLOCK_EBUSY\"), .detail what exactly failed.",
        PyExc_Exception, NULL);
    if (pd_base_error == NULL || PyModule_AddObjectRef(m, "DlockError", pd_base_error) < 0)
        return -1;
    pd_acquire_error = PyErr_NewExceptionWithDoc(
        "dlock.LockAcquisitionError",
        "The lock stayed with another owner: LockBusy (retries used up) or Timeout "
        "(deadline passed). The seed's name.",
        pd_base_error, NULL);
    if (pd_acquire_error == NULL ||
        PyModule_AddObjectRef(m, "LockAcquisitionError", pd_acquire_error) < 0)
        return -1;
    PyObject *by_status = PyDict_New();
    if (by_status == NULL || PyModule_AddObject(m, "errors", by_status) < 0) {
        Py_XDECREF(by_status);
        return -1;
    }
    for (int i = 0; i < PD_NERRS; i++) {
        pd_err *e = &pd_errs[i];
        char cname[32];
        snprintf(cname, sizeof cname, "%s", dlock_err_name(e->status) + 6); /* "EBUSY" */
        if (PyModule_AddIntConstant(m, cname, e->status) < 0)
            return -1;
        if (e->pyname == NULL)
            continue;
        e->cls = make_class(m, e);
        PyObject *key = PyLong_FromLong(e->status);
        if (e->cls == NULL || key == NULL || PyDict_SetItem(by_status, key, e->cls) < 0) {
            Py_XDECREF(key);
            return -1;
        }
        Py_DECREF(key);
        if (e->status == DLOCK_ENOTHELD && /* the seed's name */
            PyModule_AddObjectRef(m, "InvalidLockError", e->cls) < 0)
            return -1;
    }
    return 0;
}

/* ---- names and result types ---- */

int pd_name(PyObject *o, const char **name, PyObject **keep) {
    Py_ssize_t len;
    const char *s;
    *keep = NULL;
    if (PyUnicode_Check(o)) {
        s = PyUnicode_AsUTF8AndSize(o, &len);
        if (s == NULL)
            return -1;
    } else if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        len = PyBytes_GET_SIZE(o);
    } else {
        PyErr_Format(PyExc_TypeError, "lock name must be str or bytes, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if ((Py_ssize_t)strlen(s) != len) {
        pd_raise(DLOCK_EINVAL, "lock name contains a NUL byte");
        return -1;
    }
    Py_INCREF(o);
    *keep = o;
    *name = s;
    return 0;
}

static PyStructSequence_Field holder_fields[] = {
    {"locked", "True if someone holds the lock"},
    {"pttl_ms", "the holder's remaining lease in ms, -1 when free"},
    {"fence", "the holder's fencing token, else the last one issued (0: none)"},
    {"acquired_at", "the holder's wall-clock acquire time, ms since the epoch (0: free)"},
    {"pid", "the holder's process id (0: free)"},
    {"waiters", "processes queued for the lock"},
    {"host", "the holder's host name"},
    {"label", "the holder's owner label"},
    {"token", "the holder's token (32 hex digits), '' when free"},
    {NULL, NULL}};
static PyStructSequence_Desc holder_desc = {"dlock.Holder", "Who holds a lock (Client.inspect).",
                                            holder_fields, 9};

static PyStructSequence_Field info_fields[] = {
    {"name", "the lock name"},
    {"token", "this handle's token, 32 hex digits"},
    {"fence", "the fencing token (0 when fencing is off)"},
    {"acquired_at", "wall clock, ms since the epoch"},
    {"expires_at", "wall clock, ms since the epoch: end of the local validity"},
    {"held", "as Lock.held"},
    {NULL, NULL}};
static PyStructSequence_Desc info_desc = {"dlock.LockInfo", "What a Lock handle knows (Lock.info).",
                                          info_fields, 6};

PyTypeObject *pd_holder_type, *pd_info_type;

PyObject *pd_holder_new(const dlock_holder *h) {
    PyObject *t = PyStructSequence_New(pd_holder_type);
    if (t == NULL)
        return NULL;
    PyObject *v[9] = {PyBool_FromLong(h->locked),
                      PyLong_FromLongLong(h->pttl_ms),
                      PyLong_FromLongLong(h->fence),
                      PyLong_FromLongLong(h->acquired_at),
                      PyLong_FromLong(h->pid),
                      PyLong_FromLong(h->waiters),
                      pd_str(h->host),
                      pd_str(h->label),
                      PyUnicode_FromString(h->token)};
    int bad = 0;
    for (int i = 0; i < 9; i++) {
        if (v[i] == NULL)
            bad = 1;
        PyStructSequence_SET_ITEM(t, i, v[i]); /* NULLs are skipped by dealloc */
    }
    if (bad) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* ---- module functions ---- */

PyTypeObject *pd_lock_class = &PdLock_Type;

static PyObject *mod_set_lock_class(PyObject *m, PyObject *cls) {
    (void)m;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PdLock_Type)) {
        PyErr_SetString(PyExc_TypeError, "the lock class must be a subclass of _dlock.Lock");
        return NULL;
    }
    Py_INCREF(cls);
    if (pd_lock_class != &PdLock_Type)
        Py_DECREF(pd_lock_class);
    pd_lock_class = (PyTypeObject *)cls;
    Py_RETURN_NONE;
}

static PyObject *mod_error(PyObject *m, PyObject *args) {
    (void)m;
    int status;
    const char *detail = NULL;
    if (!PyArg_ParseTuple(args, "i|z", &status, &detail))
        return NULL;
    return pd_error_new(status, detail);
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg) {
    (void)m;
    int status = PyLong_AsLong(arg);
    if (status == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(dlock_strerror(status));
}

int pd_exiting;

static PyObject *mod_at_exit(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    pd_exiting = 1;
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"_at_exit", mod_at_exit, METH_NOARGS,
     "From atexit: on_lost callbacks of keepalive threads are no longer run."},
    {"_set_lock_class", mod_set_lock_class, METH_O,
     "Make acquires return instances of cls (a subclass of _dlock.Lock)."},
    {"error", mod_error, METH_VARARGS,
     "error(status, detail=None) -> the DlockError subclass instance for status."},
    {"strerror", mod_strerror, METH_O, "strerror(status) -> the status's description."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT, "dlock._dlock",
    "libdlock for Python: the C core (use the dlock package, not this module).", -1,
    mod_methods, NULL, NULL, NULL, NULL};

static int add_types(PyObject *m) {
    pd_holder_type = PyStructSequence_NewType(&holder_desc);
    pd_info_type = PyStructSequence_NewType(&info_desc);
    if (pd_holder_type == NULL || pd_info_type == NULL)
        return -1;
    if (PyType_Ready(&PdClient_Type) < 0 || PyType_Ready(&PdLock_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Client", (PyObject *)&PdClient_Type) < 0 ||
        PyModule_AddObjectRef(m, "Lock", (PyObject *)&PdLock_Type) < 0 ||
        PyModule_AddObjectRef(m, "Holder", (PyObject *)pd_holder_type) < 0 ||
        PyModule_AddObjectRef(m, "LockInfo", (PyObject *)pd_info_type) < 0)
        return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__dlock(void) {
    PyObject *m = PyModule_Create(&mod_def);
    if (m == NULL)
        return NULL;
    if (add_types(m) < 0 || add_errors(m) < 0 ||
        PyModule_AddStringConstant(m, "version", dlock_version()) < 0 ||
        PyModule_AddIntConstant(m, "NAME_MAX", DLOCK_NAME_MAX) < 0 ||
        PyModule_AddObject(m, "TTL_MAX", PyLong_FromLongLong(DLOCK_TTL_MAX)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
