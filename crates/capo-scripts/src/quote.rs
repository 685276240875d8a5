//! Quoting for POSIX `sh`: every argument a script gets on a host goes through here, in
//! [`crate::Call::program`]; capo also uses it to show commands as a person would type them.

/// Quotes `word` so that a POSIX shell reads it back as exactly one word with the same bytes.
///
/// Single quotes make everything literal except the single quote itself, which is written as
/// `'\''` (close, escaped quote, reopen). Words made only of safe characters are left bare so
/// that commands in reports stay readable.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@,+%".contains(&b));
    if safe {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each word and joins them with spaces.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(quote("main"), "main");
        assert_eq!(quote("/srv/puppet"), "/srv/puppet");
        assert_eq!(quote("--modulepath=a:b"), "--modulepath=a:b");
    }

    #[test]
    fn unsafe_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("main;touch /tmp/pwned"), "'main;touch /tmp/pwned'");
        assert_eq!(quote("$(id)"), "'$(id)'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn quoted_words_round_trip_through_a_real_shell() {
        let words = [
            "plain",
            "with space",
            "it's",
            "semi;colon",
            "$HOME",
            "`id`",
            "back\\slash",
            "\"dq\"",
            "new\nline",
            "",
            "-n",
            "*?[]",
        ];
        for w in words {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(w)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), w, "word {w:?}");
        }
    }

    #[test]
    fn join_quotes_every_word() {
        assert_eq!(join(["git", "pull", "a b"]), "git pull 'a b'");
    }
}
