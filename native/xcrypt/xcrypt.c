/*
 * A thin N-API binding to the system's libxcrypt (crypt(3), <crypt.h>): the
 * implementation slapd's {CRYPT} and Dovecot use. Plain C against node_api.h
 * only (ABI-stable: one build loads in every Node release with N-API 8).
 *
 *   crypt(phrase: Buffer, setting: string): Promise<string>
 *       crypt_rn on the libuv thread pool; rejects when libxcrypt refuses the
 *       setting (unknown method, malformed, out of range).
 *   gensalt(prefix: string, count: number): string
 *       crypt_gensalt_rn with random bytes from the operating system.
 *   checksalt(setting: string): number
 *       crypt_checksalt: 0 ok, 1 invalid, 2 disabled, 3 legacy, 4 too cheap.
 *
 * A phrase holding a NUL byte cannot reach crypt(3); it is refused.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "xcrypt: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* Fetches `n` arguments into argv; throws a TypeError showing `usage` when fewer were given. */
static bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

/* Copies a JS string argument into a fresh NUL-terminated buffer (caller frees). */
static char *string_arg(napi_env env, napi_value v, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, NULL, "xcrypt: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* Copies a Buffer argument into a NUL-terminated string; a NUL inside is refused. */
static char *phrase_arg(napi_env env, napi_value v) {
  bool is_buffer = false;
  void *data = NULL;
  size_t len = 0;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, v, &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "xcrypt: the phrase must be a Buffer");
    return NULL;
  }
  if (len > 0 && memchr(data, 0, len) != NULL) {
    napi_throw_error(env, "EINVAL", "xcrypt: the phrase contains a NUL byte");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, NULL, "xcrypt: out of memory");
    return NULL;
  }
  if (len > 0) memcpy(s, data, len);
  s[len] = 0;
  return s;
}

/* Overwrites and frees a buffer that held a pass phrase. */
static void free_secret(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *phrase;
  char *setting;
  struct crypt_data data;
  int ok;
  int err;
} crypt_job;

static void free_job(crypt_job *job) {
  free_secret(job->phrase);
  free(job->setting);
  free(job); /* libxcrypt erases its scratch area itself; data.output holds only the hash */
}

/* Runs on a libuv pool thread: no N-API calls here. */
static void crypt_execute(napi_env env, void *arg) {
  (void)env;
  crypt_job *job = arg;
  errno = 0;
  job->ok = crypt_rn(job->phrase, job->setting, &job->data, (int)sizeof job->data) != NULL;
  job->err = errno;
}

static void crypt_complete(napi_env env, napi_status status, void *arg) {
  crypt_job *job = arg;
  napi_value result;
  if (status == napi_ok && job->ok) {
    napi_create_string_utf8(env, job->data.output, NAPI_AUTO_LENGTH, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value msg, code;
    const char *text = status != napi_ok ? "xcrypt: the job was cancelled" : strerror(job->err ? job->err : EINVAL);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, job->err == ERANGE ? "ERANGE" : job->err == ENOSYS ? "ENOSYS" : "EINVAL", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static napi_value js_crypt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "xcrypt.crypt(phrase, setting)")) return NULL;
  crypt_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "xcrypt: out of memory");
    return NULL;
  }
  job->phrase = phrase_arg(env, argv[0]);
  if (!job->phrase) {
    free_job(job);
    return NULL;
  }
  job->setting = string_arg(env, argv[1], "xcrypt: the setting must be a string");
  if (!job->setting) {
    free_job(job);
    return NULL;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "xcrypt", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, crypt_execute, crypt_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free_job(job);
    napi_throw_error(env, NULL, "xcrypt: cannot queue the job");
    return NULL;
  }
  return promise;
}

static napi_value js_gensalt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "xcrypt.gensalt(prefix, count)")) return NULL;
  char *prefix = string_arg(env, argv[0], "xcrypt: the prefix must be a string");
  if (!prefix) return NULL;
  int64_t count = 0;
  if (napi_get_value_int64(env, argv[1], &count) != napi_ok || count < 0) {
    free(prefix);
    napi_throw_type_error(env, NULL, "xcrypt: the count must be a non-negative integer");
    return NULL;
  }
  char out[CRYPT_GENSALT_OUTPUT_SIZE];
  errno = 0;
  char *s = crypt_gensalt_rn(prefix, (unsigned long)count, NULL, 0, out, (int)sizeof out);
  free(prefix);
  if (!s) {
    napi_throw_error(env, "EINVAL", errno ? strerror(errno) : "xcrypt: crypt_gensalt refused the prefix or count");
    return NULL;
  }
  napi_value result;
  CHECK(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value js_checksalt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv, "xcrypt.checksalt(setting)")) return NULL;
  char *setting = string_arg(env, argv[0], "xcrypt: the setting must be a string");
  if (!setting) return NULL;
  int r = crypt_checksalt(setting);
  free(setting);
  napi_value result;
  CHECK(env, napi_create_int32(env, r, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"crypt", NULL, js_crypt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gensalt", NULL, js_gensalt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"checksalt", NULL, js_checksalt, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
