// addon.h - the Node-API side of dlock: libdlock's engine driven by the
// process's own libuv loop (dlock's libuv adapter), never blocking the JS
// thread and never parking a thread per call.
//
// How results reach JavaScript. The engine calls its completion callbacks
// from dlock_client_process, i.e. from the adapter's poll and timer
// callbacks. Those callbacks only copy the result into an Op and queue it
// (no Node-API call, so no JavaScript, no GC and no finalizer can run while
// the engine is mid-call). A uv_check handle (with a uv_idle so the loop
// does not block in poll first) then delivers the queue in the same loop
// turn, inside one callback scope: JavaScript, promise reactions included,
// runs only there and from JS calls, where freeing a handle or a client is
// safe.
//
// Lifetimes. Client and Lock are reference-counted: a Client by its JS
// External, by each Op and by each Lock; a Lock by its External and by each
// Op about it. The C handle (dlock_lock) inside a Lock is freed when the JS
// side says the lock is done (after a release), when the External is
// garbage-collected, or when the client closes, whichever is first; never
// while an operation on it is in flight (dlock.h: the handle must outlive
// the operation), except when the client closes: dlock_client_free then
// drops those operations without running their code.
#ifndef DLOCK_NODE_ADDON_H
#define DLOCK_NODE_ADDON_H

#include <napi.h>
#include <uv.h>

extern "C" {
#include "dlock.h"
}
#include "dlock/adapters/libuv.h"

namespace dlnode {

struct Client;
struct Lock;

enum OpKind {
    OP_ACQUIRE = 0, // dlock_acquire_async
    OP_TRY = 1,     // dlock_try_acquire_async
    OP_WAIT = 2,    // dlock_wait_async
    OP_INSPECT = 3, // dlock_inspect_async
    OP_RELEASE = 4, // dlock_release_async
    OP_EXTEND = 5,  // dlock_extend_async
    OP_LOST = 6     // a kept-alive lock was lost (not started by JS)
};

// One started operation, or a lost notice, from its start to its delivery.
struct Op {
    Op *prev, *next;       // the client's in-flight list, then the Env queue
    Client *client;        // holds a reference
    Lock *lock;            // release/extend/lost: the subject (holds a reference)
    uint64_t id;           // the engine's id; lost: the id JS gave keepalive
    int kind;
    int status;
    dlock_lock *acquired;  // acquire ops, DLOCK_OK: the new handle (ours until delivered)
    int64_t fence;
    dlock_holder *holder;  // inspect, DLOCK_OK
    char *detail;          // error detail (malloc), NULL on success
};

// One C lock handle, shared by its JS External and the ops about it.
struct Lock {
    Client *client;   // holds a reference
    dlock_lock *l;    // NULL once freed
    int refs;
    int busy;         // ops in flight on l
    int free_later;   // JS is done with it: free l when busy drops to 0
    int kept;         // keepalive running (counted in client->active)
    double lost_id;   // passed back to JS with the lost notice
    Lock *prev, *next; // the client's list of locks whose l is alive
};

// Per-napi_env state: the delivery queue and its loop handles.
struct Env {
    napi_env env;
    uv_loop_t *loop;
    uv_check_t check;
    uv_idle_t idle;
    int armed;
    int closing; // handles closed: 0..2 close callbacks seen, then freed
    Op *head, *tail;
    napi_async_context actx;
    Client *clients; // open clients, closed at env teardown
};

struct Client {
    Env *env;        // NULL once closed
    dlock_client *c; // NULL once closed
    dlock_uv *uv;    // attached on the first start
    int refs;
    int active;      // ops not yet delivered + kept-alive locks
    Napi::FunctionReference on_done, on_lost; // strong only while active > 0
    Op *inflight;    // started, not completed by the engine
    Lock *locks;
    Client *prev, *next; // env->clients
};

// Intrusive doubly linked lists (the prev/next members above). tail, when
// given, is the list's last element, kept up to date.
template <typename T> inline void list_push_front(T *&head, T *n) {
    n->prev = nullptr;
    n->next = head;
    if (head != nullptr)
        head->prev = n;
    head = n;
}

template <typename T> inline void list_unlink(T *&head, T *n, T **tail = nullptr) {
    if (n->prev != nullptr)
        n->prev->next = n->next;
    else
        head = n->next;
    if (n->next != nullptr)
        n->next->prev = n->prev;
    else if (tail != nullptr)
        *tail = n->prev;
    n->prev = n->next = nullptr;
}

// addon.cc
void queue_op(Op *op);          // from the engine's callbacks: deliver later
void unqueue_client(Client *c); // drop c's queued ops (close)
Napi::Value holder_object(Napi::Env env, const dlock_holder *h);

// client.cc
void client_unref(Client *c);
void client_close(Client *c);
void lock_unref(Lock *k);
void op_finish(Op *op); // after delivery (or when dropped): release what it holds
void deliver_op(Napi::Env env, Op *op);
void client_init(Napi::Env env, Napi::Object exports, Env *e);

} // namespace dlnode

#endif
