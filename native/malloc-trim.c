/*
 * malloc_trim(0) for the worker (lib/memory/allocator-trim.ts). glibc keeps the pages of
 * freed heap chunks resident unless they sit at the very top of the heap; after a burst of
 * work (tasks' HTTP bodies, compiler zones, stream buffers) a long-running worker stays
 * megabytes above its idle size although nothing uses them. malloc_trim(0) hands every whole
 * free page back (madvise), which nothing else Node.js offers does. Node-API only: the
 * module loads in every Node.js 24 build.
 */
#include <malloc.h>
#include <node_api.h>

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, malloc_trim(0) != 0, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
