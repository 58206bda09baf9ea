//! The event log's line format, written without allocation so the shim can emit it from a hook.
//!
//! One JSON object per line (JSON Lines). The shim formats a line into a `LineBuf` on its stack and
//! writes it with a single `write(2)` to an O_APPEND file, so lines from many threads and processes
//! never interleave. Field reference: docs/reference.md, "The event log"; [`schema`] holds the
//! same lines as serde types, for reading a log back.

use core::fmt::{self, Write};

pub mod schema;

pub const LINE_MAX: usize = 4096;

/// A fixed-capacity line. A write past the end sets `overflowed`, and every write after it is
/// dropped too; `finish` then cuts the line back to the end of the last complete field (see
/// `commit`) and closes it with a `"truncated":true` marker, so the line is always valid JSON.
pub struct LineBuf {
    buf: [u8; LINE_MAX],
    len: usize,
    /// The end of the last complete field: where an overflowed line is cut.
    safe: usize,
    overflowed: bool,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; LINE_MAX],
            len: 0,
            safe: 0,
            overflowed: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        // Keep room for the truncation marker and newline.
        if self.overflowed || bytes.len() > self.room() {
            self.overflowed = true;
            return;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Bytes that can still be pushed.
    pub fn room(&self) -> usize {
        LINE_MAX - 32 - self.len.min(LINE_MAX - 32)
    }

    /// Bytes written so far: a mark for `cut_to`.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Drops everything after `mark` (from `len`) and forgets an overflow that happened after it.
    pub fn cut_to(&mut self, mark: usize) {
        if mark <= self.len {
            self.len = mark;
            self.overflowed = false;
        }
    }

    /// Marks the end of a complete field written by hand (`key` then `push`es), so an overflow
    /// later cuts the line here. The `field_*` methods commit by themselves.
    pub fn commit(&mut self) {
        if !self.overflowed {
            self.safe = self.len;
        }
    }

    /// `"key":` with a leading comma unless it is the first field.
    pub fn key(&mut self, key: &str) {
        if self.len > 1 {
            self.push(b",");
        }
        self.push(b"\"");
        self.push(key.as_bytes());
        self.push(b"\":");
    }

    pub fn field_str(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.json_string(value);
        self.commit();
    }

    pub fn field_num(&mut self, key: &str, value: impl fmt::Display) {
        self.key(key);
        let _ = write!(self, "{value}");
        self.commit();
    }

    pub fn field_display(&mut self, key: &str, value: impl fmt::Display) {
        self.key(key);
        self.push(b"\"");
        let _ = write!(Escaper(self), "{value}");
        self.push(b"\"");
        self.commit();
    }

    /// A JSON string from raw bytes: escapes quotes, backslashes and control bytes; bytes that are
    /// not valid UTF-8 become U+FFFD so the line always parses.
    pub fn json_string(&mut self, value: &[u8]) {
        self.push(b"\"");
        for chunk in value.utf8_chunks() {
            let _ = Escaper(self).write_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                self.push("\u{fffd}".as_bytes());
            }
        }
        self.push(b"\"");
    }

    pub fn begin(&mut self) {
        self.len = 0;
        self.overflowed = false;
        self.push(b"{");
        self.safe = self.len;
    }

    /// Closes the object and appends the newline; returns the bytes to write.
    pub fn finish(&mut self) -> &[u8] {
        if self.overflowed {
            self.len = self.safe;
            let tail = b",\"truncated\":true";
            self.buf[self.len..self.len + tail.len()].copy_from_slice(tail);
            self.len += tail.len();
        }
        self.buf[self.len] = b'}';
        self.buf[self.len + 1] = b'\n';
        self.len += 2;
        &self.buf[..self.len]
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

struct Escaper<'a>(&'a mut LineBuf);

impl Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.push(b"\\\""),
                '\\' => self.0.push(b"\\\\"),
                '\n' => self.0.push(b"\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    self.0.push(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json_even_with_odd_bytes_and_overflow() {
        let mut b = LineBuf::new();
        b.begin();
        b.field_str("ev", b"fault");
        b.field_num("fd", 5);
        b.field_str("path", b"/tmp/a\"b\\c\n\x01\xff");
        let line = b.finish().to_vec();
        assert_eq!(*line.last().unwrap(), b'\n');
        let s = std::str::from_utf8(&line).unwrap();
        assert!(s.starts_with("{\"ev\":\"fault\",\"fd\":5,"), "{s}");
        assert!(s.contains(r#"/tmp/a\"b\\c\n\u0001"#), "{s}");

        b.begin();
        for _ in 0..1000 {
            b.field_str("k", b"0123456789");
        }
        let s = String::from_utf8(b.finish().to_vec()).unwrap();
        assert!(
            s.len() <= LINE_MAX && s.ends_with(",\"truncated\":true}\n"),
            "{s}"
        );
    }

    /// A value cut in the middle (a long string, many short ones after a long one) never leaves
    /// an open string or a dangling key: the line is cut back to the last whole field.
    #[test]
    fn an_overflow_inside_a_value_cuts_back_to_the_last_whole_field() {
        let mut b = LineBuf::new();
        for split in [1usize, 7, 100, 3000, 4000, 5000] {
            b.begin();
            b.field_str("ev", b"start");
            b.field_str("long", &vec![b'x'; split]);
            b.field_str("a", b"\"\n");
            for _ in 0..50 {
                b.field_num("n", 1234567);
            }
            let line = b.finish().to_vec();
            assert!(line.len() <= LINE_MAX);
            let text = std::str::from_utf8(&line).unwrap().trim_end();
            assert!(text.starts_with("{\"ev\":\"start\""), "{text}");
            assert!(text.ends_with('}'), "{text}");
            let v: serde_json::Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(v["ev"], "start");
        }
    }
}
