/* VAS offline build: compile-time check of Debian's libuv headers. No code. */
#include <uv.h>

#if UV_VERSION_MAJOR != 1 || UV_VERSION_MINOR < 44
#error "mediasoup-worker needs libuv 1.x, at least 1.44"
#endif

typedef int vas_libuv_check_t;
