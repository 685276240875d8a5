//! Run one command on one host and print what happens.
//!
//! ```text
//! cargo run -p capo-ssh --example exec -- [--key FILE]... [--known-hosts FILE]
//!     [-p PORT] [--policy strict|accept-new|off] [--timeout SECS]
//!     [--keepalive SECS] [--count] [--repeat N] [--stdin TEXT] [--close-stdin]
//!     user@host 'command'
//! ```
//!
//! `--count` prints byte totals instead of output (for big outputs);
//! `--repeat N` runs the command N times on the same connection.
//! `--stdin TEXT` writes TEXT to the command's input and then closes it;
//! `--close-stdin` closes the input right away (a remote `cat` then ends).
//! Without either, the input stays open until the command ends.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use capo_ssh::{connect, ConnectConfig, ExecEvent, HostKeyPolicy};

struct Args {
    cfg: ConnectConfig,
    command: String,
    count: bool,
    repeat: usize,
    /// Text for the command's input, if any.
    stdin: Option<String>,
    close_stdin: bool,
}

fn usage() -> String {
    "usage: exec [--key FILE]... [--known-hosts FILE] [-p PORT] \
     [--policy strict|accept-new|off] [--timeout SECS] [--keepalive SECS] \
     [--count] [--repeat N] [--stdin TEXT] [--close-stdin] user@host COMMAND"
        .to_string()
}

fn parse_args() -> Result<Args, String> {
    let mut keys: Vec<PathBuf> = Vec::new();
    let mut known_hosts: Option<PathBuf> = None;
    let mut port: u16 = 22;
    let mut policy = HostKeyPolicy::Strict;
    let mut timeout: Option<Duration> = None;
    let mut keepalive: Option<Duration> = None;
    let mut count = false;
    let mut repeat = 1usize;
    let mut stdin: Option<String> = None;
    let mut close_stdin = false;
    let mut positional: Vec<String> = Vec::new();

    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--key" | "-i" => keys.push(PathBuf::from(value(&arg)?)),
            "--known-hosts" => known_hosts = Some(PathBuf::from(value(&arg)?)),
            "-p" | "--port" => port = value(&arg)?.parse().map_err(|e| format!("bad port: {e}"))?,
            "--policy" => {
                policy = match value(&arg)?.as_str() {
                    "strict" => HostKeyPolicy::Strict,
                    "accept-new" => HostKeyPolicy::AcceptNew,
                    "off" => HostKeyPolicy::Off,
                    other => return Err(format!("unknown policy {other:?}")),
                }
            }
            "--timeout" => timeout = Some(secs(&value(&arg)?)?),
            "--keepalive" => keepalive = Some(secs(&value(&arg)?)?),
            "--count" => count = true,
            "--repeat" => {
                repeat = value(&arg)?
                    .parse()
                    .map_err(|e| format!("bad repeat: {e}"))?
            }
            "--stdin" => stdin = Some(value(&arg)?),
            "--close-stdin" => close_stdin = true,
            "-h" | "--help" => return Err(usage()),
            _ => positional.push(arg),
        }
    }
    let [target, command] = <[String; 2]>::try_from(positional).map_err(|_| usage())?;
    let (user, host) = target.split_once('@').unwrap_or(("root", target.as_str()));

    let mut cfg = ConnectConfig::new(host, port, user);
    if !keys.is_empty() {
        cfg.identity_files = keys;
    }
    if let Some(kh) = known_hosts {
        cfg.known_hosts = kh;
    }
    cfg.host_key_policy = policy;
    if let Some(t) = timeout {
        cfg.connect_timeout = t;
    }
    if let Some(k) = keepalive {
        cfg.keepalive_interval = k;
    }
    Ok(Args {
        cfg,
        command,
        count,
        repeat,
        close_stdin: close_stdin || stdin.is_some(),
        stdin,
    })
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("bad number of seconds: {s:?}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };

    let started = Instant::now();
    let session = match connect(&args.cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect failed [{:?}]: {e}", e.kind());
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "connected to {} in {:?}",
        session.target(),
        started.elapsed()
    );

    let mut code = ExitCode::SUCCESS;
    for run in 0..args.repeat {
        let started = Instant::now();
        let mut exec = match session.exec(&args.command).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("exec failed [{:?}]: {e}", e.kind());
                code = ExitCode::from(1);
                break;
            }
        };
        if let Some(text) = &args.stdin {
            if let Err(e) = exec.write_stdin(text.as_bytes()).await {
                eprintln!("write_stdin failed [{:?}]: {e}", e.kind());
                code = ExitCode::from(1);
            }
        }
        if args.close_stdin {
            if let Err(e) = exec.close_stdin().await {
                eprintln!("close_stdin failed [{:?}]: {e}", e.kind());
                code = ExitCode::from(1);
            }
        }
        let (mut out_bytes, mut err_bytes, mut chunks) = (0usize, 0usize, 0usize);
        let mut exit = None;
        while let Some(event) = exec.next().await {
            match event {
                ExecEvent::Stdout(b) if args.count => {
                    out_bytes += b.len();
                    chunks += 1;
                }
                ExecEvent::Stderr(b) if args.count => {
                    err_bytes += b.len();
                    chunks += 1;
                }
                ExecEvent::Stdout(b) => println!("stdout: {:?}", String::from_utf8_lossy(&b)),
                ExecEvent::Stderr(b) => println!("stderr: {:?}", String::from_utf8_lossy(&b)),
                ExecEvent::Exit(status) => {
                    println!("exit: {status:?}");
                    exit = Some(status);
                }
            }
        }
        if args.count {
            println!(
                "run {run}: stdout {out_bytes} bytes, stderr {err_bytes} bytes, {chunks} chunks, {:?}",
                started.elapsed()
            );
        }
        if exit.is_none() {
            match exec.missing_exit_error() {
                Some(e) => eprintln!("no exit status [{:?}]: {e}", e.kind()),
                None => eprintln!("no exit status"),
            }
            code = ExitCode::from(1);
        }
    }
    session.close().await;
    code
}
