//! Splits the bytes a model sends into reply lines, refusing any line longer than the
//! model's `max_reply_bytes` before it is held in full.

#[derive(Debug, Default)]
pub struct LineBuffer {
    bytes: Vec<u8>,
    /// Bytes at the front already searched for a newline.
    scanned: usize,
}

/// A line longer than the limit (newline included), or about to become one.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong {
    pub limit: usize,
}

impl LineBuffer {
    pub fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    /// The next complete line without its newline, `Ok(None)` if there is none yet, or
    /// `TooLong` when the line (complete or not) exceeds `limit` bytes with its newline.
    pub fn next_line(&mut self, limit: usize) -> Result<Option<Vec<u8>>, TooLong> {
        match self.bytes[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(at) => {
                let end = self.scanned + at;
                if end + 1 > limit {
                    return Err(TooLong { limit });
                }
                let mut line: Vec<u8> = self.bytes.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                Ok(Some(line))
            }
            None if self.bytes.len() >= limit => Err(TooLong { limit }),
            None => {
                self.scanned = self.bytes.len();
                Ok(None)
            }
        }
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines out after each chunk.
    type LinesAfter = &'static [&'static [&'static str]];

    #[test]
    fn lines_table() {
        // (chunks fed one by one, limit, lines out after each chunk, error at the end?)
        let table: &[(&[&str], usize, LinesAfter, bool)] = &[
            (&["a\nb\n"], 10, &[&["a", "b"]], false),
            (&["ab", "c\nd", "e\n"], 10, &[&[], &["abc"], &["de"]], false),
            (&["\n\n"], 10, &[&["", ""]], false),
            // 9 bytes and the newline: exactly the limit.
            (&["123456789\n"], 10, &[&["123456789"]], false),
            (&["1234567890\n"], 10, &[&[]], true),
            // Too long before any newline arrives.
            (&["12345", "67890"], 10, &[&[], &[]], true),
            (&["ok\n12345678901"], 10, &[&["ok"]], true),
        ];
        for (chunks, limit, want, too_long) in table {
            let mut buf = LineBuffer::default();
            let mut err = false;
            for (chunk, lines) in chunks.iter().zip(want.iter()) {
                buf.extend(chunk.as_bytes());
                let mut got = Vec::new();
                loop {
                    match buf.next_line(*limit) {
                        Ok(Some(l)) => got.push(String::from_utf8(l).unwrap()),
                        Ok(None) => break,
                        Err(TooLong { limit: l }) => {
                            assert_eq!(l, *limit);
                            err = true;
                            break;
                        }
                    }
                }
                assert_eq!(&got, lines, "{chunks:?}");
            }
            assert_eq!(err, *too_long, "{chunks:?}");
        }
    }
}
