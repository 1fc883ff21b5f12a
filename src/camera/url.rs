//! Camera URLs carry credentials: in the userinfo (`rtsp://user:pass@host/...`) or, for some
//! firmware, in the query string (`?user=admin&password=...`). [`RtspUrl`] holds the URL
//! FFmpeg needs and shows only the redacted form through `Display` and `Debug`, so a log line,
//! an error, the status API or a metrics label cannot leak a secret by accident.

use std::fmt;

/// Query keys whose values are secrets (compared without case).
const SECRET_QUERY_KEYS: &[&str] = &[
    "user", "username", "usr", "login", "password", "passwd", "pass", "pwd", "psw", "auth",
    "token", "key",
];

/// A camera URL. Only [`RtspUrl::expose`] returns the secret form, for FFmpeg.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    full: String,
}

impl RtspUrl {
    pub fn new(url: &str) -> RtspUrl {
        RtspUrl {
            full: url.to_string(),
        }
    }

    /// `url` with `username` and `password` put into its userinfo (replacing any there),
    /// percent-encoded so that `@`, `:` or `/` in a password cannot end the userinfo early;
    /// FFmpeg decodes them before it authenticates.
    pub fn with_credentials(url: &str, username: &str, password: &str) -> RtspUrl {
        let Some(scheme_end) = url.find("://") else {
            return RtspUrl::new(url);
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = match rest[..authority_end].rfind('@') {
            Some(at) => &rest[at + 1..],
            None => rest,
        };
        RtspUrl {
            full: format!(
                "{}{}:{}@{}",
                &url[..scheme_end + 3],
                encode_userinfo(username),
                encode_userinfo(password),
                host
            ),
        }
    }

    /// The URL with its secrets, for FFmpeg and nothing else.
    pub fn expose(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.full))
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtspUrl({})", redact_url(&self.full))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Replaces the userinfo part of a URL with `***`, and the values of query keys that carry
/// credentials (`user`, `password`, ...) with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut out = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let (query, fragment) = match query.find('#') {
            Some(h) => query.split_at(h),
            None => (query, ""),
        };
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}{fragment}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let table = [
            ("rtsp://h/a", "rtsp://h/a"),
            (
                "rtsp://admin:secret@10.0.0.5:554/s1",
                "rtsp://***@10.0.0.5:554/s1",
            ),
            ("rtsp://admin@h/a", "rtsp://***@h/a"),
            ("rtsp://u:p%40ss@h/a", "rtsp://***@h/a"),
            ("rtsp://u:p@ss@h/a", "rtsp://***@h/a"),
            ("rtsp://h/path@weird", "rtsp://h/path@weird"),
            ("rtsp://h?x=a@b", "rtsp://h?x=a@b"),
            ("not a url", "not a url"),
            // query-string credentials of some firmware
            (
                "rtsp://h/live?channel=1&user=admin&password=s3cret",
                "rtsp://h/live?channel=1&user=***&password=***",
            ),
            (
                "rtsp://h/cgi?USER=admin&PWD=x&stream=0#frag",
                "rtsp://h/cgi?USER=***&PWD=***&stream=0#frag",
            ),
            ("rtsps://a:b@h/x?token=abc", "rtsps://***@h/x?token=***"),
            ("rtsp://h/x?user", "rtsp://h/x?user"),
        ];
        for (url, want) in table {
            assert_eq!(redact_url(url), want, "{url}");
            let typed = RtspUrl::new(url);
            assert_eq!(typed.to_string(), want);
            assert_eq!(format!("{typed:?}"), format!("RtspUrl({want})"));
        }
    }

    #[test]
    fn separate_credentials_go_into_the_userinfo() {
        // (url, user, password, exposed)
        let table = [
            ("rtsp://h:554/s", "admin", "pw", "rtsp://admin:pw@h:554/s"),
            ("rtsp://old:x@h/s", "admin", "pw", "rtsp://admin:pw@h/s"),
            (
                "rtsp://h/s",
                "ad min",
                "p@ss:w/rd%",
                "rtsp://ad%20min:p%40ss%3Aw%2Frd%25@h/s",
            ),
            ("rtsp://h", "u", "p", "rtsp://u:p@h"),
        ];
        for (url, user, pass, want) in table {
            let u = RtspUrl::with_credentials(url, user, pass);
            assert_eq!(u.expose(), want);
            assert!(!u.to_string().contains(pass) || pass.len() < 3, "{u}");
            assert!(!format!("{u:?}").contains("pw"));
        }
    }
}
