/*
 * VAS offline build of mediasoup-sys: the libsrtp 3 calls mediasoup's worker
 * makes (see ../include/vas_srtp3_compat.h), implemented over Debian's
 * libsrtp2 2.5.
 *
 * libsrtp 3 differs from libsrtp2 where mediasoup is concerned in:
 *   - policies are opaque objects built with srtp_policy_create/set_.../
 *     add_key/destroy instead of a public struct filled by the caller;
 *   - protect/unprotect take a const input buffer, an output buffer and
 *     size_t lengths (the output capacity in, the result length out) instead
 *     of one in-place buffer and an int length;
 *   - srtp_remove_stream() became srtp_stream_remove();
 *   - two error codes were added (buffer_small, cryptex_err).
 * A session is libsrtp2's own srtp_t, passed through as an opaque pointer.
 */

/* explicit_bzero() in glibc's <string.h>. */
#define _DEFAULT_SOURCE

#include <srtp2/srtp.h>

#include "vas_srtp3_compat.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Error codes 0..27 are numbered alike in both libraries: checked here. */
_Static_assert((int)vas_srtp3_err_status_ok == (int)srtp_err_status_ok, "err ok");
_Static_assert((int)vas_srtp3_err_status_auth_fail == (int)srtp_err_status_auth_fail,
               "err auth_fail");
_Static_assert((int)vas_srtp3_err_status_replay_fail == (int)srtp_err_status_replay_fail,
               "err replay_fail");
_Static_assert((int)vas_srtp3_err_status_bad_mki == (int)srtp_err_status_bad_mki,
               "err bad_mki");
_Static_assert((int)vas_srtp3_err_status_pkt_idx_adv == (int)srtp_err_status_pkt_idx_adv,
               "err pkt_idx_adv");
_Static_assert(VAS_SRTP3_MAX_TAG_LEN == SRTP_MAX_TAG_LEN, "tag length");
_Static_assert(VAS_SRTP3_MAX_MKI_LEN == SRTP_MAX_MKI_LEN, "MKI length");
_Static_assert(VAS_SRTP3_MAX_TRAILER_LEN == SRTP_MAX_TRAILER_LEN, "trailer length");

/* Room libsrtp2 needs after an RTCP packet: trailer plus the SRTCP index. */
#define VAS_SRTCP_ROOM (SRTP_MAX_TRAILER_LEN + 4)

/* Large enough for the longest master key + salt (AES-256-GCM: 32 + 12). */
#define VAS_MAX_KEY_AND_SALT 64

struct vas_srtp3_policy {
    srtp_policy_t p2;            /* the libsrtp2 policy handed to srtp_create */
    srtp_profile_t profile;      /* libsrtp2 profile, reserved while unset */
    size_t master_key_len;       /* bytes of key in key_and_salt */
    size_t master_salt_len;      /* bytes of salt after the key */
    int has_key;
    unsigned char key_and_salt[VAS_MAX_KEY_AND_SALT];
};

static vas_srtp3_err_status_t from_srtp2(srtp_err_status_t status)
{
    if ((int)status >= (int)srtp_err_status_ok &&
        (int)status <= (int)srtp_err_status_pkt_idx_adv) {
        return (vas_srtp3_err_status_t)status;
    }
    return vas_srtp3_err_status_fail;
}

static srtp_profile_t to_srtp2_profile(vas_srtp3_profile_t profile)
{
    switch (profile) {
    case vas_srtp3_profile_aes128_cm_sha1_80:
        return srtp_profile_aes128_cm_sha1_80;
    case vas_srtp3_profile_aes128_cm_sha1_32:
        return srtp_profile_aes128_cm_sha1_32;
    case vas_srtp3_profile_null_sha1_80:
        return srtp_profile_null_sha1_80;
    case vas_srtp3_profile_null_sha1_32:
        return srtp_profile_null_sha1_32;
    case vas_srtp3_profile_aead_aes_128_gcm:
        return srtp_profile_aead_aes_128_gcm;
    case vas_srtp3_profile_aead_aes_256_gcm:
        return srtp_profile_aead_aes_256_gcm;
    default:
        return srtp_profile_reserved;
    }
}

/* ---- library, events ---------------------------------------------------- */

static vas_srtp3_event_handler_func_t *_Atomic user_event_handler;

static void event_trampoline(srtp_event_data_t *data)
{
    vas_srtp3_event_handler_func_t *handler = atomic_load(&user_event_handler);
    vas_srtp3_event_data_t event;

    if (handler == NULL || data == NULL) {
        return;
    }
    event.session = (vas_srtp3_t)data->session;
    event.ssrc = data->ssrc;
    switch (data->event) {
    case event_ssrc_collision:
        event.event = vas_srtp3_event_ssrc_collision;
        break;
    case event_key_soft_limit:
        event.event = vas_srtp3_event_key_soft_limit;
        break;
    case event_key_hard_limit:
        event.event = vas_srtp3_event_key_hard_limit;
        break;
    case event_packet_index_limit:
    default:
        event.event = vas_srtp3_event_packet_index_limit;
        break;
    }
    handler(&event);
}

vas_srtp3_err_status_t vas_srtp3_init(void)
{
    return from_srtp2(srtp_init());
}

vas_srtp3_err_status_t vas_srtp3_shutdown(void)
{
    return from_srtp2(srtp_shutdown());
}

const char *vas_srtp3_get_version_string(void)
{
    return srtp_get_version_string();
}

vas_srtp3_err_status_t vas_srtp3_install_event_handler(
    vas_srtp3_event_handler_func_t *func)
{
    atomic_store(&user_event_handler, func);
    return from_srtp2(srtp_install_event_handler(func ? event_trampoline : NULL));
}

size_t vas_srtp3_profile_get_master_key_length(vas_srtp3_profile_t profile)
{
    srtp_profile_t p2 = to_srtp2_profile(profile);

    return p2 == srtp_profile_reserved ? 0 : srtp_profile_get_master_key_length(p2);
}

size_t vas_srtp3_profile_get_master_salt_length(vas_srtp3_profile_t profile)
{
    srtp_profile_t p2 = to_srtp2_profile(profile);

    return p2 == srtp_profile_reserved ? 0 : srtp_profile_get_master_salt_length(p2);
}

/* ---- policies ----------------------------------------------------------- */

vas_srtp3_err_status_t vas_srtp3_policy_create(vas_srtp3_policy_t *policy)
{
    struct vas_srtp3_policy *pol;

    if (policy == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    *policy = NULL;
    pol = calloc(1, sizeof(*pol));
    if (pol == NULL) {
        return vas_srtp3_err_status_alloc_fail;
    }
    pol->p2.ssrc.type = ssrc_undefined;
    pol->profile = srtp_profile_reserved;
    *policy = pol;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_policy_set_ssrc(vas_srtp3_policy_t policy,
                                                 vas_srtp3_ssrc_t ssrc)
{
    if (policy == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    switch (ssrc.type) {
    case vas_srtp3_ssrc_specific:
        policy->p2.ssrc.type = ssrc_specific;
        break;
    case vas_srtp3_ssrc_any_inbound:
        policy->p2.ssrc.type = ssrc_any_inbound;
        break;
    case vas_srtp3_ssrc_any_outbound:
        policy->p2.ssrc.type = ssrc_any_outbound;
        break;
    default:
        return vas_srtp3_err_status_bad_param;
    }
    policy->p2.ssrc.value = ssrc.value;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_policy_set_profile(vas_srtp3_policy_t policy,
                                                    vas_srtp3_profile_t profile)
{
    srtp_profile_t p2 = to_srtp2_profile(profile);
    srtp_err_status_t err;

    if (policy == NULL || p2 == srtp_profile_reserved) {
        return vas_srtp3_err_status_bad_param;
    }
    err = srtp_crypto_policy_set_from_profile_for_rtp(&policy->p2.rtp, p2);
    if (err == srtp_err_status_ok) {
        err = srtp_crypto_policy_set_from_profile_for_rtcp(&policy->p2.rtcp, p2);
    }
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    policy->profile = p2;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_policy_add_key(vas_srtp3_policy_t policy,
                                                const uint8_t *key,
                                                size_t key_len,
                                                const uint8_t *salt,
                                                size_t salt_len,
                                                const uint8_t *mki,
                                                size_t mki_len)
{
    if (policy == NULL || key == NULL || salt == NULL || key_len == 0 ||
        salt_len == 0) {
        return vas_srtp3_err_status_bad_param;
    }
    /* One key per policy and no MKI: all mediasoup uses. */
    if (mki != NULL || mki_len != 0) {
        return vas_srtp3_err_status_bad_mki;
    }
    if (policy->has_key || key_len > VAS_MAX_KEY_AND_SALT ||
        salt_len > VAS_MAX_KEY_AND_SALT - key_len) {
        return vas_srtp3_err_status_bad_param;
    }
    memcpy(policy->key_and_salt, key, key_len);
    memcpy(policy->key_and_salt + key_len, salt, salt_len);
    policy->master_key_len = key_len;
    policy->master_salt_len = salt_len;
    policy->has_key = 1;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_policy_set_allow_repeat_tx(
    vas_srtp3_policy_t policy, bool allow)
{
    if (policy == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    policy->p2.allow_repeat_tx = allow ? 1 : 0;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_policy_set_window_size(vas_srtp3_policy_t policy,
                                                        size_t window_size)
{
    /* libsrtp2 accepts 0 (its default, 128) or 64 .. 0x7fff. */
    if (policy == NULL ||
        (window_size != 0 && (window_size < 64 || window_size >= 0x8000))) {
        return vas_srtp3_err_status_bad_param;
    }
    policy->p2.window_size = (unsigned long)window_size;
    return vas_srtp3_err_status_ok;
}

void vas_srtp3_policy_destroy(vas_srtp3_policy_t policy)
{
    if (policy == NULL) {
        return;
    }
    explicit_bzero(policy->key_and_salt, sizeof(policy->key_and_salt));
    free(policy);
}

/* ---- sessions ----------------------------------------------------------- */

vas_srtp3_err_status_t vas_srtp3_create(vas_srtp3_t *session,
                                        const vas_srtp3_policy_t policy)
{
    srtp_policy_t p2;
    srtp_t ctx = NULL;
    srtp_err_status_t err;

    if (session == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    *session = NULL;
    if (policy == NULL || policy->profile == srtp_profile_reserved ||
        !policy->has_key || policy->p2.ssrc.type == ssrc_undefined) {
        return vas_srtp3_err_status_bad_param;
    }
    if (policy->master_key_len !=
            srtp_profile_get_master_key_length(policy->profile) ||
        policy->master_salt_len !=
            srtp_profile_get_master_salt_length(policy->profile)) {
        return vas_srtp3_err_status_bad_param;
    }
    /* libsrtp2 copies the key material during srtp_create(). */
    p2 = policy->p2;
    p2.key = policy->key_and_salt;
    p2.keys = NULL;
    p2.num_master_keys = 0;
    p2.enc_xtn_hdr = NULL;
    p2.enc_xtn_hdr_count = 0;
    p2.next = NULL;
    err = srtp_create(&ctx, &p2);
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    *session = (vas_srtp3_t)ctx;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_dealloc(vas_srtp3_t session)
{
    if (session == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    return from_srtp2(srtp_dealloc((srtp_t)session));
}

vas_srtp3_err_status_t vas_srtp3_stream_remove(vas_srtp3_t session, uint32_t ssrc)
{
    if (session == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    /* Both libraries take the SSRC in network byte order here. */
    return from_srtp2(srtp_remove_stream((srtp_t)session, ssrc));
}

/*
 * libsrtp2 works in place on one buffer with an int length; copy the input
 * into the caller's output buffer (if distinct) after checking that it has
 * `room` bytes to spare, then let libsrtp2 transform it there.
 */
static vas_srtp3_err_status_t stage(const uint8_t *in,
                                    size_t in_len,
                                    uint8_t *out,
                                    const size_t *out_len,
                                    size_t room,
                                    int *len)
{
    if (in == NULL || out == NULL || out_len == NULL || in_len == 0 ||
        in_len > (size_t)INT_MAX - room) {
        return vas_srtp3_err_status_bad_param;
    }
    if (*out_len < in_len + room) {
        return vas_srtp3_err_status_buffer_small;
    }
    if (out != in) {
        memmove(out, in, in_len);
    }
    *len = (int)in_len;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_protect(vas_srtp3_t session,
                                         const uint8_t *rtp,
                                         size_t rtp_len,
                                         uint8_t *srtp,
                                         size_t *srtp_len,
                                         size_t mki_index)
{
    int len = 0;
    vas_srtp3_err_status_t st;
    srtp_err_status_t err;

    if (session == NULL || mki_index != 0) {
        return vas_srtp3_err_status_bad_param;
    }
    st = stage(rtp, rtp_len, srtp, srtp_len, SRTP_MAX_TRAILER_LEN, &len);
    if (st != vas_srtp3_err_status_ok) {
        return st;
    }
    err = srtp_protect((srtp_t)session, srtp, &len);
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    *srtp_len = (size_t)len;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_unprotect(vas_srtp3_t session,
                                           const uint8_t *srtp,
                                           size_t srtp_len,
                                           uint8_t *rtp,
                                           size_t *rtp_len)
{
    int len = 0;
    vas_srtp3_err_status_t st;
    srtp_err_status_t err;

    if (session == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    st = stage(srtp, srtp_len, rtp, rtp_len, 0, &len);
    if (st != vas_srtp3_err_status_ok) {
        return st;
    }
    err = srtp_unprotect((srtp_t)session, rtp, &len);
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    *rtp_len = (size_t)len;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_protect_rtcp(vas_srtp3_t session,
                                              const uint8_t *rtcp,
                                              size_t rtcp_len,
                                              uint8_t *srtcp,
                                              size_t *srtcp_len,
                                              size_t mki_index)
{
    int len = 0;
    vas_srtp3_err_status_t st;
    srtp_err_status_t err;

    if (session == NULL || mki_index != 0) {
        return vas_srtp3_err_status_bad_param;
    }
    st = stage(rtcp, rtcp_len, srtcp, srtcp_len, VAS_SRTCP_ROOM, &len);
    if (st != vas_srtp3_err_status_ok) {
        return st;
    }
    err = srtp_protect_rtcp((srtp_t)session, srtcp, &len);
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    *srtcp_len = (size_t)len;
    return vas_srtp3_err_status_ok;
}

vas_srtp3_err_status_t vas_srtp3_unprotect_rtcp(vas_srtp3_t session,
                                                const uint8_t *srtcp,
                                                size_t srtcp_len,
                                                uint8_t *rtcp,
                                                size_t *rtcp_len)
{
    int len = 0;
    vas_srtp3_err_status_t st;
    srtp_err_status_t err;

    if (session == NULL) {
        return vas_srtp3_err_status_bad_param;
    }
    st = stage(srtcp, srtcp_len, rtcp, rtcp_len, 0, &len);
    if (st != vas_srtp3_err_status_ok) {
        return st;
    }
    err = srtp_unprotect_rtcp((srtp_t)session, rtcp, &len);
    if (err != srtp_err_status_ok) {
        return from_srtp2(err);
    }
    *rtcp_len = (size_t)len;
    return vas_srtp3_err_status_ok;
}
