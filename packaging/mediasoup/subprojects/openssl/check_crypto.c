/* VAS offline build: compile-time check of Debian's libcrypto headers. No code. */
#include <openssl/opensslv.h>
#include <openssl/evp.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "mediasoup-worker needs OpenSSL 3"
#endif

typedef int vas_libcrypto_check_t;
