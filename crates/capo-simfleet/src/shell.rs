//! Just enough POSIX shell to play simple ad-hoc commands: [`simulate`] "runs" a short
//! command line (`true`, `echo X`, `sleep 1; hostname`, ...) without any process, reading
//! its words with [`word`]. (capo's own scripts are recognized by their id: see
//! [`crate::script`].)

use std::time::Duration;

/// Reads one shell word from the start of `s` (after leading blanks): single quotes, double
/// quotes (with `\"`, `\\`, `\$`, `` \` `` escapes) and backslash escapes outside quotes. Stops
/// at an unquoted blank, newline or one of `;&|<>()`. Returns the word and the rest; `None`
/// when there is no word or a quote is not closed.
pub fn word(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    let mut any = false;
    while let Some(&(i, c)) = chars.peek() {
        match c {
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => out.push(c),
                        None => return None,
                    }
                }
                any = true;
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\' | '$' | '`'))) => out.push(c),
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                out.push('\\');
                                out.push(c);
                            }
                            None => return None,
                        },
                        Some((_, c)) => out.push(c),
                        None => return None,
                    }
                }
                any = true;
            }
            '\\' => {
                chars.next();
                match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, c)) => out.push(c),
                    None => return None,
                }
                any = true;
            }
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return any.then(|| (out, &s[i..]));
            }
            c => {
                chars.next();
                out.push(c);
                any = true;
            }
        }
    }
    any.then_some((out, ""))
}

/// What a simulated command line printed and how it ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Played {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status.
    pub code: u32,
    /// Time the command would take (`sleep`s).
    pub sleep: Duration,
}

/// Facts a simulated host answers with.
pub struct HostFacts<'a> {
    /// The host's inventory name, answered by `hostname`.
    pub name: &'a str,
}

/// Longest `sleep` honoured, so a typo cannot park a channel for days.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// "Runs" a simple command line: commands separated by `;`, `&&`, `||`, `|` or newlines,
/// each a list of words. Known commands: `true`, `:`, `false`, `exit [N]`, `echo [-n] ...`,
/// `printf FMT [ARGS]` (`%s`, `%d`, `\n`, `\t`), `sleep SECS`, `hostname`, `uname [-snrmoa]`,
/// `id -u`, `whoami`. Anything else prints nothing and exits 0. Output redirected with `>` is
/// dropped; a `|` passes nothing on (the right side runs with the left side's status).
pub fn simulate(line: &str, host: &HostFacts<'_>) -> Played {
    let mut played = Played::default();
    let mut rest = line;
    // Whether the next command runs, from the previous status and operator.
    let mut run_next = true;
    loop {
        let (words, redirected, op, after) = simple_command(rest);
        if run_next && !words.is_empty() {
            let mut out = String::new();
            let (code, exit) = run_one(&words, host, &mut out, &mut played);
            if !redirected && op != Some("|") {
                played.stdout.push_str(&out);
            }
            played.code = code;
            if exit {
                return played;
            }
        }
        // A skipped command leaves the status as it was, as in sh.
        match op {
            None => return played,
            Some("&&") => run_next = played.code == 0,
            Some("||") => run_next = played.code != 0,
            Some(_) => run_next = true,
        }
        rest = after;
    }
}

/// Splits off the first simple command: its words (redirections removed), whether its standard
/// output was redirected, the operator after it, and the text after that operator.
fn simple_command(s: &str) -> (Vec<String>, bool, Option<&'static str>, &str) {
    let mut words = Vec::new();
    let mut redirected = false;
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return (words, redirected, None, rest);
        }
        for op in ["&&", "||", ";", "\n", "|", "&"] {
            if let Some(after) = rest.strip_prefix(op) {
                let op = match op {
                    "&&" => "&&",
                    "||" => "||",
                    "|" => "|",
                    _ => ";",
                };
                return (words, redirected, Some(op), after);
            }
        }
        // Redirections: [N]>, [N]>>, [N]<, with the target glued or next; >&N duplicates.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after_fd = &rest[digits..];
        if after_fd.starts_with(['>', '<']) {
            let fd = if digits == 0 {
                if after_fd.starts_with('<') {
                    0
                } else {
                    1
                }
            } else {
                rest[..digits].parse().unwrap_or(9)
            };
            let op_len = if after_fd.starts_with(">>") || after_fd.starts_with(">&") {
                2
            } else {
                1
            };
            let target = &after_fd[op_len..];
            let (_, after) = word(target).unwrap_or_default();
            if fd == 1 {
                redirected = true;
            }
            rest = after;
            continue;
        }
        match word(rest) {
            Some((w, after)) => {
                // Leading NAME=VALUE assignments only set the environment.
                let assignment = words.is_empty()
                    && w.split_once('=').is_some_and(|(name, _)| {
                        !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    });
                if !assignment {
                    words.push(w);
                }
                rest = after;
            }
            // `(`, `)` or an unclosed quote: give up on the rest.
            None => return (words, redirected, None, ""),
        }
    }
}

/// Runs one command; returns its status and whether it ends the whole line (`exit`).
fn run_one(
    words: &[String],
    host: &HostFacts<'_>,
    out: &mut String,
    played: &mut Played,
) -> (u32, bool) {
    let args = &words[1..];
    match words[0].as_str() {
        "true" | ":" => (0, false),
        "false" => (1, false),
        "exit" => (
            args.first()
                .and_then(|a| a.parse::<u32>().ok())
                .map_or(played.code, |c| c & 0xff),
            true,
        ),
        "echo" => {
            let (newline, args) = match args.first().map(String::as_str) {
                Some("-n") => (false, &args[1..]),
                _ => (true, args),
            };
            out.push_str(&args.join(" "));
            if newline {
                out.push('\n');
            }
            (0, false)
        }
        "printf" => {
            if let Some((format, args)) = args.split_first() {
                printf(format, args, out);
            }
            (0, false)
        }
        "sleep" => {
            let secs = args
                .first()
                .and_then(|a| a.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0);
            match secs {
                Some(secs) => {
                    played.sleep =
                        (played.sleep + Duration::from_secs_f64(secs.min(3600.0))).min(MAX_SLEEP);
                    (0, false)
                }
                None => {
                    played.stderr.push_str("sleep: invalid time interval\n");
                    (1, false)
                }
            }
        }
        "hostname" => {
            out.push_str(host.name);
            out.push('\n');
            (0, false)
        }
        "uname" => {
            let flags: String = args
                .iter()
                .flat_map(|a| a.trim_start_matches('-').chars())
                .collect();
            let parts: Vec<&str> = if flags.contains('a') {
                vec![
                    "Linux",
                    host.name,
                    KERNEL,
                    "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
                    "x86_64",
                    "GNU/Linux",
                ]
            } else if flags.is_empty() {
                vec!["Linux"]
            } else {
                flags
                    .chars()
                    .filter_map(|f| match f {
                        's' => Some("Linux"),
                        'n' => Some(host.name),
                        'r' => Some(KERNEL),
                        'm' => Some("x86_64"),
                        'o' => Some("GNU/Linux"),
                        _ => None,
                    })
                    .collect()
            };
            out.push_str(&parts.join(" "));
            out.push('\n');
            (0, false)
        }
        "id" => {
            out.push_str(if args.iter().any(|a| a == "-u") {
                "0\n"
            } else {
                "uid=0(root) gid=0(root) groups=0(root)\n"
            });
            (0, false)
        }
        "whoami" => {
            out.push_str("root\n");
            (0, false)
        }
        _ => (0, false),
    }
}

/// The simulated hosts' kernel release (`uname -r`).
const KERNEL: &str = "6.1.0-27-amd64";

/// A small `printf`: `%s`, `%d`, `%%` and the escapes `\n`, `\t`, `\\`; the format is reused
/// while arguments remain, as the shell's printf does.
fn printf(format: &str, args: &[String], out: &mut String) {
    let mut args = args.iter();
    loop {
        let mut used = false;
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('\\') => out.push('\\'),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                '%' => match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s') | Some('d') => {
                        used = true;
                        if let Some(a) = args.next() {
                            out.push_str(a);
                        }
                    }
                    Some(other) => {
                        out.push('%');
                        out.push(other);
                    }
                    None => out.push('%'),
                },
                c => out.push(c),
            }
        }
        if !used || args.len() == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostFacts<'static> = HostFacts { name: "sim00042" };

    #[test]
    fn words_are_unquoted_like_sh() {
        assert_eq!(word("'a b'c d"), Some(("a bc".into(), " d")));
        assert_eq!(word("'it'\\''s' x"), Some(("it's".into(), " x")));
        assert_eq!(
            word("\"a \\\"b\\\" $x\";"),
            Some(("a \"b\" $x".into(), ";"))
        );
        assert_eq!(word("  plain>f"), Some(("plain".into(), ">f")));
        assert_eq!(word("'open"), None);
        assert_eq!(word("   "), None);
    }

    #[test]
    fn simple_commands_play_like_a_shell() {
        let p = simulate("true", &HOST);
        assert_eq!((p.stdout.as_str(), p.code), ("", 0));
        let p = simulate("echo hello   'big world'", &HOST);
        assert_eq!(p.stdout, "hello big world\n");
        let p = simulate("false || echo rescued; hostname && uname -r", &HOST);
        assert_eq!(p.stdout, "rescued\nsim00042\n6.1.0-27-amd64\n");
        assert_eq!(p.code, 0);
        let p = simulate("false && echo never", &HOST);
        assert_eq!((p.stdout.as_str(), p.code), ("", 1));
        let p = simulate("echo a; exit 3; echo b", &HOST);
        assert_eq!((p.stdout.as_str(), p.code), ("a\n", 3));
        let p = simulate("sleep 0.5; sleep 1; echo done >/dev/null", &HOST);
        assert_eq!(p.sleep, Duration::from_millis(1500));
        assert_eq!(p.stdout, "");
        let p = simulate("LC_ALL=C printf '%s=%d\\n' a 1 b 2", &HOST);
        assert_eq!(p.stdout, "a=1\nb=2\n");
        let p = simulate("puppet --version | head -n1", &HOST);
        assert_eq!((p.stdout.as_str(), p.code), ("", 0));
    }
}
