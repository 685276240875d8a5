use super::*;

// Fixed vectors produced with OpenSSH 9.2: `ssh-keygen -t ... -N '' -C ''`,
// fingerprints from `ssh-keygen -lf`, hashed lines from `ssh-keygen -H`.
const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMD8n5C6F1xcFTg2/F+VX4jgMjTJb5qXri5PXgeG9O48";
const K1_FP: &str = "SHA256:qA7JYZkpSdlx7+JXG81F0+Cy6WLj/VfSaMd7d7IBQPM";
const K2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBb4/OZPuC4jCpqrRX/sh9nkLp3vZL2W2CXPf8jzUbA+";
const K2_FP: &str = "SHA256:SdHneFNzO9BI6BasBL6b0Tb+VbYHHo/4fFR1soVVaik";
const K3: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCwzHVEJWDDwB8D3t9Zaxc7ysJgucsFZlqtDKww715P6AZVXaKpvpL+l76JcK9n6tRDTRKw+z/i76YA+Kmj1g+RyBIwCkngm/zjYmLr8mxaW8mH3VbDwUK7b67B7tVbQu5cb3QIW0NKr21BpwVpWi6IZ9gaYMGw48GDZbVCbu7ji3C1uTiUNCOct4R1PChBUON4zKKCqCm3ivkZlIc7BvrO2P0vB2KlNF4sap0/2e1Bls5xPTVBnP7Xbi59Fj4BFK5dBYe/1tbES7RKXeGJXdgBTSFFaCdS6RfB4qfYIhjcsAk4YSS2xzKdi8w2o0/YQw7RLoGN7LiYRT6pMc4FOMiH";
const K3_FP: &str = "SHA256:m7St8DQN3UlP9TuKvCtX2x/6kBUqWI8rdaD65wapwyQ";
const K4: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBII5i0hVExt5cYHe8Xya+Nviszap9CFFWiFrqa/WSfUF1nLPBB0xWvuxHvktM5YmVLP1P0TcieDZCgCZzHpvJkw=";
const K4_FP: &str = "SHA256:i5QZFV/6DeJIxJgSJXEkOogDUJDnLeOwKkIt+NfuZf8";
// `[example.org]:2222 K1` and `web1.example.org K2`, hashed by ssh-keygen -H.
const HASHED_2222_K1: &str = "|1|6oF8hV0nCibFBEXG2oholWj3v2Y=|THDpY5qzj8VeF682kBK038OBJCo=";
const HASHED_WEB1_K2: &str = "|1|iVy3in+ilL6Ko66je8HspCJIi4Y=|mAGofWjbaIg8J+M2iXbZoWo0+lI=";

fn key(line: &str) -> PublicKey {
    match PublicKey::from_openssh(line) {
        Ok(k) => k,
        Err(e) => panic!("test vector does not parse: {e}"),
    }
}

fn kh(text: &str) -> KnownHosts {
    KnownHosts::parse(text, Path::new("/kh"))
}

fn matched(line: usize) -> HostKeyStatus {
    HostKeyStatus::Match { line }
}

#[test]
fn fingerprints_match_ssh_keygen() {
    assert_eq!(fingerprint(&key(K1)), K1_FP);
    assert_eq!(fingerprint(&key(K2)), K2_FP);
    assert_eq!(fingerprint(&key(K3)), K3_FP);
    assert_eq!(fingerprint(&key(K4)), K4_FP);
}

#[test]
fn plain_host_matches_port_22_only() {
    let k = kh(&format!("web1 {K1}\n"));
    assert_eq!(k.check("web1", 22, &key(K1)), matched(1));
    assert_eq!(k.check("WEB1", 22, &key(K1)), matched(1));
    assert_eq!(k.check("web1", 2222, &key(K1)), HostKeyStatus::Unknown);
    assert_eq!(k.check("web2", 22, &key(K1)), HostKeyStatus::Unknown);
}

#[test]
fn bracketed_host_port() {
    let k = kh(&format!("[127.0.0.1]:2222 {K1}\n[127.0.0.1]:22 {K2}\n"));
    assert_eq!(k.check("127.0.0.1", 2222, &key(K1)), matched(1));
    assert_eq!(k.check("127.0.0.1", 2223, &key(K1)), HostKeyStatus::Unknown);
    // `[host]:22` is never the lookup name; OpenSSH uses bare `host` for 22.
    assert_eq!(k.check("127.0.0.1", 22, &key(K2)), HostKeyStatus::Unknown);
}

#[test]
fn comma_separated_patterns_and_comment() {
    let k = kh(&format!(
        "a.example,b.example,[c.example]:2200 {K1} root@somewhere\n"
    ));
    assert_eq!(k.check("a.example", 22, &key(K1)), matched(1));
    assert_eq!(k.check("b.example", 22, &key(K1)), matched(1));
    assert_eq!(k.check("c.example", 2200, &key(K1)), matched(1));
    assert_eq!(k.check("c.example", 22, &key(K1)), HostKeyStatus::Unknown);
}

#[test]
fn wildcards() {
    let k = kh(&format!("*.example.org {K1}\nweb?.test {K2}\n"));
    assert_eq!(k.check("db.example.org", 22, &key(K1)), matched(1));
    assert_eq!(k.check("a.b.example.org", 22, &key(K1)), matched(1));
    assert_eq!(k.check("example.org", 22, &key(K1)), HostKeyStatus::Unknown);
    assert_eq!(k.check("web1.test", 22, &key(K2)), matched(2));
    assert_eq!(k.check("web12.test", 22, &key(K2)), HostKeyStatus::Unknown);
    // `*.example.org` does not cover the `[name]:port` lookup form.
    assert_eq!(
        k.check("db.example.org", 2222, &key(K1)),
        HostKeyStatus::Unknown
    );
}

/// How known_hosts patterns are matched (wildmatch: `*` any run, `?` exactly one).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let text = std::str::from_utf8(text).expect("utf-8");
    wildmatch::WildMatch::new(std::str::from_utf8(pattern).expect("utf-8")).matches(text)
}

#[test]
fn glob_edge_cases() {
    assert!(glob_match(b"*", b""));
    assert!(glob_match(b"*", b"anything"));
    assert!(glob_match(b"a*b*c", b"axxbyyc"));
    assert!(!glob_match(b"a*b*c", b"axxbyy"));
    assert!(glob_match(b"*a*a*a*b", b"aaaaaaaab"));
    assert!(!glob_match(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaac"));
    assert!(!glob_match(b"?", b""));
    assert!(glob_match(b"[*]:2222", b"[h]:2222"));
}

#[test]
fn negation_vetoes_line() {
    let k = kh(&format!("*.example.org,!bad.example.org {K1}\n"));
    assert_eq!(k.check("good.example.org", 22, &key(K1)), matched(1));
    assert_eq!(
        k.check("bad.example.org", 22, &key(K1)),
        HostKeyStatus::Unknown
    );
    // A negation alone matches nothing.
    let k = kh(&format!("!bad {K1}\n"));
    assert_eq!(k.check("good", 22, &key(K1)), HostKeyStatus::Unknown);
}

#[test]
fn hashed_entries_from_ssh_keygen() {
    let k = kh(&format!("{HASHED_2222_K1} {K1}\n{HASHED_WEB1_K2} {K2}\n"));
    assert_eq!(k.check("example.org", 2222, &key(K1)), matched(1));
    assert_eq!(k.check("example.org", 22, &key(K1)), HostKeyStatus::Unknown);
    assert_eq!(k.check("web1.example.org", 22, &key(K2)), matched(2));
    assert_eq!(
        k.check("web2.example.org", 22, &key(K2)),
        HostKeyStatus::Unknown
    );
}

#[test]
fn hashed_entry_generated_here() {
    let salt = [7u8; 20];
    let mut mac = match Hmac::<Sha1>::new_from_slice(&salt) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    mac.update(b"[10.1.2.3]:2299");
    let hash = mac.finalize().into_bytes();
    let line = format!(
        "|1|{}|{} {K4}\n",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    );
    let k = kh(&line);
    assert_eq!(k.check("10.1.2.3", 2299, &key(K4)), matched(1));
    assert_eq!(k.check("10.1.2.3", 22, &key(K4)), HostKeyStatus::Unknown);
}

#[test]
fn mismatch_lists_all_keys_for_host_with_lines() {
    let text = format!("# comment\n\nother {K1}\nweb1 {K2}\nweb1,web2 {K3}\n");
    let k = KnownHosts::parse(&text, Path::new("/etc/kh"));
    assert_eq!(
        k.check("web1", 22, &key(K1)),
        HostKeyStatus::Mismatch {
            expected: vec![
                (K2_FP.to_string(), PathBuf::from("/etc/kh"), 4),
                (K3_FP.to_string(), PathBuf::from("/etc/kh"), 5),
            ]
        }
    );
    assert_eq!(k.check("web1", 22, &key(K3)), matched(5));
}

#[test]
fn revoked_wins_over_match() {
    let k = kh(&format!("web1 {K1}\n@revoked * {K1}\n"));
    assert_eq!(
        k.check("web1", 22, &key(K1)),
        HostKeyStatus::Revoked { line: 2 }
    );
    assert_eq!(
        k.check("anything", 2222, &key(K1)),
        HostKeyStatus::Revoked { line: 2 }
    );
    // A revoked line for another key neither matches nor counts as "known".
    let k = kh(&format!("@revoked web1 {K2}\n"));
    assert_eq!(k.check("web1", 22, &key(K1)), HostKeyStatus::Unknown);
}

#[test]
fn cert_authority_lines_ignored() {
    let k = kh(&format!("@cert-authority web1 {K1}\n"));
    assert!(k.is_empty());
    assert_eq!(k.check("web1", 22, &key(K1)), HostKeyStatus::Unknown);
    assert_eq!(k.check("web1", 22, &key(K2)), HostKeyStatus::Unknown);
}

#[test]
fn malformed_lines_skipped_line_numbers_kept() {
    let text = format!(
        "garbage\n\
         web1 ssh-ed25519 !!!notbase64\n\
         web1 ssh-rsa {}\n\
         @bogus web1 {K2}\n\
         web1\n\
         |1|nopipe {K2}\n\
         \r\n\
         # web1 {K2}\n\
         web1 {K1}\r\n",
        &K1["ssh-ed25519 ".len()..]
    );
    let k = kh(&text);
    assert_eq!(k.len(), 1);
    assert_eq!(k.check("web1", 22, &key(K1)), matched(9));
}

#[test]
fn known_algorithms_in_file_order() {
    let k = kh(&format!(
        "web1 {K3}\nweb1 {K1}\nweb1 {K3}\n@revoked web1 {K4}\n"
    ));
    assert_eq!(
        k.known_algorithms("web1", 22),
        vec![key(K3).algorithm(), key(K1).algorithm()]
    );
    assert!(k.known_algorithms("web2", 22).is_empty());
}

#[tokio::test]
async fn load_missing_file_is_empty() {
    let dir = tempdir();
    let k = KnownHosts::load(&dir.path().join("nope")).await;
    assert!(matches!(k, Ok(ref k) if k.is_empty()));
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

async fn read(path: &Path) -> String {
    match tokio::fs::read_to_string(path).await {
        Ok(s) => s,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

#[tokio::test]
async fn append_creates_dirs_and_formats_entries() {
    let dir = tempdir();
    let path = dir.path().join("a/b/known_hosts");
    assert!(append(&path, "127.0.0.1", 2222, &key(K1)).await.is_ok());
    assert!(append(&path, "Web1.Example", 22, &key(K3)).await.is_ok());
    let text = read(&path).await;
    assert_eq!(text, format!("[127.0.0.1]:2222 {K1}\nweb1.example {K3}\n"));

    let k = match KnownHosts::load(&path).await {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(k.check("127.0.0.1", 2222, &key(K1)), matched(1));
    assert_eq!(k.check("web1.example", 22, &key(K3)), matched(2));
}

#[tokio::test]
async fn append_adds_missing_final_newline() {
    let dir = tempdir();
    let path = dir.path().join("known_hosts");
    assert!(tokio::fs::write(&path, format!("web1 {K2}")).await.is_ok());
    assert!(append(&path, "web2", 22, &key(K1)).await.is_ok());
    assert_eq!(read(&path).await, format!("web1 {K2}\nweb2 {K1}\n"));
}

#[test]
fn plain_and_pattern_lines_for_one_host_come_in_file_order() {
    // Plain names are looked up by name and the rest scanned; together they must still
    // read as the file does (line order decides what a mismatch lists).
    let text = format!(
        "web* {K1}\nweb1,web1 {K2}\n{HASHED_WEB1_K2}_ignored {K3}\n!web1,web? {K3}\nWEB1 {K4}\nweb1,!web2 {K3}\n"
    );
    let k = KnownHosts::parse(&text, Path::new("/etc/kh"));
    assert_eq!(
        k.check("web1", 22, &key(K1)),
        matched(1),
        "a wildcard line before a plain one"
    );
    match k.check("web1", 22, &key(K3)) {
        HostKeyStatus::Match { line } => assert_eq!(line, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        k.known_algorithms("web1", 22),
        vec![
            key(K1).algorithm(),
            key(K4).algorithm(),
            key(K3).algorithm()
        ]
    );
    let mismatch = KnownHosts::parse(
        &format!("web* {K2}\nweb1 {K3}\nw?b1 {K4}\n"),
        Path::new("/kh"),
    );
    assert_eq!(
        mismatch.check("web1", 22, &key(K1)),
        HostKeyStatus::Mismatch {
            expected: vec![
                (K2_FP.to_string(), PathBuf::from("/kh"), 1),
                (K3_FP.to_string(), PathBuf::from("/kh"), 2),
                (K4_FP.to_string(), PathBuf::from("/kh"), 3),
            ]
        }
    );
}
