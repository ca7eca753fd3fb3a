/*
 * The DNS port's UDP socket in batches (Linux): recvmmsg(2) of up to SLOTS
 * datagrams per wake-up, ONE call into JavaScript for the batch, sendmmsg(2)
 * of its replies. Node's dgram costs a libuv callback, a Buffer, an rinfo
 * object and a send request per datagram; this costs a few system calls per
 * batch. Plain C against node_api.h and uv.h (libuv is part of Node's ABI).
 *
 *   open(host: string, port: number, ipv6: boolean, reusePort: boolean, rcvbuf: number): Socket
 *       a UDP socket bound to host:port, non-blocking; throws Error(code) (EADDRINUSE...).
 *   start(sock, input: Buffer, lengths: Int32Array, replies: Buffer, meta: Int32Array,
 *         onBatch: (count: number) => number): void
 *       watches the socket; for each batch the datagrams are in input at i*SLOT_BYTES
 *       (lengths[i] octets, -1 when the kernel truncated it; source(sock, i) gives the
 *       source address of datagram i when asked);
 *       onBatch returns k and has written k replies: meta[3j] the datagram it answers,
 *       meta[3j+1] its offset in replies, meta[3j+2] its length.
 *   source(sock, i: number): string
 *       during onBatch, the source address of datagram i of the batch ('' otherwise).
 *       A string per datagram costs N-API calls and a string whether or not it is used;
 *       the answer path wants it only for rate limiting and logs.
 *   stats(sock): number[]  [datagrams, batches, replies sent, replies dropped (EAGAIN), send errors, truncated]
 *   close(sock): void
 *   SLOTS, SLOT_BYTES: the batch geometry the buffers must have.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS 32
/* A UDP payload is at most 65,507 octets over IPv4 and 65,527 over IPv6: a slot holds any. */
#define SLOT_BYTES 65536
/* Batches read per wake-up before the loop gets a turn (TCP clients and timers wait meanwhile). */
#define ROUNDS 8

typedef struct box box_t;

typedef struct {
  box_t *box;
  napi_async_cleanup_hook_handle cleanup;
  int fd;
  int closed;
  int in_batch;
  int batch_count;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_batch, input_ref, lengths_ref, replies_ref, meta_ref, self_ref;
  napi_async_context async;
  unsigned char *input, *replies;
  size_t replies_len;
  int32_t *lengths, *meta;
  struct mmsghdr msgs[SLOTS];
  struct iovec iov[SLOTS];
  struct sockaddr_storage src[SLOTS];
  struct mmsghdr out[SLOTS];
  struct iovec out_iov[SLOTS];
  double stats[6];
} sock_t;

/* What the JS object wraps: the socket until it is started and closed (NULL after). */
struct box {
  void *s;
};

#define CHECK(env, call)                                                     \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error((env), NULL, "udpbatch: N-API call failed: " #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

/*
 * The JS object is collected: a socket never started is closed and freed here. A started one is
 * held by its own reference until close() or the environment's teardown, which free it once
 * libuv has closed its poll handle (box->s is NULL by then).
 */
static void box_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  box_t *box = data;
  sock_t *s = box->s;
  if (s) {
    if (s->fd >= 0) close(s->fd);
    free(s);
  }
  free(box);
}

/* The box of a socket object; NULL, with a TypeError thrown, for anything else. */
static box_t *unwrap_box(napi_env env, napi_value v) {
  box_t *box = NULL;
  if (napi_unwrap(env, v, (void **)&box) != napi_ok || !box) { napi_throw_type_error(env, NULL, "udpbatch: not a socket"); return NULL; }
  return box;
}

/* The open socket of a socket object; NULL, with an error thrown, for anything else or a closed one. */
static sock_t *unwrap(napi_env env, napi_value v) {
  box_t *box = unwrap_box(env, v);
  if (!box) return NULL;
  if (!box->s) { napi_throw_error(env, NULL, "udpbatch: the socket is closed"); return NULL; }
  return box->s;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value msg, code, e;
  const char *name = err == EADDRINUSE ? "EADDRINUSE" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EACCES ? "EACCES" : err == EINVAL ? "EINVAL" : "EIO";
  char text[160];
  snprintf(text, sizeof text, "%s %s: %s", syscall, name, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &e);
  napi_throw(env, e);
  return NULL;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, NULL, "open(host, port, ipv6, reusePort, rcvbuf)"); return NULL; }
  char host[64];
  size_t hl;
  uint32_t port; bool v6, reuse; int32_t rcvbuf;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok
      || napi_get_value_bool(env, argv[2], &v6) != napi_ok || napi_get_value_bool(env, argv[3], &reuse) != napi_ok
      || napi_get_value_int32(env, argv[4], &rcvbuf) != napi_ok || port > 65535) {
    napi_throw_type_error(env, NULL, "open(host: string, port: number, ipv6: boolean, reusePort: boolean, rcvbuf: number)");
    return NULL;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6; a->sin6_port = htons(port); sl = sizeof *a;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return throw_errno(env, EINVAL, "bind");
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET; a->sin_port = htons(port); sl = sizeof *a;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return throw_errno(env, EINVAL, "bind");
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1;
  /* as libuv binds udp6 (dual stack left to the system default, as dgram does without ipv6Only) */
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) { int e = errno; close(fd); return throw_errno(env, e, "setsockopt"); }
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0) { int e = errno; close(fd); return throw_errno(env, e, "bind"); }
  sock_t *s = calloc(1, sizeof *s);
  box_t *box = calloc(1, sizeof *box);
  if (!s || !box) { close(fd); free(s); free(box); napi_throw_error(env, NULL, "udpbatch: out of memory"); return NULL; }
  s->fd = fd;
  s->env = env;
  s->box = box;
  box->s = s;
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok || napi_wrap(env, obj, box, box_finalize, NULL, NULL) != napi_ok) {
    close(fd); free(s); free(box);
    napi_throw_error(env, NULL, "udpbatch: wrap failed");
    return NULL;
  }
  return obj;
}

static void close_cb(uv_handle_t *h) {
  sock_t *s = h->data;
  if (s->cleanup) napi_remove_async_cleanup_hook(s->cleanup);
  free(s);
}

/*
 * The environment (a worker thread, the process) is torn down with the socket open: close it,
 * so that no handle is left on the thread's loop. Runs before the wrap finalizers.
 */
static void teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  sock_t *s = arg;
  s->cleanup = handle;
  s->closed = 1;
  s->box->s = NULL;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  uv_close((uv_handle_t *)&s->poll, close_cb);
}

/* Sends the batch's k replies (meta) to the sources of the datagrams they answer. */
static void send_replies(sock_t *s, int k) {
  int m = 0;
  for (int j = 0; j < k && j < SLOTS; j++) {
    int32_t i = s->meta[3 * j], off = s->meta[3 * j + 1], len = s->meta[3 * j + 2];
    if (i < 0 || i >= SLOTS || off < 0 || len < 0 || (size_t)off + (size_t)len > s->replies_len) { s->stats[4]++; continue; }
    s->out_iov[m].iov_base = s->replies + off;
    s->out_iov[m].iov_len = (size_t)len;
    memset(&s->out[m].msg_hdr, 0, sizeof s->out[m].msg_hdr);
    s->out[m].msg_hdr.msg_iov = &s->out_iov[m];
    s->out[m].msg_hdr.msg_iovlen = 1;
    s->out[m].msg_hdr.msg_name = &s->src[i];
    s->out[m].msg_hdr.msg_namelen = s->msgs[i].msg_hdr.msg_namelen;
    m++;
  }
  int sent = 0;
  while (sent < m) {
    int r = sendmmsg(s->fd, s->out + sent, (unsigned)(m - sent), MSG_DONTWAIT);
    if (r > 0) { sent += r; s->stats[2] += r; continue; }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      /* the send buffer is full: UDP is lossy, the kernel would drop them too */
      s->stats[3] += m - sent;
      return;
    }
    /* this one failed (EMSGSIZE, a route...): skip it, send the rest */
    s->stats[4]++;
    sent++;
  }
}

/* The address of `a` as text (inet_ntop), '' for another family. */
static void source_text(const struct sockaddr_storage *a, char text[INET6_ADDRSTRLEN]) {
  text[0] = 0;
  if (a->ss_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, text, INET6_ADDRSTRLEN);
  else if (a->ss_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, text, INET6_ADDRSTRLEN);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  sock_t *s = h->data;
  if (status < 0 || s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  s->in_batch = 1;
  for (int round = 0; round < ROUNDS && !s->closed; round++) {
    for (int i = 0; i < SLOTS; i++) {
      s->iov[i].iov_base = s->input + (size_t)i * SLOT_BYTES;
      s->iov[i].iov_len = SLOT_BYTES;
      memset(&s->msgs[i].msg_hdr, 0, sizeof s->msgs[i].msg_hdr);
      s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
      s->msgs[i].msg_hdr.msg_iovlen = 1;
      s->msgs[i].msg_hdr.msg_name = &s->src[i];
      s->msgs[i].msg_hdr.msg_namelen = sizeof s->src[i];
    }
    int n = recvmmsg(s->fd, s->msgs, SLOTS, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    s->stats[0] += n;
    s->stats[1]++;
    s->batch_count = n;
    napi_value fn, recv, args[1], result;
    for (int i = 0; i < n; i++) {
      s->lengths[i] = (s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)s->msgs[i].msg_len;
      if (s->lengths[i] < 0) s->stats[5]++;
    }
    napi_create_int32(env, n, &args[0]);
    napi_get_reference_value(env, s->on_batch, &fn);
    napi_get_reference_value(env, s->self_ref, &recv);
    napi_status st = napi_make_callback(env, s->async, recv, fn, 1, args, &result);
    if (st != napi_ok) {
      /* onBatch threw (it catches everything itself): report it as Node reports an uncaught error */
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) { napi_value e; napi_get_and_clear_last_exception(env, &e); napi_fatal_exception(env, e); }
      break;
    }
    int32_t k = 0;
    if (s->closed) break;
    if (napi_get_value_int32(env, result, &k) == napi_ok && k > 0) send_replies(s, k);
    if (n < SLOTS) break;
  }
  s->in_batch = 0;
  s->batch_count = 0;
  napi_close_handle_scope(env, scope);
  if (s->closed) uv_close((uv_handle_t *)&s->poll, close_cb);
}

static bool buffer_arg(napi_env env, napi_value v, size_t need, void **data, size_t *len) {
  bool ok = false;
  if (napi_is_buffer(env, v, &ok) != napi_ok || !ok || napi_get_buffer_info(env, v, data, len) != napi_ok || *len < need) return false;
  return true;
}

static bool int32_arg(napi_env env, napi_value v, size_t need, int32_t **data) {
  bool ok = false;
  napi_typedarray_type t;
  size_t len;
  void *d;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &ok) != napi_ok || !ok || napi_get_typedarray_info(env, v, &t, &len, &d, &ab, &off) != napi_ok || t != napi_int32_array || len < need) return false;
  *data = d;
  return true;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], self_unused;
  (void)self_unused;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) { napi_throw_type_error(env, NULL, "start(sock, input, lengths, replies, meta, onBatch)"); return NULL; }
  sock_t *s = unwrap(env, argv[0]);
  if (!s) return NULL;
  if (s->on_batch || s->closed) { napi_throw_error(env, NULL, "udpbatch: socket already started or closed"); return NULL; }
  void *input, *replies;
  size_t in_len;
  napi_valuetype t;
  if (!buffer_arg(env, argv[1], (size_t)SLOTS * SLOT_BYTES, &input, &in_len) || !int32_arg(env, argv[2], SLOTS, &s->lengths)
      || !buffer_arg(env, argv[3], SLOT_BYTES, &replies, &s->replies_len) || !int32_arg(env, argv[4], 3 * SLOTS, &s->meta)
      || napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "start(sock, input: Buffer(SLOTS*SLOT_BYTES), lengths: Int32Array(SLOTS), replies: Buffer, meta: Int32Array(3*SLOTS), onBatch)");
    return NULL;
  }
  s->input = input;
  s->replies = replies;
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "dcmx:udpbatch", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &s->async));
  /* the buffers and the socket object stay alive while the socket is watched */
  CHECK(env, napi_create_reference(env, argv[1], 1, &s->input_ref));
  CHECK(env, napi_create_reference(env, argv[2], 1, &s->lengths_ref));
  CHECK(env, napi_create_reference(env, argv[3], 1, &s->replies_ref));
  CHECK(env, napi_create_reference(env, argv[4], 1, &s->meta_ref));
  CHECK(env, napi_create_reference(env, argv[0], 1, &s->self_ref));
  CHECK(env, napi_create_reference(env, argv[5], 1, &s->on_batch));
  if (uv_poll_init(loop, &s->poll, s->fd) != 0) { napi_throw_error(env, NULL, "udpbatch: uv_poll_init failed"); return NULL; }
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  CHECK(env, napi_add_async_cleanup_hook(env, teardown, s, &s->cleanup));
  return NULL;
}

static napi_value js_source(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], str;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char text[INET6_ADDRSTRLEN] = "";
  box_t *box = NULL;
  int32_t i = -1;
  /* Never throws for a socket closed meanwhile or an index out of the batch: '' (callers log it). */
  if (argc >= 2 && napi_unwrap(env, argv[0], (void **)&box) == napi_ok && box && box->s && napi_get_value_int32(env, argv[1], &i) == napi_ok) {
    sock_t *s = box->s;
    if (s->in_batch && i >= 0 && i < s->batch_count) source_text(&s->src[i], text);
  }
  CHECK(env, napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &str));
  return str;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "stats(sock)"); return NULL; }
  sock_t *s = unwrap(env, argv[0]);
  if (!s) return NULL;
  CHECK(env, napi_create_array_with_length(env, 6, &arr));
  for (uint32_t i = 0; i < 6; i++) {
    CHECK(env, napi_create_double(env, s->stats[i], &v));
    CHECK(env, napi_set_element(env, arr, i, v));
  }
  return arr;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "close(sock)"); return NULL; }
  box_t *box = unwrap_box(env, argv[0]);
  if (!box) return NULL;
  sock_t *s = box->s;
  if (!s) return NULL; /* closed already */
  s->closed = 1;
  if (s->on_batch) {
    box->s = NULL;
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
    uv_poll_stop(&s->poll);
    napi_ref refs[] = { s->on_batch, s->input_ref, s->lengths_ref, s->replies_ref, s->meta_ref, s->self_ref };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) napi_delete_reference(env, refs[i]);
    napi_async_destroy(env, s->async);
    close(s->fd);
    s->fd = -1;
    /* freed by close_cb; inside a batch, on_readable closes the handle when the batch returns */
    if (!s->in_batch) uv_close((uv_handle_t *)&s->poll, close_cb);
  } else {
    /* never started: the finalizer frees it */
    close(s->fd);
    s->fd = -1;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL },
    { "source", NULL, js_source, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value v;
  CHECK(env, napi_create_int32(env, SLOTS, &v));
  CHECK(env, napi_set_named_property(env, exports, "SLOTS", v));
  CHECK(env, napi_create_int32(env, SLOT_BYTES, &v));
  CHECK(env, napi_set_named_property(env, exports, "SLOT_BYTES", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
