/*
 * glibc's malloc tuned at run time (mallopt(3), malloc_trim(3)), for what the
 * environment cannot do in every way the appliance is started: pm2's cluster
 * mode hands a worker its app's environment too late for glibc, which reads
 * MALLOC_ARENA_MAX once, before main(). Plain C against node_api.h. On a C
 * library other than glibc every function is a no-op that returns false/-1.
 *
 *   glibc: boolean
 *       true where the addon was built against glibc (the functions below act).
 *   arenaMax(n: number): boolean
 *       mallopt(M_ARENA_MAX, n): at most n arenas from now on. Arenas already
 *       made stay; a thread without one gets one of the existing arenas once
 *       there are n. True when glibc accepted it.
 *   arenas(): number
 *       how many arenas malloc has now (the <heap> elements of malloc_info(3)); -1 if unknown.
 *   trim(): boolean
 *       malloc_trim(0): free memory at the top of every arena and whole free
 *       pages inside them returned to the kernel. True when some was.
 */
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "mallocopt: N-API call failed");       \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* `b` as a JavaScript boolean; NULL with an exception pending when N-API fails. */
static napi_value boolean(napi_env env, int b) {
  napi_value v;
  CHECK(env, napi_get_boolean(env, b, &v));
  return v;
}

static napi_value js_arena_max(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_range_error(env, NULL, "arenaMax: a positive integer");
    return NULL;
  }
  int ok = 0;
#ifdef __GLIBC__
  ok = mallopt(M_ARENA_MAX, n) == 1;
#endif
  return boolean(env, ok);
}

static napi_value js_arenas(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  int count = -1;
#ifdef __GLIBC__
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f) {
    int ok = malloc_info(0, f) == 0;
    fclose(f);
    if (ok && text) {
      count = 0;
      for (const char *p = text; (p = strstr(p, "<heap nr=")) != NULL; p++) count++;
    }
    free(text);
  }
#endif
  CHECK(env, napi_create_int32(env, count, &result));
  return result;
}

static napi_value js_trim(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  return boolean(env, released);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "arenaMax", NULL, js_arena_max, NULL, NULL, NULL, napi_default, NULL },
    { "arenas", NULL, js_arenas, NULL, NULL, NULL, napi_default, NULL },
    { "trim", NULL, js_trim, NULL, NULL, NULL, napi_default, NULL },
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
#ifdef __GLIBC__
  napi_value v = boolean(env, 1);
#else
  napi_value v = boolean(env, 0);
#endif
  if (!v) return NULL;
  CHECK(env, napi_set_named_property(env, exports, "glibc", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
