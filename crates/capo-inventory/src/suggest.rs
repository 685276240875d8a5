//! "Did you mean ...?" suggestions by edit distance.

/// The candidate closest to `target`, if it is close enough to be a likely
/// typo: at most one edit for short names, about one per three characters
/// for longer ones.
pub(crate) fn closest<'a>(
    target: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let target: Vec<char> = target.chars().collect();
    let limit = (target.len() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let chars: Vec<char> = candidate.chars().collect();
        // The distance is at least the length difference; skip the quadratic
        // work for candidates that cannot win.
        if chars.len().abs_diff(target.len()) > limit {
            continue;
        }
        let d = distance(&target, &chars);
        if d <= limit && best.is_none_or(|(best_d, _)| d < best_d) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent
/// transpositions, the commonest typo (`wbe` for `web`).
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = d;
        }
    }
    rows[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        assert_eq!(closest("wbe", ["db", "web", "webs"]), Some("web"));
        assert_eq!(closest("usr", ["user", "port"]), Some("user"));
        assert_eq!(closest("zzz", ["web", "db"]), None);
        assert_eq!(closest("", ["web"]), None);
        assert_eq!(
            closest(
                "web01.exmaple.com",
                ["web01.example.com", "web02.example.com"]
            ),
            Some("web01.example.com")
        );
    }
}
