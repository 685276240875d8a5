//! Rendering of an event's `previous_value` / `desired_value` as one display string. They can be
//! any YAML: strings, numbers, booleans, symbols (`!ruby/sym file`), arrays (an exec's
//! `returns`), hashes, or base64 of binary strings.

use base64::Engine as _;
use serde_json::Value;
use serde_saphyr::Tagged;

/// Renders a property value; `None` for an absent or null one.
pub(crate) fn render(value: Option<&Tagged<Value>>) -> Option<String> {
    let Tagged(value, tag) = value?;
    match value {
        Value::Null => None,
        Value::String(s) if tag.as_deref().is_some_and(is_binary_tag) => Some(decode_binary(s)),
        Value::String(s) => Some(decode_checksum(s).unwrap_or_else(|| s.clone())),
        other => Some(render_plain(other, true)),
    }
}

/// Psych spells the tag `!binary`; standard YAML spells it `!!binary`.
fn is_binary_tag(tag: &str) -> bool {
    matches!(tag, "!binary" | "!!binary" | "tag:yaml.org,2002:binary")
}

/// Decodes a `!binary` scalar. Bytes that are not UTF-8 are shown as the base64 text, without the
/// line breaks YAML folds it with; text that is not base64 at all is shown as written.
fn decode_binary(text: &str) -> String {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or(compact),
        Err(_) => text.trim().to_string(),
    }
}

/// Checksum algorithms of Puppet's `file` type, which prefix content checksums as `{sha256}…`.
const CHECKSUM_TYPES: &[&str] = &[
    "md5",
    "md5lite",
    "sha1",
    "sha1lite",
    "sha224",
    "sha256",
    "sha256lite",
    "sha384",
    "sha512",
    "mtime",
    "ctime",
    "none",
];

/// Puppet 7 writes a binary-encoded string (the desired `{sha256}…` of a content change) as
/// untagged base64. Decode it only when the result is exactly such a checksum: a real value that
/// happens to be base64 of `{sha256}<printable>` is not a risk worth a wrong display.
fn decode_checksum(text: &str) -> Option<String> {
    // Short strings like "file" or "0600" are valid base64 too; a checksum never encodes that short.
    if text.len() < 12 || text.starts_with('{') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    let rest = decoded.strip_prefix('{')?;
    let (algo, sum) = rest.split_once('}')?;
    let printable = !sum.is_empty() && sum.bytes().all(|b| (0x20..0x7f).contains(&b));
    (CHECKSUM_TYPES.contains(&algo) && printable).then_some(decoded)
}

/// Renders a value without tags: arrays joined with ", " (bracketed when nested so the levels
/// stay visible), hashes in Puppet's `{k => v}` syntax, null as Puppet's `undef`.
fn render_plain(value: &Value, top: bool) -> String {
    match value {
        Value::Null => "undef".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let joined = items
                .iter()
                .map(|item| render_plain(item, false))
                .collect::<Vec<_>>()
                .join(", ");
            if top {
                joined
            } else {
                format!("[{joined}]")
            }
        }
        Value::Object(map) => {
            let pairs = map
                .iter()
                .map(|(k, v)| format!("{k} => {}", render_plain(v, false)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{{{pairs}}}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(v: Value, tag: Option<&str>) -> Tagged<Value> {
        Tagged(v, tag.map(str::to_string))
    }

    #[test]
    fn binary_tag_decodes_utf8_and_keeps_other_bytes_as_base64() {
        let v = tagged(Value::from("aGVs\nbG8=\n"), Some("!binary"));
        assert_eq!(render(Some(&v)).as_deref(), Some("hello"));
        let v = tagged(Value::from("//79"), Some("!binary"));
        assert_eq!(render(Some(&v)).as_deref(), Some("//79"));
        let v = tagged(Value::from("not base64!"), Some("!!binary"));
        assert_eq!(render(Some(&v)).as_deref(), Some("not base64!"));
    }

    #[test]
    fn untagged_base64_only_decoded_when_it_is_a_checksum() {
        // base64 of "{md5}d41d8cd98f00b204e9800998ecf8427e"
        let v = tagged(
            Value::from("e21kNX1kNDFkOGNkOThmMDBiMjA0ZTk4MDA5OThlY2Y4NDI3ZQ=="),
            None,
        );
        assert_eq!(
            render(Some(&v)).as_deref(),
            Some("{md5}d41d8cd98f00b204e9800998ecf8427e")
        );
        // base64 of "hello world!", a plain value that must stay as written.
        let v = tagged(Value::from("aGVsbG8gd29ybGQh"), None);
        assert_eq!(render(Some(&v)).as_deref(), Some("aGVsbG8gd29ybGQh"));
        // base64 of "{bogus}abc": not a checksum type.
        let v = tagged(Value::from("e2JvZ3VzfWFiYw=="), None);
        assert_eq!(render(Some(&v)).as_deref(), Some("e2JvZ3VzfWFiYw=="));
    }

    #[test]
    fn scalars_arrays_and_hashes() {
        assert_eq!(render(None), None);
        assert_eq!(render(Some(&tagged(Value::Null, None))), None);
        let v = tagged(Value::from("file"), Some("!ruby/sym"));
        assert_eq!(render(Some(&v)).as_deref(), Some("file"));
        assert_eq!(
            render(Some(&tagged(Value::from(3), None))).as_deref(),
            Some("3")
        );
        assert_eq!(
            render(Some(&tagged(Value::from(true), None))).as_deref(),
            Some("true")
        );
        let v = tagged(serde_json::json!(["0", 2, ["a", null]]), None);
        assert_eq!(render(Some(&v)).as_deref(), Some("0, 2, [a, undef]"));
        let v = tagged(serde_json::json!({"a": 1, "b": ["x"]}), None);
        assert_eq!(render(Some(&v)).as_deref(), Some("{a => 1, b => [x]}"));
    }
}
