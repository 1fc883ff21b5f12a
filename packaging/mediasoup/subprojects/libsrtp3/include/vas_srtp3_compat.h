/*
 * VAS offline build of mediasoup-sys: the part of the libsrtp 3 API that
 * mediasoup's worker uses, implemented over Debian's libsrtp2 (2.5).
 *
 * Every name here carries the prefix vas_srtp3_ / VAS_SRTP3_, so this header
 * can be included next to libsrtp2's <srtp2/srtp.h> (the implementation does)
 * and none of its symbols can clash with libsrtp2's at link time. The sibling
 * header <srtp.h> maps the libsrtp 3 names that mediasoup's code spells onto
 * these.
 *
 * Not supported (mediasoup does not use them): MKI, cryptex, several keys per
 * policy, policies for specific SSRCs added after creation.
 */

#ifndef VAS_SRTP3_COMPAT_H
#define VAS_SRTP3_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Same limits as libsrtp2 and libsrtp 3: longest authentication tag, longest
 * MKI, and so the largest trailer srtp_protect() may append. */
#define VAS_SRTP3_MAX_TAG_LEN 16
#define VAS_SRTP3_MAX_MKI_LEN 128
#define VAS_SRTP3_MAX_TRAILER_LEN (VAS_SRTP3_MAX_TAG_LEN + VAS_SRTP3_MAX_MKI_LEN)

/* Values 0..27 are libsrtp2's (and libsrtp 3's); the last two are libsrtp 3's. */
typedef enum {
    vas_srtp3_err_status_ok = 0,
    vas_srtp3_err_status_fail = 1,
    vas_srtp3_err_status_bad_param = 2,
    vas_srtp3_err_status_alloc_fail = 3,
    vas_srtp3_err_status_dealloc_fail = 4,
    vas_srtp3_err_status_init_fail = 5,
    vas_srtp3_err_status_terminus = 6,
    vas_srtp3_err_status_auth_fail = 7,
    vas_srtp3_err_status_cipher_fail = 8,
    vas_srtp3_err_status_replay_fail = 9,
    vas_srtp3_err_status_replay_old = 10,
    vas_srtp3_err_status_algo_fail = 11,
    vas_srtp3_err_status_no_such_op = 12,
    vas_srtp3_err_status_no_ctx = 13,
    vas_srtp3_err_status_cant_check = 14,
    vas_srtp3_err_status_key_expired = 15,
    vas_srtp3_err_status_socket_err = 16,
    vas_srtp3_err_status_signal_err = 17,
    vas_srtp3_err_status_nonce_bad = 18,
    vas_srtp3_err_status_read_fail = 19,
    vas_srtp3_err_status_write_fail = 20,
    vas_srtp3_err_status_parse_err = 21,
    vas_srtp3_err_status_encode_err = 22,
    vas_srtp3_err_status_semaphore_err = 23,
    vas_srtp3_err_status_pfkey_err = 24,
    vas_srtp3_err_status_bad_mki = 25,
    vas_srtp3_err_status_pkt_idx_old = 26,
    vas_srtp3_err_status_pkt_idx_adv = 27,
    vas_srtp3_err_status_buffer_small = 28,
    vas_srtp3_err_status_cryptex_err = 29
} vas_srtp3_err_status_t;

typedef enum {
    vas_srtp3_profile_reserved = 0,
    vas_srtp3_profile_aes128_cm_sha1_80 = 1,
    vas_srtp3_profile_aes128_cm_sha1_32 = 2,
    vas_srtp3_profile_null_sha1_80 = 5,
    vas_srtp3_profile_null_sha1_32 = 6,
    vas_srtp3_profile_aead_aes_128_gcm = 7,
    vas_srtp3_profile_aead_aes_256_gcm = 8
} vas_srtp3_profile_t;

typedef enum {
    vas_srtp3_ssrc_undefined = 0,
    vas_srtp3_ssrc_specific = 1,
    vas_srtp3_ssrc_any_inbound = 2,
    vas_srtp3_ssrc_any_outbound = 3
} vas_srtp3_ssrc_type_t;

typedef struct {
    vas_srtp3_ssrc_type_t type;
    unsigned int value;
} vas_srtp3_ssrc_t;

typedef enum {
    vas_srtp3_event_ssrc_collision,
    vas_srtp3_event_key_soft_limit,
    vas_srtp3_event_key_hard_limit,
    vas_srtp3_event_packet_index_limit
} vas_srtp3_event_t;

/* Opaque: a session is libsrtp2's srtp_ctx_t, a policy is our own object. */
typedef struct vas_srtp3_session *vas_srtp3_t;
typedef struct vas_srtp3_policy *vas_srtp3_policy_t;

typedef struct {
    vas_srtp3_t session;
    uint32_t ssrc; /* host order */
    vas_srtp3_event_t event;
} vas_srtp3_event_data_t;

typedef void(vas_srtp3_event_handler_func_t)(vas_srtp3_event_data_t *data);

vas_srtp3_err_status_t vas_srtp3_init(void);
vas_srtp3_err_status_t vas_srtp3_shutdown(void);
const char *vas_srtp3_get_version_string(void);
vas_srtp3_err_status_t vas_srtp3_install_event_handler(
    vas_srtp3_event_handler_func_t *func);

size_t vas_srtp3_profile_get_master_key_length(vas_srtp3_profile_t profile);
size_t vas_srtp3_profile_get_master_salt_length(vas_srtp3_profile_t profile);

vas_srtp3_err_status_t vas_srtp3_policy_create(vas_srtp3_policy_t *policy);
vas_srtp3_err_status_t vas_srtp3_policy_set_ssrc(vas_srtp3_policy_t policy,
                                                 vas_srtp3_ssrc_t ssrc);
vas_srtp3_err_status_t vas_srtp3_policy_set_profile(vas_srtp3_policy_t policy,
                                                    vas_srtp3_profile_t profile);
vas_srtp3_err_status_t vas_srtp3_policy_add_key(vas_srtp3_policy_t policy,
                                                const uint8_t *key,
                                                size_t key_len,
                                                const uint8_t *salt,
                                                size_t salt_len,
                                                const uint8_t *mki,
                                                size_t mki_len);
vas_srtp3_err_status_t vas_srtp3_policy_set_allow_repeat_tx(
    vas_srtp3_policy_t policy, bool allow);
vas_srtp3_err_status_t vas_srtp3_policy_set_window_size(vas_srtp3_policy_t policy,
                                                        size_t window_size);
void vas_srtp3_policy_destroy(vas_srtp3_policy_t policy);

vas_srtp3_err_status_t vas_srtp3_create(vas_srtp3_t *session,
                                        const vas_srtp3_policy_t policy);
vas_srtp3_err_status_t vas_srtp3_dealloc(vas_srtp3_t session);
vas_srtp3_err_status_t vas_srtp3_stream_remove(vas_srtp3_t session,
                                               uint32_t ssrc);

vas_srtp3_err_status_t vas_srtp3_protect(vas_srtp3_t session,
                                         const uint8_t *rtp,
                                         size_t rtp_len,
                                         uint8_t *srtp,
                                         size_t *srtp_len,
                                         size_t mki_index);
vas_srtp3_err_status_t vas_srtp3_unprotect(vas_srtp3_t session,
                                           const uint8_t *srtp,
                                           size_t srtp_len,
                                           uint8_t *rtp,
                                           size_t *rtp_len);
vas_srtp3_err_status_t vas_srtp3_protect_rtcp(vas_srtp3_t session,
                                              const uint8_t *rtcp,
                                              size_t rtcp_len,
                                              uint8_t *srtcp,
                                              size_t *srtcp_len,
                                              size_t mki_index);
vas_srtp3_err_status_t vas_srtp3_unprotect_rtcp(vas_srtp3_t session,
                                                const uint8_t *srtcp,
                                                size_t srtcp_len,
                                                uint8_t *rtcp,
                                                size_t *rtcp_len);

#ifdef __cplusplus
}
#endif

#endif /* VAS_SRTP3_COMPAT_H */
