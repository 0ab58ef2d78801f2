// addon.cc - module set-up, and the delivery of finished operations to
// JavaScript (see addon.h for why they are queued first).
#include "addon.h"

#include <cstdlib>

namespace dlnode {

// ---- the delivery queue ----

static void on_idle(uv_idle_t *h) {
    (void)h; // only there so the loop polls without blocking
}

// Deliver every queued result, in the order the engine finished them. One
// callback scope for the batch: promise reactions run when it closes, after
// every result of this loop turn is in.
static void on_check(uv_check_t *h) {
    Env *e = static_cast<Env *>(h->data);
    uv_check_stop(&e->check);
    uv_idle_stop(&e->idle);
    uv_unref(reinterpret_cast<uv_handle_t *>(&e->check));
    e->armed = 0;
    Napi::Env env(e->env);
    Napi::HandleScope scope(env);
    Napi::CallbackScope cscope(env, e->actx);
    while (e->head != nullptr) {
        Op *op = e->head;
        list_unlink(e->head, op, &e->tail);
        Napi::HandleScope each(env);
        deliver_op(env, op);
        op_finish(op);
    }
}

static void arm(Env *e) {
    if (e->armed || e->closing)
        return;
    e->armed = 1;
    uv_check_start(&e->check, on_check);
    uv_idle_start(&e->idle, on_idle);
    // Referenced while results wait, so that the loop runs the check phase
    // even if nothing else is left to keep it alive.
    uv_ref(reinterpret_cast<uv_handle_t *>(&e->check));
}

void queue_op(Op *op) {
    Env *e = op->client->env;
    op->prev = e->tail;
    op->next = nullptr;
    if (e->tail != nullptr)
        e->tail->next = op;
    else
        e->head = op;
    e->tail = op;
    arm(e);
}

void unqueue_client(Client *c) {
    Env *e = c->env;
    Op *next;
    for (Op *op = e->head; op != nullptr; op = next) {
        next = op->next;
        if (op->client != c)
            continue;
        list_unlink(e->head, op, &e->tail);
        op_finish(op);
    }
}

// ---- helpers shared with client.cc ----

Napi::Value holder_object(Napi::Env env, const dlock_holder *h) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("locked", Napi::Boolean::New(env, h->locked != 0));
    o.Set("pttl", Napi::Number::New(env, (double)h->pttl_ms));
    o.Set("fence", Napi::BigInt::New(env, h->fence));
    o.Set("acquiredAt", Napi::Number::New(env, (double)h->acquired_at));
    o.Set("pid", Napi::Number::New(env, (double)h->pid));
    o.Set("waiters", Napi::Number::New(env, h->waiters));
    o.Set("host", Napi::String::New(env, h->host));
    o.Set("label", Napi::String::New(env, h->label));
    o.Set("token", Napi::String::New(env, h->token));
    return o;
}

// ---- environment life cycle ----

static void env_handle_closed(uv_handle_t *h) {
    Env *e = static_cast<Env *>(h->data);
    if (++e->closing == 3)
        delete e;
}

// The env is going away (process exit, or a worker thread ending): close
// every client, then the queue's handles. The loop frees e once they close.
static void env_cleanup(void *arg) {
    Env *e = static_cast<Env *>(arg);
    while (e->clients != nullptr)
        client_close(e->clients);
    napi_async_destroy(e->env, e->actx);
    e->closing = 1;
    uv_close(reinterpret_cast<uv_handle_t *>(&e->check), env_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&e->idle), env_handle_closed);
}

static Napi::Object status_table(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
#define DLNODE_STATUS_(name, value, desc) o.Set(#name, Napi::Number::New(env, value));
    DLOCK_ERRNO_MAP(DLNODE_STATUS_)
#undef DLNODE_STATUS_
    return o;
}

static Napi::Value strerror_js(const Napi::CallbackInfo &info) {
    return Napi::String::New(info.Env(), dlock_strerror(info[0].As<Napi::Number>().Int32Value()));
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
    Env *e = new Env();
    e->env = env;
    if (napi_get_uv_event_loop(env, &e->loop) != napi_ok) {
        delete e;
        Napi::Error::New(env, "dlock: no libuv loop in this environment")
            .ThrowAsJavaScriptException();
        return exports;
    }
    uv_check_init(e->loop, &e->check);
    uv_idle_init(e->loop, &e->idle);
    e->check.data = e->idle.data = e;
    // The queue's handles keep the process alive only while results wait
    // (arm): the adapter's handles do so while operations are in flight.
    uv_unref(reinterpret_cast<uv_handle_t *>(&e->check));
    uv_unref(reinterpret_cast<uv_handle_t *>(&e->idle));
    napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "dlock"), &e->actx);
    napi_add_env_cleanup_hook(env, env_cleanup, e);

    exports.Set("statuses", status_table(env));
    exports.Set("strerror", Napi::Function::New(env, strerror_js, "strerror"));
    exports.Set("version", Napi::String::New(env, dlock_version()));
    client_init(env, exports, e);
    return exports;
}

} // namespace dlnode

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    return dlnode::init(env, exports);
}

NODE_API_MODULE(dlock_node, Init)
