//! `--confirm`: a question on the terminal before each batch after the first.

use std::io::IsTerminal;

use capo_engine::Confirm;
use tokio::sync::mpsc;

use crate::error::Error;

/// Refuses `--confirm` without a terminal on stdin and stderr: there is nobody to answer, and
/// a CI job would hang rather than fail.
pub fn require_terminal(confirm: bool) -> Result<(), Error> {
    if confirm && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::ConfirmWithoutTerminal);
    }
    Ok(())
}

/// Asks on the terminal for each batch the engine wants confirmed; anything but `y`/`yes` is
/// a no. Reading stdin blocks, so it happens on a blocking thread.
pub async fn answer(mut asks: mpsc::Receiver<Confirm>) {
    while let Some(ask) = asks.recv().await {
        let prompt = question(&ask);
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut err = std::io::stderr();
            let _ = write!(err, "{prompt}");
            let _ = err.flush();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await;
        let yes = matches!(answer, Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes"));
        let _ = ask.reply.send(yes);
    }
}

/// `capo: start batch 2 (3 hosts: web[01-03])? [y/N] `, batches counted from 1.
fn question(ask: &Confirm) -> String {
    let hosts = capo_inventory::fold::fold_to_string(&ask.hosts);
    format!(
        "capo: start batch {} ({} host{}: {})? [y/N] ",
        ask.batch + 1,
        ask.hosts.len(),
        if ask.hosts.len() == 1 { "" } else { "s" },
        capo_report::sanitize::line(&hosts)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(batch: usize, hosts: &[&str]) -> Confirm {
        let (reply, _) = tokio::sync::oneshot::channel();
        Confirm {
            batch,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            reply,
        }
    }

    #[test]
    fn the_question_counts_batches_from_1_and_folds_the_hosts() {
        assert_eq!(
            question(&ask(1, &["host02"])),
            "capo: start batch 2 (1 host: host02)? [y/N] "
        );
        assert_eq!(
            question(&ask(2, &["web01", "web02", "web03"])),
            "capo: start batch 3 (3 hosts: web[01-03])? [y/N] "
        );
    }

    #[test]
    fn no_confirm_needs_no_terminal() {
        assert!(require_terminal(false).is_ok());
    }
}
