//! Making remote text safe for a terminal: escape sequences and control characters are shown
//! inert (as `\x1b`-style escapes), so a hostile host cannot retitle, clear or recolour the
//! operator's terminal.

/// Renders `text` for one table cell or line: every control character (C0, DEL, C1) is escaped,
/// newlines and tabs included.
pub fn line(text: &str) -> String {
    escape(text, false)
}

/// Renders multi-line `text`: like [`line()`] but newlines and tabs are kept.
pub fn block(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, keep_layout: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let code = c as u32;
        let control = code < 0x20 || code == 0x7f || (0x80..=0x9f).contains(&code);
        // Bidi overrides can make a line read differently from what it is.
        let bidi = matches!(code, 0x202a..=0x202e | 0x2066..=0x2069);
        if keep_layout && (c == '\n' || c == '\t') {
            out.push(c);
        } else if control || bidi {
            if code <= 0xff {
                out.push_str(&format!("\\x{code:02x}"));
            } else {
                out.push_str(&format!("\\u{{{code:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_inert() {
        assert_eq!(line("\u{1b}]0;pwned\u{7}ok"), "\\x1b]0;pwned\\x07ok");
        assert_eq!(line("\u{1b}[2Jx"), "\\x1b[2Jx");
        assert_eq!(line("a\nb\tc\r"), "a\\x0ab\\x09c\\x0d");
        assert_eq!(line("\u{9b}31m"), "\\x9b31m");
        assert_eq!(line("\u{202e}abc"), "\\u{202e}abc");
        assert_eq!(line("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn blocks_keep_newlines_and_tabs() {
        assert_eq!(block("a\n\tb\u{1b}[0m"), "a\n\tb\\x1b[0m");
    }
}
