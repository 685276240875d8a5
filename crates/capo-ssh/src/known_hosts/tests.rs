use super::*;
use russh::keys::ssh_key::public::KeyData;

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
fn cert_authority_keys_never_match_as_host_keys() {
    let k = kh(&format!("@cert-authority web1 {K1}\n"));
    assert_eq!(k.len(), 1);
    assert_eq!(k.check("web1", 22, &key(K1)), HostKeyStatus::Unknown);
    assert_eq!(k.check("web1", 22, &key(K2)), HostKeyStatus::Unknown);
    assert!(k.known_algorithms("web1", 22).is_empty());
    assert!(k.has_cert_authority("web1", 22));
    assert!(!k.has_cert_authority("web1", 2222));
    assert!(!k.has_cert_authority("web2", 22));
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

async fn record(r: &Recorder, host: &str, port: u16, k: &PublicKey) -> Recorded {
    match r.record(host, port, k).await {
        Ok(done) => done,
        Err(e) => panic!("record {host}:{port}: {e:?}"),
    }
}

#[tokio::test]
async fn recorder_creates_dirs_and_formats_entries_as_openssh() {
    let dir = tempdir();
    let path = dir.path().join("a/b/known_hosts");
    let r = Recorder::new(&path);
    assert_eq!(
        record(&r, "127.0.0.1", 2222, &key(K1)).await,
        Recorded::Added { line: 1 }
    );
    assert_eq!(
        record(&r, "Web1.Example", 22, &key(K3)).await,
        Recorded::Added { line: 2 }
    );
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
async fn recorder_adds_missing_final_newline() {
    let dir = tempdir();
    let path = dir.path().join("known_hosts");
    assert!(tokio::fs::write(&path, format!("web1 {K2}")).await.is_ok());
    let r = Recorder::new(&path);
    assert_eq!(
        record(&r, "web2", 22, &key(K1)).await,
        Recorded::Added { line: 2 }
    );
    assert_eq!(read(&path).await, format!("web1 {K2}\nweb2 {K1}\n"));
}

#[tokio::test]
async fn recorder_never_writes_a_key_twice_and_sees_other_writers() {
    let dir = tempdir();
    let path = dir.path().join("known_hosts");
    let r = Recorder::new(&path);
    assert_eq!(
        record(&r, "web1", 22, &key(K1)).await,
        Recorded::Added { line: 1 }
    );
    assert_eq!(
        record(&r, "web1", 22, &key(K1)).await,
        Recorded::AlreadyKnown { line: 1 }
    );
    // Another process appends web2 (and a line without a final newline) meanwhile.
    let mut text = read(&path).await;
    text.push_str(&format!("# added by hand\nweb2 {K2}"));
    assert!(tokio::fs::write(&path, &text).await.is_ok());
    // Same inode, grown: only the tail is read, and what it lists counts.
    assert_eq!(
        record(&r, "web2", 22, &key(K2)).await,
        Recorded::AlreadyKnown { line: 3 }
    );
    match r.record("web2", 22, &key(K1)).await {
        Err(RecordError::Changed { expected }) => {
            assert_eq!(expected, vec![(K2_FP.to_string(), path.clone(), 3)])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        record(&r, "web3", 22, &key(K3)).await,
        Recorded::Added { line: 4 }
    );
    assert_eq!(
        read(&path).await,
        format!("web1 {K1}\n# added by hand\nweb2 {K2}\nweb3 {K3}\n")
    );
    // Replaced by another file (as `ssh-keygen -R` does): read whole again.
    let replaced = dir.path().join("known_hosts.new");
    assert!(tokio::fs::write(&replaced, format!("@revoked * {K1}\n"))
        .await
        .is_ok());
    assert!(tokio::fs::rename(&replaced, &path).await.is_ok());
    match r.record("web9", 22, &key(K1)).await {
        Err(RecordError::Revoked { line: 1 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(read(&path).await, format!("@revoked * {K1}\n"));
}

/// `n` distinct ed25519 public keys, made up (any 32 bytes are a valid key to parse).
fn many_keys(n: usize) -> Vec<PublicKey> {
    (0..n)
        .map(|i| {
            let mut bytes = [7u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            PublicKey::new(
                KeyData::Ed25519(russh::keys::ssh_key::public::Ed25519PublicKey(bytes)),
                "",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_recorders_write_every_line_exactly_once() {
    let dir = tempdir();
    let path = dir.path().join("known_hosts");
    assert!(tokio::fs::write(&path, format!("web1 {K1}")).await.is_ok());
    let hosts = 400usize;
    let keys = Arc::new(many_keys(hosts));
    // Two recorders on one file: like two capo processes (each holds its own open file,
    // so only flock keeps them apart), each with every host recorded by 2 tasks at once.
    let recorders = [
        Arc::new(Recorder::new(&path)),
        Arc::new(Recorder::new(&path)),
    ];
    let mut tasks = Vec::new();
    for round in 0..2 {
        for r in &recorders {
            for i in 0..hosts {
                let (r, keys) = (Arc::clone(r), Arc::clone(&keys));
                tasks.push(tokio::spawn(async move {
                    let port = 10_000 + u16::try_from(i).unwrap_or(0);
                    (round, r.record("127.0.0.1", port, &keys[i]).await)
                }));
            }
        }
    }
    let mut added = 0;
    for t in tasks {
        match t.await {
            Ok((_, Ok(Recorded::Added { .. }))) => added += 1,
            Ok((_, Ok(Recorded::AlreadyKnown { .. }))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(added, hosts, "each host added once, by one task");
    let text = read(&path).await;
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), hosts + 1, "no line lost, none doubled");
    assert_eq!(
        lines[0],
        format!("web1 {K1}"),
        "the unterminated line stays whole"
    );
    let mut seen = std::collections::HashSet::new();
    for line in &lines[1..] {
        assert!(seen.insert(*line), "duplicate line {line}");
    }
    for (i, k) in keys.iter().enumerate() {
        let port = 10_000 + u16::try_from(i).unwrap_or(0);
        let want = match entry_line("127.0.0.1", port, k) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert!(seen.contains(want.trim_end()), "missing {want}");
    }
    let k = KnownHosts::parse(&text, &path);
    assert_eq!(k.len(), hosts + 1);
}

// Host certificates made with OpenSSH 9.2 (TZ=UTC):
//   ssh-keygen -t ed25519 -f ca / ca2 / host
//   ssh-keygen -s ca -h -I good -n 127.0.0.1,host01 -V 20300101000000:20300201000000 host.pub
// and the same with: no -h (a user certificate), no -n, signed by ca2, -O force-command.
pub(crate) const CA: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAFhXbfrH/uz3RRB54tqZYfhzs7uKemo5Kw3/hxupAZu";
const CA_FP: &str = "SHA256:cf3KmKxZvnXvtwip4gwPBBmJcF1hfDFqAccC3UAvVNk";
const CA2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC0zyDp/5+z2mEFSdejdlaMBDEs9oUFYNVPPVoz8PBRD";
const CA2_FP: &str = "SHA256:tt26PyNhdCSUQQCCOQRR0d43MbFR7oPkqSijjsCnObQ";
pub(crate) const HOST: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVek";
const HOST_FP: &str = "SHA256:buocd4yxhp7w1rRlcONxE2wc9khLb7T1uVN/y2FdMTs";
pub(crate) const CERT_GOOD: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIHaBeUYMSYqH9Jbg/x8NP+eobcFiVTjzy0mXd5uHVs3EAAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVekAAAAAAAAAAAAAAACAAAABGdvb2QAAAAXAAAACTEyNy4wLjAuMQAAAAZob3N0MDEAAAAAcNvYgAAAAABxBLcAAAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACABYV236x/7s90UQeeLamWH4c7O7inpqOSsN/4cbqQGbgAAAFMAAAALc3NoLWVkMjU1MTkAAABAzYZSuWz9TrJ+GRWGHuJPz5R9cqqzC3nlShkJiZW8nWIM4mQV9Y7LjvsZyoNyyhCIhL6ZFIuy5gNGiyntYVbCDA==";
const CERT_USER: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIIDq2nR/KVLzRgv3iWgytR2co4mav0l0cQsUPvPVaQrkAAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVekAAAAAAAAAAAAAAABAAAABHVzZXIAAAANAAAACTEyNy4wLjAuMQAAAABw29iAAAAAAHEEtwAAAAAAAAAAggAAABVwZXJtaXQtWDExLWZvcndhcmRpbmcAAAAAAAAAF3Blcm1pdC1hZ2VudC1mb3J3YXJkaW5nAAAAAAAAABZwZXJtaXQtcG9ydC1mb3J3YXJkaW5nAAAAAAAAAApwZXJtaXQtcHR5AAAAAAAAAA5wZXJtaXQtdXNlci1yYwAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACABYV236x/7s90UQeeLamWH4c7O7inpqOSsN/4cbqQGbgAAAFMAAAALc3NoLWVkMjU1MTkAAABASBo26bDS65BPrZo8e39IQM2gwvs/nBiluBJhzmddDnSkEmX2M5x68VlZ70nqWZCh8XQ7UN0F/Zu3fNHpPdQeBw==";
const CERT_NO_PRINCIPALS: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIH0aiBeFPRXlRA7LKG3sAlGaB0mBR/wYg8jl7uZpJQUMAAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVekAAAAAAAAAAAAAAACAAAAB25vcHJpbmMAAAAAAAAAAHDb2IAAAAAAcQS3AAAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgAWFdt+sf+7PdFEHni2plh+HOzu4p6ajkrDf+HG6kBm4AAABTAAAAC3NzaC1lZDI1NTE5AAAAQP7FiQKcGYpuUYJ6Vq6uE4ILEKRGNauzcYEet/bJv87Qn9yT1Q8tMZCRCxawLB0DpJsweBXqHmTyPch4W8lTEQY=";
const CERT_BY_CA2: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIF7S9xTmilhDI8e1IARmkR0ImTQGVa7LVRO+G5TmgQ5lAAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVekAAAAAAAAAAAAAAACAAAABW90aGVyAAAADQAAAAkxMjcuMC4wLjEAAAAAcNvYgAAAAABxBLcAAAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACAtM8g6f+fs9phBUnXo3ZWjAQxLPaFBWDVTz1aM/DwUQwAAAFMAAAALc3NoLWVkMjU1MTkAAABAavXS1dfGSDmpqySogSBGQNvuCb47IUC60/6QnKYeOd/uDowQEgw8ErtcWgoHUPtOdPJfZ54gjjrda6wU+TuqDw==";
const CERT_CRITICAL: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIEh3U82rJgZ535YXNiS89OKkR37dZOIceTkhpGrHTDvsAAAAIPEXRaS4MiMEiC3Oh9QU05GVxDdW6HM3CNkA+ma1tVekAAAAAAAAAAAAAAACAAAABGNyaXQAAAANAAAACTEyNy4wLjAuMQAAAABw29iAAAAAAHEEtwAAAAAiAAAADWZvcmNlLWNvbW1hbmQAAAANAAAACS9iaW4vdHJ1ZQAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACABYV236x/7s90UQeeLamWH4c7O7inpqOSsN/4cbqQGbgAAAFMAAAALc3NoLWVkMjU1MTkAAABAjzs9ePChAdizKIi6ix2A/Gt9ZhAAi5gErlpOs3LpyoX+5TOdHe6shEZmi3oKbES0lwyWFVxwug8I5EoPVKqNDA==";
/// 2030-01-01T00:00:00Z and 2030-02-01T00:00:00Z, the window of every certificate above.
const AFTER: u64 = 1_893_456_000;
const BEFORE: u64 = 1_896_134_400;
const NOW: u64 = AFTER + 86_400;

fn cert(line: &str) -> Certificate {
    match Certificate::from_openssh(line) {
        Ok(c) => c,
        Err(e) => panic!("certificate vector does not parse: {e}"),
    }
}

fn ca_desc(fp: &str) -> KeyDesc {
    KeyDesc {
        key_type: "ssh-ed25519".into(),
        fingerprint: fp.into(),
    }
}

#[test]
fn certificate_vectors_are_what_ssh_keygen_says() {
    let c = cert(CERT_GOOD);
    assert_eq!(
        fingerprint(&PublicKey::new(c.signature_key().clone(), "")),
        CA_FP
    );
    assert_eq!(
        fingerprint(&PublicKey::new(c.public_key().clone(), "")),
        HOST_FP
    );
    assert_eq!(fingerprint(&key(CA2)), CA2_FP);
    assert_eq!(fingerprint(&key(HOST)), HOST_FP);
    assert_eq!((c.valid_after(), c.valid_before()), (AFTER, BEFORE));
    assert_eq!(format_cert_time(AFTER), "2030-01-01T00:00:00Z");
    assert_eq!(format_cert_time(u64::MAX), "forever");
}

#[test]
fn a_host_certificate_signed_by_a_listed_ca_is_valid_for_its_principals() {
    let k = kh(&format!(
        "web1 {K1}\n@cert-authority [127.0.0.1]:2222,host0? {CA}\n"
    ));
    let c = cert(CERT_GOOD);
    assert_eq!(k.check_certificate("127.0.0.1", 2222, &c, NOW), Ok(2));
    assert_eq!(k.check_certificate("HOST01", 22, &c, NOW), Ok(2));
    // Edges of the window: valid_after <= now < valid_before.
    assert_eq!(k.check_certificate("127.0.0.1", 2222, &c, AFTER), Ok(2));
    assert_eq!(
        k.check_certificate("127.0.0.1", 2222, &c, BEFORE - 1),
        Ok(2)
    );
    // The CA line must cover the name looked up: not port 22 of 127.0.0.1.
    assert_eq!(
        k.check_certificate("127.0.0.1", 22, &c, NOW),
        Err(CertProblem::UnknownCa { ca: ca_desc(CA_FP) })
    );
    // A CA key is no host key, and a certificate's key is no CA.
    assert_eq!(k.check("127.0.0.1", 2222, &key(CA)), HostKeyStatus::Unknown);
}

#[test]
fn each_certificate_problem_is_named() {
    let k = kh(&format!("@cert-authority * {CA}\n"));
    let check = |c: &str, host: &str, now: u64| k.check_certificate(host, 2222, &cert(c), now);
    assert_eq!(
        check(CERT_GOOD, "127.0.0.2", NOW),
        Err(CertProblem::WrongPrincipal {
            name: "127.0.0.2".into(),
            principals: vec!["127.0.0.1".into(), "host01".into()],
        })
    );
    assert_eq!(
        check(CERT_GOOD, "127.0.0.1", BEFORE),
        Err(CertProblem::Expired {
            after: AFTER,
            before: BEFORE
        })
    );
    assert_eq!(
        check(CERT_GOOD, "127.0.0.1", AFTER - 1),
        Err(CertProblem::NotYetValid {
            after: AFTER,
            before: BEFORE
        })
    );
    assert_eq!(
        check(CERT_USER, "127.0.0.1", NOW),
        Err(CertProblem::NotHost)
    );
    assert_eq!(
        check(CERT_NO_PRINCIPALS, "127.0.0.1", NOW),
        Err(CertProblem::NoPrincipals)
    );
    assert_eq!(
        check(CERT_BY_CA2, "127.0.0.1", NOW),
        Err(CertProblem::UnknownCa {
            ca: ca_desc(CA2_FP)
        })
    );
    assert_eq!(
        check(CERT_CRITICAL, "127.0.0.1", NOW),
        Err(CertProblem::CriticalOptions {
            options: vec!["force-command".into()]
        })
    );
    // Same certificate with one byte of its key id changed: the CA signature fails.
    let mut blob = match STANDARD.decode(&CERT_GOOD["ssh-ed25519-cert-v01@openssh.com ".len()..]) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    let at = match blob.windows(4).position(|w| w == b"good") {
        Some(at) => at,
        None => panic!("no key id in the vector"),
    };
    blob[at + 3] = b'e';
    let forged = format!(
        "ssh-ed25519-cert-v01@openssh.com {}",
        STANDARD.encode(&blob)
    );
    assert_eq!(
        check(&forged, "127.0.0.1", NOW),
        Err(CertProblem::BadSignature { ca: ca_desc(CA_FP) })
    );
}

#[test]
fn a_revoked_ca_or_certified_key_is_refused_first() {
    let c = cert(CERT_GOOD);
    let k = kh(&format!("@cert-authority * {CA}\n@revoked * {CA}\n"));
    assert_eq!(
        k.check_certificate("127.0.0.1", 2222, &c, NOW),
        Err(CertProblem::CaRevoked {
            ca: ca_desc(CA_FP),
            path: "/kh".into(),
            line: 2
        })
    );
    let k = kh(&format!(
        "@cert-authority * {CA}\n@revoked [127.0.0.1]:2222 {HOST}\n"
    ));
    let refused = k.check_certificate("127.0.0.1", 2222, &c, NOW);
    assert_eq!(
        refused,
        Err(CertProblem::KeyRevoked {
            key: ca_desc(HOST_FP),
            path: "/kh".into(),
            line: 2
        })
    );
    assert!(refused.is_err_and(|p| p.is_revocation()));
    // Revoked for another host only: valid here.
    assert_eq!(k.check_certificate("host01", 22, &c, NOW), Ok(1));
}

#[test]
fn certificate_problems_read_as_one_line() {
    let p = CertProblem::Expired {
        after: AFTER,
        before: BEFORE,
    };
    assert_eq!(
        p.to_string(),
        "expired (valid from 2030-01-01T00:00:00Z to 2030-02-01T00:00:00Z)"
    );
    let p = CertProblem::WrongPrincipal {
        name: "127.0.0.1".into(),
        principals: vec!["other".into(), "host09".into()],
    };
    assert_eq!(
        p.to_string(),
        "not valid for 127.0.0.1 (principals: other, host09)"
    );
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

#[test]
#[ignore]
fn bench_check_certificate() {
    let k = kh(&format!("@cert-authority * {CA}\n"));
    let c = cert(CERT_GOOD);
    let t = std::time::Instant::now();
    for _ in 0..100 {
        assert!(k.check_certificate("127.0.0.1", 2222, &c, NOW).is_ok());
    }
    eprintln!("check_certificate: {:?} each", t.elapsed() / 100);
}
