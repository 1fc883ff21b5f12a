/* VAS offline build: compile-time check of Debian's libssl headers. No code. */
#include <openssl/ssl.h>
#include <openssl/bio.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "mediasoup-worker needs OpenSSL 3"
#endif

/* DtlsTransport.cpp's onSslBioOut relies on these OpenSSL 3 BIO callback bits. */
#if !defined(BIO_CB_RETURN) || !defined(BIO_CB_WRITE) || !defined(BIO_CB_CTRL)
#error "BIO callback flags missing"
#endif

typedef int vas_libssl_check_t;
