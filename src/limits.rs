//! The open-file limit: one connection per host in flight, so `-j 1000` needs more file
//! descriptors than the usual soft limit of 1024.

/// File descriptors one host in flight may hold at once: its socket, plus a log file being
/// written and headroom.
const FDS_PER_HOST: u64 = 3;
/// Descriptors for everything else: stdio, the runtime, the report, the events log.
const FDS_RESERVED: u64 = 64;

/// Raises the soft open-file limit to the hard limit (as a server would), and returns how
/// many hosts may then be in flight at once, at most `wanted`, with a warning to print when
/// that is fewer.
pub fn fit_concurrency(wanted: usize) -> (usize, Option<String>) {
    let Some(limit) = raise_nofile() else {
        return (wanted, None);
    };
    let fits = usize::try_from(limit.saturating_sub(FDS_RESERVED) / FDS_PER_HOST)
        .unwrap_or(usize::MAX)
        .max(1);
    if fits >= wanted {
        return (wanted, None);
    }
    (
        fits,
        Some(format!(
            "capo: warning: the open-file limit ({limit}) allows {fits} hosts at a time, not {wanted}; \
             raise it (e.g. `ulimit -n 65536`) for more"
        )),
    )
}

/// The soft RLIMIT_NOFILE after raising it to the hard limit; None if it cannot be read.
fn raise_nofile() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    // RLIM_INFINITY is u64::MAX on Linux: no limit worth clamping to.
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let (jobs, _) = fit_concurrency(1);
        assert_eq!(jobs, 1);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
