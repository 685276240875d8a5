//! The one place that configures the YAML parser, so the summary and the report get the same
//! limits and the same error mapping.

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;
use serde_saphyr::{Budget, ExternalMessageSource, NonFiniteFloatPolicy};

use crate::{ParseError, MAX_DEPTH, MAX_INPUT_BYTES};

/// Longest parser error message kept. Serde messages quote the offending value, which here is
/// remote output of any length.
const MAX_ERROR_CHARS: usize = 300;

/// Deserializes one YAML document into `T`, with limits suited to untrusted Puppet output.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge {
            len: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    serde_saphyr::from_str_with_options(text, options(text.len())).map_err(map_error)
}

fn options(len: usize) -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    // The default budget (250k nodes, 1M events, 64 MiB of scalars) is sized for config files and
    // rejects the report of a big catalog. Every node or event costs at least a byte or two of
    // input, so limits proportional to the input still rule out amplification while accepting
    // any real report. Alias replays have their own cap (`AliasLimits`) and stay bounded.
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_events = budget.max_events.max(len.saturating_mul(2));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len);
    // Psych writes an alias each time the same Ruby object recurs, so a report may legitimately
    // hold many aliases of few anchors; the replay limits above already bound the work.
    budget.enforce_alias_anchor_ratio = false;

    serde_saphyr::options! {
        budget: Some(budget),
        // `!binary` scalars are decoded by us (see `value.rs`): the parser's own decoding fails
        // the whole document when the bytes are not UTF-8, and we want to keep those as base64.
        ignore_binary_tag_for_string: true,
        // Keep `0644`-style modes as written rather than turning them into numbers.
        leading_zero_numbers_as_strings: true,
        non_finite_float_policy: NonFiniteFloatPolicy::AsString,
        // The snippet would echo remote input into our error message.
        with_snippet: false,
    }
}

fn map_error(err: serde_saphyr::Error) -> ParseError {
    if is_too_deep(&err) {
        return ParseError::TooDeep { max: MAX_DEPTH };
    }
    let mut message = err.to_string();
    if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    ParseError::Yaml(message)
}

/// Whether the parser gave up because of nesting depth: the budget catches block collections,
/// the scanner's own limit catches flow collections (`[[[[…`) before the budget sees them.
fn is_too_deep(err: &serde_saphyr::Error) -> bool {
    match err {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => true,
        serde_saphyr::Error::ExternalMessage { source, .. } => matches!(
            source.as_ref(),
            ExternalMessageSource::Parser(scan)
                if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded)
        ),
        _ => false,
    }
}
