//! The JSON header of a safetensors file, parsed strictly and without recursion.
//!
//! The format's header is one object: tensor names mapping to `{"dtype", "shape",
//! "data_offsets"}`, and an optional `"__metadata__"` object of strings. This parser accepts
//! exactly that shape and nothing else, so it needs no general JSON value (nothing nests deeper
//! than `{"name": {"shape": [..]}}`, and deeper input is rejected at its first unexpected
//! bracket, not followed down). Unlike `serde_json`, which keeps the last of two equal keys, it
//! rejects a key that appears twice, at every level. Numbers must be plain non-negative integers
//! that fit in 64 bits, as the safetensors crate requires of its `usize` fields.

use std::collections::{BTreeMap, BTreeSet};

// The most dimensions a tensor may have (numpy 2's `NPY_MAXDIMS`, bounding the memory one shape
// takes whatever a header claims) and the element types with their widths: the scanner's, so the
// std parser and the allocation-free one accept the same files.
pub(crate) use backprop_scan::{DTYPES, MAX_RANK};

/// One tensor as the header describes it (not yet checked against the data).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The tensor's name.
    pub(crate) name: String,
    /// The element type's name (`F32`, `BF16`, ...).
    pub(crate) dtype: &'static str,
    /// Bits per element.
    pub(crate) bits: u64,
    /// The dimensions, at most [`MAX_RANK`] of them.
    pub(crate) shape: Vec<u64>,
    /// Where the tensor's bytes start, counted from the end of the header.
    pub(crate) start: u64,
    /// Where they end (exclusive).
    pub(crate) end: u64,
}

/// A parsed header: the tensors in the order the header lists them, and the metadata.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// Every tensor entry.
    pub(crate) tensors: Vec<Entry>,
    /// The `__metadata__` entries.
    pub(crate) metadata: BTreeMap<String, String>,
}

/// What is wrong with a header: the tensor concerned, when there is one, and why.
#[derive(Debug)]
pub(crate) struct Defect {
    /// The tensor whose entry is wrong.
    pub(crate) tensor: Option<String>,
    /// A lowercase sentence saying what was expected and what was found.
    pub(crate) reason: String,
}

impl Defect {
    /// A defect of the header as a whole.
    fn general(reason: String) -> Self {
        Self {
            tensor: None,
            reason,
        }
    }

    /// A defect of tensor `name`'s entry.
    fn of(name: &str, reason: String) -> Self {
        Self {
            tensor: Some(name.to_string()),
            reason: format!("tensor `{name}`: {reason}"),
        }
    }
}

/// Parses a header (the bytes between the length prefix and the data).
pub(crate) fn parse(text: &[u8]) -> Result<Header, Defect> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(Defect::general(format!(
            "the header is not UTF-8: invalid byte at offset {}",
            e.valid_up_to()
        )));
    }
    let mut p = Parser { text, at: 0 };
    let header = p.header().map_err(|e| match e {
        Failure::Syntax(reason) => Defect::general(reason),
        Failure::Tensor(name, reason) => Defect::of(&name, reason),
        Failure::Defect(defect) => defect,
    })?;
    Ok(header)
}

/// A parse failure before it is attached to a tensor name.
enum Failure {
    /// The text is not the JSON the format allows.
    Syntax(String),
    /// Tensor `.0`'s entry is wrong.
    Tensor(String, String),
    /// Already a finished defect.
    Defect(Defect),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Self::Syntax(reason)
    }
}

/// A cursor over the header's bytes.
struct Parser<'h> {
    text: &'h [u8],
    at: usize,
}

/// How a byte is described in a message: `` `x` `` or "the end of the header".
fn shown(byte: Option<u8>) -> String {
    match byte {
        None => "the end of the header".into(),
        Some(b) if b.is_ascii_graphic() => format!("`{}`", char::from(b)),
        Some(b) => format!("byte 0x{b:02x}"),
    }
}

impl Parser<'_> {
    /// Skips JSON whitespace and returns the next byte, not consuming it.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
        self.text.get(self.at).copied()
    }

    /// "invalid JSON header: expected {what} at byte N, found X".
    fn unexpected(&mut self, what: &str) -> String {
        let found = shown(self.peek());
        format!(
            "invalid JSON header: expected {what} at byte {}, found {found}",
            self.at
        )
    }

    /// Consumes `byte` (after whitespace).
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Consumes `,` (returning `true`) or `close` (returning `false`).
    fn more(&mut self, close: u8, what: &str) -> Result<bool, String> {
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// The whole header: `{ (key: entry),* }` and nothing after it but whitespace.
    fn header(&mut self) -> Result<Header, Failure> {
        let mut header = Header::default();
        let mut names = BTreeSet::new();
        let mut metadata_seen = false;
        self.expect(b'{', "`{` (a JSON object)")?;
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                let key = self.string("a tensor name in quotes")?;
                self.expect(b':', "`:`")?;
                if key == "__metadata__" {
                    if metadata_seen {
                        return Err(Failure::Syntax(
                            "the key `__metadata__` appears twice: expected each key once".into(),
                        ));
                    }
                    metadata_seen = true;
                    header.metadata = self.metadata()?;
                } else {
                    if names.contains(key.as_str()) {
                        return Err(Failure::Defect(Defect::of(
                            &key,
                            "the name appears twice in the header: expected each tensor once"
                                .into(),
                        )));
                    }
                    let entry = self.entry(&key)?;
                    names.insert(key);
                    header.tensors.push(entry);
                }
                if !self.more(b'}', "`,` or `}` after a tensor")? {
                    break;
                }
            }
        }
        if self.peek().is_some() {
            return Err(Failure::Syntax(
                self.unexpected("the end of the header after its object"),
            ));
        }
        Ok(header)
    }

    /// `null` or `{ "key": "value", ... }` with distinct keys.
    fn metadata(&mut self) -> Result<BTreeMap<String, String>, Failure> {
        let mut metadata = BTreeMap::new();
        self.peek();
        if self.text[self.at..].starts_with(b"null") {
            self.at += 4;
            return Ok(metadata);
        }
        self.expect(b'{', "`{` (the metadata object) or `null`")?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(metadata);
        }
        loop {
            let key = self.string("a metadata key in quotes")?;
            self.expect(b':', "`:`")?;
            let value = self.string("a metadata value (a string)")?;
            if metadata.contains_key(&key) {
                return Err(Failure::Syntax(format!(
                    "the metadata key `{key}` appears twice: expected each key once"
                )));
            }
            metadata.insert(key, value);
            if !self.more(b'}', "`,` or `}` in the metadata")? {
                return Ok(metadata);
            }
        }
    }

    /// `{"dtype": .., "shape": [..], "data_offsets": [start, end]}`, each field once, in any order.
    fn entry(&mut self, name: &str) -> Result<Entry, Failure> {
        let tensor = |reason: String| Failure::Tensor(name.to_string(), reason);
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        self.expect(b'{', "`{` (a tensor's entry)")?;
        if self.peek() != Some(b'}') {
            loop {
                let field = self.string("a field name in quotes")?;
                self.expect(b':', "`:`")?;
                let twice = match field.as_str() {
                    "dtype" => dtype.replace(self.dtype(name)?).is_some(),
                    "shape" => shape.replace(self.shape(name)?).is_some(),
                    "data_offsets" => offsets.replace(self.offsets(name)?).is_some(),
                    other => {
                        return Err(tensor(format!(
                            "unknown field `{other}`: expected only `dtype`, `shape` and \
                             `data_offsets`"
                        )))
                    }
                };
                if twice {
                    return Err(tensor(format!(
                        "the field `{field}` appears twice: expected each field once"
                    )));
                }
                if !self.more(b'}', "`,` or `}` in a tensor's entry")? {
                    break;
                }
            }
        } else {
            self.at += 1;
        }
        let missing = |field: &str| tensor(format!("no `{field}` field"));
        let (dtype, bits) = dtype.ok_or_else(|| missing("dtype"))?;
        let shape = shape.ok_or_else(|| missing("shape"))?;
        let (start, end) = offsets.ok_or_else(|| missing("data_offsets"))?;
        Ok(Entry {
            name: name.to_string(),
            dtype,
            bits,
            shape,
            start,
            end,
        })
    }

    /// A dtype's name, one of the format's.
    fn dtype(&mut self, name: &str) -> Result<(&'static str, u64), Failure> {
        let found = self.string("a dtype in quotes")?;
        DTYPES
            .iter()
            .find(|(known, _)| *known == found)
            .copied()
            .ok_or_else(|| {
                Failure::Tensor(
                    name.to_string(),
                    format!("unknown dtype `{found}`: expected one of the safetensors dtypes"),
                )
            })
    }

    /// `[d0, d1, ...]`, at most [`MAX_RANK`] integers.
    fn shape(&mut self, name: &str) -> Result<Vec<u64>, Failure> {
        let mut dims = Vec::new();
        self.expect(b'[', "`[` (a shape)")?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(dims);
        }
        loop {
            if dims.len() == MAX_RANK {
                return Err(Failure::Tensor(
                    name.to_string(),
                    format!("the shape has more than {MAX_RANK} dimensions"),
                ));
            }
            dims.push(self.integer(name, "a dimension")?);
            if !self.more(b']', "`,` or `]` in a shape")? {
                return Ok(dims);
            }
        }
    }

    /// `[start, end]`.
    fn offsets(&mut self, name: &str) -> Result<(u64, u64), Failure> {
        self.expect(b'[', "`[` (data_offsets)")?;
        let start = self.integer(name, "a start offset")?;
        self.expect(b',', "`,` between the two data_offsets")?;
        let end = self.integer(name, "an end offset")?;
        self.expect(b']', "`]` after the two data_offsets")?;
        Ok((start, end))
    }

    /// A JSON number that is a non-negative integer below 2⁶⁴.
    fn integer(&mut self, name: &str, what: &str) -> Result<u64, Failure> {
        self.peek();
        let start = self.at;
        let bytes = self.text;
        let mut end = start;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = bytes.get(end) {
            end += 1;
        }
        let token = &bytes[start..end];
        let text = String::from_utf8_lossy(token);
        let bad = |why: &str| {
            Failure::Tensor(
                name.to_string(),
                format!("{what} must be a non-negative integer below 2^64, found {why}"),
            )
        };
        if token.is_empty() {
            return Err(Failure::Syntax(self.unexpected(what)));
        }
        let digits = token.iter().all(u8::is_ascii_digit);
        if !digits || (token.len() > 1 && token[0] == b'0') {
            return Err(bad(&format!("`{text}`")));
        }
        let mut value: u64 = 0;
        for &d in token {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| bad(&format!("`{text}`")))?;
        }
        self.at = end;
        Ok(value)
    }

    /// A JSON string, unescaped; control characters and lone surrogates are errors.
    fn string(&mut self, what: &str) -> Result<String, String> {
        self.expect(b'"', what)?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.text.get(self.at) else {
                return Err("invalid JSON header: a string is not closed".into());
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0..=0x1f => {
                    return Err(format!(
                        "invalid JSON header: control character 0x{b:02x} in a string at byte {}",
                        self.at - 1
                    ))
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "the header is not UTF-8".to_string())
    }

    /// The escape after a backslash, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.at;
        let bad = || format!("invalid JSON header: invalid escape in a string at byte {at}");
        let b = *self.text.get(self.at).ok_or_else(bad)?;
        self.at += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = self.hex4().ok_or_else(bad)?;
                let code = match first {
                    0xd800..=0xdbff => {
                        if self.text.get(self.at..self.at + 2) != Some(b"\\u") {
                            return Err(bad());
                        }
                        self.at += 2;
                        let second = self.hex4().ok_or_else(bad)?;
                        if !(0xdc00..=0xdfff).contains(&second) {
                            return Err(bad());
                        }
                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(bad()),
                    _ => first,
                };
                let c = char::from_u32(code).ok_or_else(bad)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(bad()),
        };
        out.push(simple);
        Ok(())
    }

    /// Four hexadecimal digits.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        let mut value = 0;
        for &d in digits {
            value = value * 16 + char::from(d).to_digit(16)?;
        }
        self.at += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn a_valid_header_parses_with_its_metadata_and_escapes() {
        let text = r#" {"__metadata__":{"format":"pt"},"a\u00e9\ud83d\ude00":{"shape":[2, 3],
            "dtype":"F32","data_offsets":[0,24]},
            "b":{"dtype":"F4","shape":[],"data_offsets":[24,24]}}  "#;
        let header = parse(text.as_bytes()).unwrap();
        assert_eq!(
            header.metadata.get("format").map(String::as_str),
            Some("pt")
        );
        let a = &header.tensors[0];
        assert_eq!(a.name, "a\u{e9}\u{1f600}");
        assert_eq!(
            (a.dtype, a.bits, &a.shape[..], a.start, a.end),
            ("F32", 32, &[2, 3][..], 0, 24)
        );
        assert_eq!(header.tensors[1].dtype, "F4");
        assert!(header.tensors[1].shape.is_empty());
    }

    #[test]
    fn duplicate_keys_are_errors_at_every_level() {
        let e = |s: &str| s.to_string();
        let entry = r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
        let twice = format!(r#"{{"w":{entry},"w":{entry}}}"#);
        let defect = parse(twice.as_bytes()).unwrap_err();
        assert_eq!(defect.tensor, Some(e("w")));
        assert!(defect.reason.contains("appears twice"), "{}", defect.reason);
        let field = r#"{"w":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(reason(field).contains("field `dtype` appears twice"));
        let meta = r#"{"__metadata__":{"k":"1","k":"2"}}"#;
        assert!(reason(meta).contains("metadata key `k` appears twice"));
        let meta2 = r#"{"__metadata__":{},"__metadata__":{}}"#;
        assert!(reason(meta2).contains("`__metadata__` appears twice"));
    }

    #[test]
    fn numbers_must_be_plain_integers_below_two_to_the_64() {
        for bad in ["-1", "-0", "1.0", "1e2", "01", "18446744073709551616", "+1"] {
            let text = format!(r#"{{"w":{{"dtype":"F32","shape":[{bad}],"data_offsets":[0,4]}}}}"#);
            let defect = parse(text.as_bytes()).unwrap_err();
            assert_eq!(defect.tensor.as_deref(), Some("w"), "{bad}");
            assert!(defect.reason.contains(bad), "{bad}: {}", defect.reason);
        }
        let max = r#"{"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}"#;
        assert_eq!(parse(max.as_bytes()).unwrap().tensors[0].shape, [u64::MAX]);
    }

    #[test]
    fn deep_nesting_stops_at_the_first_unexpected_bracket() {
        let deep = format!(r#"{{"w":{{"shape":{}}}}}"#, "[".repeat(1_000_000));
        assert!(reason(&deep).contains("a dimension"), "{}", reason(&deep));
        let deep = "[".repeat(1_000_000);
        assert!(reason(&deep).contains("expected `{`"));
    }

    #[test]
    fn malformed_text_is_an_error_naming_the_position() {
        assert!(reason("").contains("at byte 0, found the end of the header"));
        assert!(reason("{} x").contains("expected the end of the header"));
        assert!(reason("{\"w\":{}}").contains("no `dtype` field"));
        assert!(reason(r#"{"w":{"dtype":"F33"}}"#).contains("unknown dtype `F33`"));
        assert!(reason(r#"{"w":{"x":1}}"#).contains("unknown field `x`"));
        assert!(reason(r#"{"w\ud800":1}"#).contains("invalid escape"));
        assert!(reason("{\"w\u{1}\":1}").contains("control character"));
        assert!(parse(b"{\"\xff\":1}")
            .unwrap_err()
            .reason
            .contains("not UTF-8"));
        let rank = format!(r#"{{"w":{{"shape":[{}1]}}}}"#, "1,".repeat(MAX_RANK));
        assert!(reason(&rank).contains("more than 64 dimensions"));
    }
}
