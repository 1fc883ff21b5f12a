/*
 * Self-test of the VAS libsrtp3-over-libsrtp2 layer, using the libsrtp 3 names
 * exactly as mediasoup's SrtpSession.cpp does: for each profile mediasoup
 * offers, an outbound and an inbound session share a key; RTP and RTCP
 * packets must survive protect + unprotect, and tampering, replay and short
 * buffers must be reported. Run by ../check-shims.sh.
 */
#include <srtp.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static int events;
static void on_event(srtp_event_data_t *data)
{
    (void)data;
    events++;
}

static srtp_t make_session(srtp_profile_t profile, srtp_ssrc_type_t type,
                           const uint8_t *key_and_salt)
{
    srtp_policy_t policy = NULL;
    srtp_ssrc_t ssrc = { type, 0 };
    srtp_t session = NULL;
    size_t key_len = srtp_profile_get_master_key_length(profile);
    size_t salt_len = srtp_profile_get_master_salt_length(profile);

    CHECK(srtp_policy_create(&policy) == srtp_err_status_ok);
    CHECK(srtp_policy_set_ssrc(policy, ssrc) == srtp_err_status_ok);
    CHECK(srtp_policy_set_profile(policy, profile) == srtp_err_status_ok);
    CHECK(srtp_policy_add_key(policy, key_and_salt, key_len,
                              key_and_salt + key_len, salt_len, NULL, 0) ==
          srtp_err_status_ok);
    CHECK(srtp_policy_set_allow_repeat_tx(policy, true) == srtp_err_status_ok);
    CHECK(srtp_policy_set_window_size(policy, 1024) == srtp_err_status_ok);
    CHECK(srtp_create(&session, policy) == srtp_err_status_ok);
    srtp_policy_destroy(policy);
    CHECK(session != NULL);
    return session;
}

static void test_profile(srtp_profile_t profile, const char *name)
{
    uint8_t key[64];
    uint8_t rtp[200], out[200 + SRTP_MAX_TRAILER_LEN], back[sizeof(out)];
    uint8_t rtcp[28], sout[28 + SRTP_MAX_TRAILER_LEN + 4];
    size_t out_len, back_len, i;
    srtp_t tx, rx;

    for (i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(i * 7 + profile);
    }
    tx = make_session(profile, ssrc_any_outbound, key);
    rx = make_session(profile, ssrc_any_inbound, key);

    /* RTP: V=2, PT 102, seq 1, ts 1000, SSRC 0x11223344, payload. */
    memset(rtp, 0, sizeof(rtp));
    rtp[0] = 0x80; rtp[1] = 102; rtp[3] = 1;
    rtp[6] = 0x03; rtp[7] = 0xe8;
    rtp[8] = 0x11; rtp[9] = 0x22; rtp[10] = 0x33; rtp[11] = 0x44;
    for (i = 12; i < sizeof(rtp); i++) {
        rtp[i] = (uint8_t)i;
    }

    out_len = sizeof(out);
    CHECK(srtp_protect(tx, rtp, sizeof(rtp), out, &out_len, 0) == srtp_err_status_ok);
    CHECK(out_len > sizeof(rtp) && out_len <= sizeof(rtp) + SRTP_MAX_TAG_LEN);
    CHECK(memcmp(out + 12, rtp + 12, 16) != 0); /* payload was encrypted */

    memcpy(back, out, out_len);
    back_len = out_len;
    CHECK(srtp_unprotect(rx, back, back_len, back, &back_len) == srtp_err_status_ok);
    CHECK(back_len == sizeof(rtp) && memcmp(back, rtp, sizeof(rtp)) == 0);

    /* Replay of the same packet is refused. */
    memcpy(back, out, out_len);
    back_len = out_len;
    CHECK(srtp_unprotect(rx, back, back_len, back, &back_len) == srtp_err_status_replay_fail);

    /* A tampered packet fails authentication. */
    rtp[3] = 2;
    out_len = sizeof(out);
    CHECK(srtp_protect(tx, rtp, sizeof(rtp), out, &out_len, 0) == srtp_err_status_ok);
    out[40] ^= 1;
    back_len = out_len;
    CHECK(srtp_unprotect(rx, out, out_len, out, &back_len) == srtp_err_status_auth_fail);

    /* Output buffer too small. */
    out_len = sizeof(rtp);
    CHECK(srtp_protect(tx, rtp, sizeof(rtp), out, &out_len, 0) == srtp_err_status_buffer_small);

    /* RTCP receiver report. */
    memset(rtcp, 0, sizeof(rtcp));
    rtcp[0] = 0x80; rtcp[1] = 201; rtcp[3] = 6;
    rtcp[4] = 0x55; rtcp[5] = 0x66; rtcp[6] = 0x77; rtcp[7] = 0x88;
    for (i = 8; i < sizeof(rtcp); i++) {
        rtcp[i] = (uint8_t)(0xa0 + i);
    }
    out_len = sizeof(sout);
    CHECK(srtp_protect_rtcp(tx, rtcp, sizeof(rtcp), sout, &out_len, 0) == srtp_err_status_ok);
    CHECK(out_len > sizeof(rtcp));
    back_len = out_len;
    CHECK(srtp_unprotect_rtcp(rx, sout, out_len, sout, &back_len) == srtp_err_status_ok);
    CHECK(back_len == sizeof(rtcp) && memcmp(sout, rtcp, sizeof(rtcp)) == 0);

    srtp_stream_remove(rx, htonl(0x11223344));
    CHECK(srtp_dealloc(tx) == srtp_err_status_ok);
    CHECK(srtp_dealloc(rx) == srtp_err_status_ok);
    printf("ok %s\n", name);
}

int main(void)
{
    srtp_policy_t policy = NULL;
    uint8_t k[16] = { 0 };

    CHECK(srtp_init() == srtp_err_status_ok);
    printf("libsrtp: %s\n", srtp_get_version_string());
    CHECK(srtp_install_event_handler(on_event) == srtp_err_status_ok);

    test_profile(srtp_profile_aes128_cm_sha1_80, "AES_CM_128_HMAC_SHA1_80");
    test_profile(srtp_profile_aes128_cm_sha1_32, "AES_CM_128_HMAC_SHA1_32");
    test_profile(srtp_profile_aead_aes_128_gcm, "AEAD_AES_128_GCM");
    test_profile(srtp_profile_aead_aes_256_gcm, "AEAD_AES_256_GCM");

    /* MKI is not supported; wrong key lengths are refused at creation. */
    CHECK(srtp_policy_create(&policy) == srtp_err_status_ok);
    CHECK(srtp_policy_add_key(policy, k, 16, k, 14, k, 4) == srtp_err_status_bad_mki);
    srtp_policy_destroy(policy);

    CHECK(srtp_shutdown() == srtp_err_status_ok);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("srtp3 compat: all checks passed\n");
    return 0;
}
