//! Camera URLs carry credentials (`rtsp://user:pass@host/...`); they never reach a log, an error
//! or the status API.

/// Replaces the userinfo part of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
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
        ];
        for (url, want) in table {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
