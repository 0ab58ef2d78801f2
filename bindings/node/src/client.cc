// client.cc - clients, lock handles and operations: the functions index.js
// calls, and the engine callbacks behind them (see addon.h).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "addon.h"

namespace dlnode {

static const napi_type_tag CLIENT_TAG = {0x6a1d3c5e0b7f4a21ULL, 0x9e8d7c6b5a493827ULL};
static const napi_type_tag LOCK_TAG = {0x1f2e3d4c5b6a7988ULL, 0x0a1b2c3d4e5f6071ULL};

// ---- reference counts ----

// While operations are in flight or locks are kept alive, the JS callbacks
// (and through them the JS DistributedLock) must stay reachable: the
// references are strong then, and weak when the client is idle, so an idle,
// unreachable client can be collected.
static void active_add(Client *c, int d) {
    int was = c->active;
    c->active += d;
    if (c->on_done.IsEmpty()) // closed
        return;
    if (was == 0 && c->active > 0) {
        c->on_done.Ref();
        c->on_lost.Ref();
    } else if (was > 0 && c->active == 0) {
        c->on_done.Unref();
        c->on_lost.Unref();
    }
}

void client_unref(Client *c) {
    if (--c->refs == 0)
        delete c;
}

// Free k's C handle now (its keepalive stops with it).
static void lock_free_c(Lock *k) {
    if (k->l == nullptr)
        return;
    Client *c = k->client;
    if (k->kept) {
        k->kept = 0;
        active_add(c, -1);
    }
    dlock_lock_free(k->l);
    k->l = nullptr;
    list_unlink(c->locks, k);
}

void lock_unref(Lock *k) {
    if (--k->refs > 0)
        return;
    lock_free_c(k);
    client_unref(k->client);
    delete k;
}

static Lock *lock_new(Client *c, dlock_lock *l) {
    Lock *k = new Lock();
    k->client = c;
    c->refs++;
    k->l = l;
    k->refs = 1; // the External
    list_push_front(c->locks, k);
    return k;
}

// ---- operations ----

static Op *op_new(Client *c, int kind, Lock *k) {
    Op *op = new Op();
    op->client = c;
    op->kind = kind;
    op->lock = k;
    return op;
}

// The op was started: count it and list it as in flight.
static void op_started(Op *op) {
    Client *c = op->client;
    c->refs++;
    active_add(c, 1);
    if (op->lock != nullptr) {
        op->lock->refs++;
        op->lock->busy++;
    }
    list_push_front(c->inflight, op);
}

static void unlink_inflight(Op *op) {
    list_unlink(op->client->inflight, op);
}

void op_finish(Op *op) {
    Client *c = op->client;
    Lock *k = op->lock;
    // Not delivered: client_close drops queued ops before it frees the
    // client, so the handle can still be freed (it reads its client).
    if (op->acquired != nullptr && c->c != nullptr)
        dlock_lock_free(op->acquired);
    if (k != nullptr) {
        if (op->kind != OP_LOST && --k->busy == 0 && k->free_later)
            lock_free_c(k);
        lock_unref(k);
    }
    active_add(c, -1);
    client_unref(c);
    free(op->detail);
    free(op->holder);
    delete op;
}

// The engine's completion callback (from dlock_client_process): copy and
// queue, nothing else.
static void on_done(const dlock_result *r, void *ud) {
    Op *op = static_cast<Op *>(ud);
    unlink_inflight(op);
    op->status = r->status;
    op->fence = r->fence;
    if (r->status == DLOCK_OK && op->kind <= OP_WAIT) {
        op->acquired = r->lock;
    } else if (r->status == DLOCK_OK && op->kind == OP_INSPECT) {
        op->holder = static_cast<dlock_holder *>(malloc(sizeof *op->holder));
        if (op->holder != nullptr)
            *op->holder = *r->holder;
        else
            op->status = DLOCK_ENOMEM;
    } else if (r->status != DLOCK_OK) {
        op->detail = strdup(r->detail);
    }
    queue_op(op);
}

// A kept-alive lock was lost (from dlock_client_process): queue a notice.
// Its keepalive has stopped; the notice carries the count it held.
static void on_lost(dlock_lock *l, int status, void *ud) {
    (void)l;
    Lock *k = static_cast<Lock *>(ud);
    Op *op = op_new(k->client, OP_LOST, k);
    op->status = status;
    op->id = (uint64_t)k->lost_id;
    k->refs++;
    k->client->refs++;
    k->kept = 0; // its active count passes to the notice
    queue_op(op);
}

static void acquired_args(Napi::Env env, Op *op, napi_value *out) {
    Lock *k = lock_new(op->client, op->acquired);
    op->acquired = nullptr;
    dlock_info info;
    dlock_info_get(k->l, &info);
    auto ext = Napi::External<Lock>::New(env, k, [](Napi::Env, Lock *p) { lock_unref(p); });
    ext.TypeTag(&LOCK_TAG);
    out[0] = ext;
    out[1] = Napi::BigInt::New(env, op->fence);
    out[2] = Napi::String::New(env, info.token);
    out[3] = Napi::Number::New(env, (double)info.acquired_at);
    out[4] = Napi::Number::New(env, (double)info.expires_at);
}

// Call JS with one result: on_done(id, status, detail, ...) where an
// acquire adds (lock, fence, token, acquiredAt, expiresAt) and an inspect
// adds (holder); or on_lost(id, status, detail).
void deliver_op(Napi::Env env, Op *op) {
    Client *c = op->client;
    if (c->env == nullptr)
        return; // closed while queued: op_finish frees what it holds
    napi_value args[8];
    size_t n = 3;
    args[0] = Napi::Number::New(env, (double)op->id);
    args[1] = Napi::Number::New(env, op->status);
    args[2] = Napi::String::New(env, op->detail != nullptr ? op->detail : "");
    if (op->acquired != nullptr) {
        acquired_args(env, op, args + 3);
        n = 8;
    } else if (op->holder != nullptr) {
        args[3] = holder_object(env, op->holder);
        n = 4;
    }
    Napi::FunctionReference &fn = op->kind == OP_LOST ? c->on_lost : c->on_done;
    if (fn.IsEmpty())
        return;
    fn.Value().Call(env.Undefined(), n, args);
    if (env.IsExceptionPending()) {
        Napi::Error err = env.GetAndClearPendingException();
        napi_fatal_exception(env, err.Value());
    }
}

// ---- argument helpers ----

static Client *client_arg(const Napi::Value &v) {
    if (!v.IsExternal() || !v.As<Napi::Object>().CheckTypeTag(&CLIENT_TAG))
        return nullptr;
    return v.As<Napi::External<Client>>().Data();
}

static Lock *lock_arg(const Napi::Value &v) {
    if (!v.IsExternal() || !v.As<Napi::Object>().CheckTypeTag(&LOCK_TAG))
        return nullptr;
    return v.As<Napi::External<Lock>>().Data();
}

// A duration in ms; out of range (or not a number) gives -1, which every
// dlock call refuses with DLOCK_EINVAL.
static int64_t ms_arg(const Napi::Value &v) {
    if (!v.IsNumber())
        return -1;
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d > 9007199254740991.0)
        return -1;
    return (int64_t)d;
}

static Napi::Value type_error(Napi::Env env, const char *what) {
    Napi::TypeError::New(env, what).ThrowAsJavaScriptException();
    return env.Undefined();
}

// The adapter is attached on the first start (the engine is made then).
static int ensure_driver(Client *c) {
    if (c->uv != nullptr || dlock_client_fd(c->c) < 0)
        return DLOCK_OK;
    return dlock_uv_attach(c->env->loop, c->c, &c->uv);
}

// ---- the functions index.js calls ----

// start(client, kind, name, ttl, timeout) -> op id (> 0) or a status (< 0).
static Napi::Value start_js(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Client *c = client_arg(info[0]);
    if (c == nullptr || c->c == nullptr)
        return type_error(env, "dlock: not an open client");
    int kind = info[1].As<Napi::Number>().Int32Value();
    if (!info[2].IsString())
        return type_error(env, "lock name must be a string");
    std::string name = info[2].As<Napi::String>().Utf8Value();
    if (strlen(name.c_str()) != name.size())
        return type_error(env, "lock name must not contain NUL characters");
    int rc = ensure_driver(c);
    if (rc != DLOCK_OK)
        return Napi::Number::New(env, rc);
    Op *op = op_new(c, kind, nullptr);
    int64_t ttl = ms_arg(info[3]);
    const char *nm = name.c_str();
    switch (kind) {
    case OP_ACQUIRE: rc = dlock_acquire_async(c->c, nm, ttl, on_done, op, &op->id); break;
    case OP_TRY: rc = dlock_try_acquire_async(c->c, nm, ttl, on_done, op, &op->id); break;
    case OP_WAIT:
        rc = dlock_wait_async(c->c, nm, ms_arg(info[4]), ttl, on_done, op, &op->id);
        break;
    case OP_INSPECT: rc = dlock_inspect_async(c->c, nm, on_done, op, &op->id); break;
    default: rc = DLOCK_EINVAL;
    }
    if (rc != DLOCK_OK) {
        delete op;
        return Napi::Number::New(env, rc);
    }
    op_started(op);
    return Napi::Number::New(env, (double)op->id);
}

// release(lock) / extend(lock, ttl) -> op id or a status.
static Napi::Value lock_op_js(const Napi::CallbackInfo &info, int kind) {
    Napi::Env env = info.Env();
    Lock *k = lock_arg(info[0]);
    if (k == nullptr)
        return type_error(env, "dlock: not a lock");
    if (k->l == nullptr || k->client->c == nullptr)
        return Napi::Number::New(env, DLOCK_ENOTHELD);
    Op *op = op_new(k->client, kind, k);
    int rc;
    if (kind == OP_RELEASE)
        rc = dlock_release_async(k->l, on_done, op, &op->id);
    else
        rc = dlock_extend_async(k->l, ms_arg(info[1]), on_done, op, &op->id);
    if (rc != DLOCK_OK) {
        delete op;
        return Napi::Number::New(env, rc);
    }
    if (kind == OP_RELEASE && k->kept) { // the release stopped it
        k->kept = 0;
        active_add(k->client, -1);
    }
    op_started(op);
    return Napi::Number::New(env, (double)op->id);
}

static Napi::Value release_js(const Napi::CallbackInfo &info) {
    return lock_op_js(info, OP_RELEASE);
}

static Napi::Value extend_js(const Napi::CallbackInfo &info) {
    return lock_op_js(info, OP_EXTEND);
}

// cancel(client, id) -> status (DLOCK_EINVAL: not in flight any more).
static Napi::Value cancel_js(const Napi::CallbackInfo &info) {
    Client *c = client_arg(info[0]);
    if (c == nullptr || c->c == nullptr)
        return Napi::Number::New(info.Env(), DLOCK_EINVAL);
    double id = info[1].As<Napi::Number>().DoubleValue();
    return Napi::Number::New(info.Env(), dlock_op_cancel(c->c, (uint64_t)id));
}

static Napi::Value errstr_js(const Napi::CallbackInfo &info) {
    Client *c = client_arg(info[0]);
    return Napi::String::New(info.Env(), c && c->c ? dlock_client_errstr(c->c) : "");
}

// keepalive(lock, interval, lostId) -> status.
static Napi::Value keepalive_js(const Napi::CallbackInfo &info) {
    Lock *k = lock_arg(info[0]);
    if (k == nullptr || k->l == nullptr || k->client->c == nullptr)
        return Napi::Number::New(info.Env(), DLOCK_ENOTHELD);
    k->lost_id = info[2].As<Napi::Number>().DoubleValue();
    int rc = dlock_keepalive_start(k->l, ms_arg(info[1]), on_lost, k);
    if (rc == DLOCK_OK && !k->kept) {
        k->kept = 1;
        active_add(k->client, 1);
    }
    return Napi::Number::New(info.Env(), rc);
}

static Napi::Value keepalive_stop_js(const Napi::CallbackInfo &info) {
    Lock *k = lock_arg(info[0]);
    if (k != nullptr && k->l != nullptr) {
        dlock_keepalive_stop(k->l);
        if (k->kept) {
            k->kept = 0;
            active_add(k->client, -1);
        }
    }
    return info.Env().Undefined();
}

// lockState(lock) -> [held, expiresAt], or null once the C handle is freed.
static Napi::Value lock_state_js(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Lock *k = lock_arg(info[0]);
    if (k == nullptr || k->l == nullptr)
        return env.Null();
    dlock_info in;
    dlock_info_get(k->l, &in);
    Napi::Array a = Napi::Array::New(env, 2);
    a.Set(0u, Napi::Boolean::New(env, in.held != 0));
    a.Set(1u, Napi::Number::New(env, (double)in.expires_at));
    return a;
}

static Napi::Value lock_held_js(const Napi::CallbackInfo &info) {
    Lock *k = lock_arg(info[0]);
    return Napi::Boolean::New(info.Env(), k != nullptr && k->l != nullptr && dlock_held(k->l));
}

// lockFree(lock): JS is done with it (released, or given up); the C handle
// goes as soon as no operation on it is in flight.
static Napi::Value lock_free_js(const Napi::CallbackInfo &info) {
    Lock *k = lock_arg(info[0]);
    if (k != nullptr) {
        if (k->busy > 0)
            k->free_later = 1;
        else
            lock_free_c(k);
    }
    return info.Env().Undefined();
}

// idle(client) -> true when the engine has nothing in flight: no request
// unanswered, no timer (waits, keepalives), no result undelivered.
static Napi::Value idle_js(const Napi::CallbackInfo &info) {
    Client *c = client_arg(info[0]);
    bool idle = c == nullptr || c->c == nullptr || c->uv == nullptr ||
                (dlock_client_timeout(c->c) < 0 && c->inflight == nullptr);
    return Napi::Boolean::New(info.Env(), idle);
}

// stats(client) -> { locks, inflight, active }: C handles alive, operations
// in the engine, and what keeps the JS callbacks strongly referenced (tests).
static Napi::Value stats_js(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Client *c = client_arg(info[0]);
    if (c == nullptr)
        return type_error(env, "dlock: not a client");
    int locks = 0, inflight = 0;
    for (Lock *k = c->locks; k != nullptr; k = k->next)
        locks++;
    for (Op *op = c->inflight; op != nullptr; op = op->next)
        inflight++;
    Napi::Object o = Napi::Object::New(env);
    o.Set("locks", Napi::Number::New(env, locks));
    o.Set("inflight", Napi::Number::New(env, inflight));
    o.Set("active", Napi::Number::New(env, c->active));
    return o;
}

void client_close(Client *c) {
    if (c->env == nullptr)
        return;
    unqueue_client(c);
    // The handles first (dlock.h), even those with an operation in flight:
    // dlock_client_free drops those operations without calling back.
    while (c->locks != nullptr)
        lock_free_c(c->locks);
    dlock_uv_detach(c->uv);
    c->uv = nullptr;
    dlock_client_free(c->c);
    c->c = nullptr;
    while (c->inflight != nullptr) {
        Op *op = c->inflight;
        unlink_inflight(op);
        op_finish(op);
    }
    list_unlink(c->env->clients, c);
    c->env = nullptr;
    c->on_done.Reset();
    c->on_lost.Reset();
}

static Napi::Value close_js(const Napi::CallbackInfo &info) {
    Client *c = client_arg(info[0]);
    if (c != nullptr)
        client_close(c);
    return info.Env().Undefined();
}

// ---- creation ----

static int opt_int(const Napi::Object &o, const char *key, int dflt) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : dflt;
}

// Fill *out from the options index.js normalised (defaults for what is
// absent); strs keeps the strings alive until dlock_client_new copies them.
static void read_options(const Napi::Object &o, dlock_options *out, std::string strs[2]) {
    dlock_options_init(out);
    if (o.Get("keyPrefix").IsString()) {
        strs[0] = o.Get("keyPrefix").As<Napi::String>().Utf8Value();
        out->key_prefix = strs[0].c_str();
    }
    if (o.Get("ownerLabel").IsString()) {
        strs[1] = o.Get("ownerLabel").As<Napi::String>().Utf8Value();
        out->owner_label = strs[1].c_str();
    }
    out->connect_timeout_ms = opt_int(o, "connectTimeoutMs", out->connect_timeout_ms);
    out->command_timeout_ms = opt_int(o, "commandTimeoutMs", out->command_timeout_ms);
    out->retry_count = opt_int(o, "retryCount", out->retry_count);
    out->retry_delay_ms = opt_int(o, "retryDelayMs", out->retry_delay_ms);
    out->retry_max_delay_ms = opt_int(o, "retryMaxDelayMs", out->retry_max_delay_ms);
    out->retry_jitter_pct = opt_int(o, "retryJitterPct", out->retry_jitter_pct);
    out->replicas = opt_int(o, "replicas", out->replicas);
    out->replica_timeout_ms = opt_int(o, "replicaTimeoutMs", out->replica_timeout_ms);
    out->owner_pid = opt_int(o, "ownerPid", (int)out->owner_pid);
    Napi::Value drift = o.Get("driftFactor");
    if (drift.IsNumber())
        out->drift_factor = drift.As<Napi::Number>().DoubleValue();
    Napi::Value fencing = o.Get("fencing");
    if (fencing.IsBoolean())
        out->fencing = fencing.As<Napi::Boolean>().Value() ? 1 : 0;
    if (o.Get("waiting").IsString())
        out->waiting = o.Get("waiting").As<Napi::String>().Utf8Value() == "poll" ? DLOCK_WAIT_POLL
                                                                                : DLOCK_WAIT_PUSH;
}

// clientNew(url, options, onDone, onLost) -> the client, or [status, detail].
static Napi::Value client_new_js(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Env *e = static_cast<Env *>(info.Data());
    if (!info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction() ||
        !info[3].IsFunction())
        return type_error(env, "dlock: clientNew(url, options, onDone, onLost)");
    std::string url = info[0].As<Napi::String>().Utf8Value();
    dlock_options o;
    std::string strs[2];
    read_options(info[1].As<Napi::Object>(), &o, strs);
    dlock_client *dc = nullptr;
    int rc = dlock_client_new(&dc, url.c_str(), &o);
    if (rc != DLOCK_OK) {
        Napi::Array a = Napi::Array::New(env, 2);
        a.Set(0u, Napi::Number::New(env, rc));
        a.Set(1u, Napi::String::New(env, dc ? dlock_client_errstr(dc) : "out of memory"));
        dlock_client_free(dc);
        return a;
    }
    Client *c = new Client();
    c->env = e;
    c->c = dc;
    c->refs = 1; // the External
    c->on_done = Napi::Weak(info[2].As<Napi::Function>());
    c->on_lost = Napi::Weak(info[3].As<Napi::Function>());
    list_push_front(e->clients, c);
    auto ext = Napi::External<Client>::New(env, c, [](Napi::Env, Client *p) {
        client_close(p);
        client_unref(p);
    });
    ext.TypeTag(&CLIENT_TAG);
    return ext;
}

void client_init(Napi::Env env, Napi::Object exports, Env *e) {
    static const struct {
        const char *name;
        Napi::Value (*fn)(const Napi::CallbackInfo &);
    } fns[] = {
        {"start", start_js},         {"release", release_js},
        {"extend", extend_js},       {"cancel", cancel_js},
        {"errstr", errstr_js},       {"keepalive", keepalive_js},
        {"keepaliveStop", keepalive_stop_js}, {"lockState", lock_state_js},
        {"lockHeld", lock_held_js},  {"lockFree", lock_free_js},
        {"close", close_js},         {"stats", stats_js},
        {"idle", idle_js},
    };
    for (const auto &f : fns)
        exports.Set(f.name, Napi::Function::New(env, f.fn, f.name));
    exports.Set("clientNew", Napi::Function::New(env, client_new_js, "clientNew", e));
}

} // namespace dlnode
