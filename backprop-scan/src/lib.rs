//! An allocation-free reader of a safetensors file's framing and header: no `std`, no `alloc`, no
//! dependency. [`split`] cuts a file into its header text and data, [`Entries`] walks the
//! header's tensor entries one by one, each borrowed from the text.
//!
//! It serves the loader without an allocator (`backprop::io::slice`) and the `network!` macro's
//! compile-time reading of weight files (`#[weights("file")]`), so both read a file the same way. It
//! is strict where it can be without memory: every entry must be an object with exactly `dtype`
//! (a known element type), `shape` (at most [`MAX_RANK`] plain integers) and `data_offsets` (two
//! plain integers, `start ≤ end`), each once; `__metadata__` must be an object of strings; nothing
//! may follow the closing brace but spaces. Names are taken verbatim: a name with a backslash
//! escape is refused (PyTorch's names have none). Checks that need to compare entries (duplicate
//! names, gaps, overlaps) are the caller's.
#![no_std]
#![deny(missing_docs)]

/// The most dimensions a tensor may have (numpy 2's `NPY_MAXDIMS`, as the strict parser).
pub const MAX_RANK: usize = 64;

/// The header's most bytes: the safetensors format's limit.
pub const MAX_HEADER: u64 = 100_000_000;

/// What is wrong with a file, without allocation: a fixed sentence and, when there is one, the
/// name of the tensor concerned (borrowed from the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanError<'a> {
    /// The tensor whose entry is wrong, if the defect is in one.
    pub tensor: Option<&'a str>,
    /// What was expected and what was found, lowercase.
    pub reason: &'static str,
    /// Byte offset in the file where the defect is.
    pub offset: usize,
}

/// One tensor entry of the header, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The tensor's name.
    pub name: &'a str,
    /// The element type's name (`F32`, `BF16`, ...).
    pub dtype: &'a str,
    /// Bits per element of the element type.
    pub bits: u64,
    /// The shape as written in the header, brackets included (`[5, 4]`).
    pub shape_text: &'a str,
    /// The number of dimensions.
    pub rank: usize,
    /// The first dimensions (up to 4; `rank` says how many are real).
    pub dims: [u64; 4],
    /// The product of every dimension (saturating).
    pub elements: u64,
    /// Where the tensor's bytes start, counted from the start of the data.
    pub start: u64,
    /// Where they end (exclusive).
    pub end: u64,
}

impl Entry<'_> {
    /// Whether the shape is exactly `expected`.
    pub fn has_shape(&self, expected: &[usize]) -> bool {
        self.rank == expected.len()
            && self
                .dims
                .iter()
                .zip(expected)
                .all(|(&d, &e)| u64::try_from(e) == Ok(d))
    }
}

/// The element types a header may name, with their widths in bits (the safetensors crate's
/// `Dtype::bitsize`).
pub const DTYPES: [(&str, u64); 22] = [
    ("BOOL", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("U8", 8),
    ("I8", 8),
    ("F8_E5M2", 8),
    ("F8_E4M3", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("I16", 16),
    ("U16", 16),
    ("F16", 16),
    ("BF16", 16),
    ("I32", 32),
    ("U32", 32),
    ("F32", 32),
    ("C64", 64),
    ("F64", 64),
    ("I64", 64),
    ("U64", 64),
];

/// The file cut in two: the header's text (after the 8-byte length) and the data after it.
pub fn split(bytes: &[u8]) -> Result<(&[u8], &[u8]), ScanError<'_>> {
    let fail = |reason| ScanError {
        tensor: None,
        reason,
        offset: 0,
    };
    let Some((&prefix, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(fail(
            "the file is shorter than the 8-byte header length that starts a safetensors file",
        ));
    };
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER {
        return Err(fail(
            "the header length is over the safetensors format's limit of 100 000 000 bytes",
        ));
    }
    if n > rest.len() as u64 {
        return Err(fail(
            "the file is truncated: its header length is more than the bytes that follow it",
        ));
    }
    Ok(rest.split_at(n as usize))
}

/// The header's tensor entries in the order written; `__metadata__` is checked and skipped.
pub struct Entries<'a> {
    text: &'a [u8],
    at: usize,
    /// 0: before `{`; 1: inside, before an entry or `}`; 2: done.
    state: u8,
}

/// Walks the entries of `header` (the text [`split`] gives).
pub fn entries(header: &[u8]) -> Entries<'_> {
    Entries {
        text: header,
        at: 0,
        state: 0,
    }
}

impl<'a> Entries<'a> {
    /// An error at the cursor (offsets count from the file's start: 8 bytes of length first).
    fn fail(&self, tensor: Option<&'a str>, reason: &'static str) -> ScanError<'a> {
        ScanError {
            tensor,
            reason,
            offset: self.at + 8,
        }
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.text.get(self.at).copied()
    }

    fn eat(
        &mut self,
        byte: u8,
        tensor: Option<&'a str>,
        reason: &'static str,
    ) -> Result<(), ScanError<'a>> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.fail(tensor, reason))
        }
    }

    /// A string without escapes, as UTF-8.
    fn string(&mut self, tensor: Option<&'a str>) -> Result<&'a str, ScanError<'a>> {
        self.eat(b'"', tensor, "expected a string in the header")?;
        let start = self.at;
        loop {
            match self.text.get(self.at) {
                None => return Err(self.fail(tensor, "a string in the header is not closed")),
                Some(b'"') => break,
                Some(b'\\') => {
                    return Err(self.fail(
                        tensor,
                        "a string in the header has a backslash escape, which this reader does not support",
                    ))
                }
                Some(&b) if b < 0x20 => {
                    return Err(self.fail(tensor, "a string in the header has a control character"))
                }
                Some(_) => self.at += 1,
            }
        }
        let text = core::str::from_utf8(&self.text[start..self.at])
            .map_err(|_| self.fail(tensor, "a string in the header is not UTF-8"))?;
        self.at += 1;
        Ok(text)
    }

    /// A plain non-negative integer below 2⁶⁴.
    fn integer(&mut self, tensor: Option<&'a str>) -> Result<u64, ScanError<'a>> {
        self.space();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&b @ b'0'..=b'9') = self.text.get(self.at) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| {
                    self.fail(tensor, "a number in the header does not fit in 64 bits")
                })?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 {
            return Err(self.fail(tensor, "expected a non-negative integer in the header"));
        }
        if digits > 1 && self.text[start] == b'0' {
            return Err(self.fail(tensor, "a number in the header has a leading zero"));
        }
        if let Some(b'.' | b'e' | b'E' | b'-' | b'+') = self.text.get(self.at) {
            return Err(self.fail(
                tensor,
                "expected a plain integer in the header, found a fraction or exponent",
            ));
        }
        Ok(value)
    }

    /// `{"key": "value", ...}` of strings (the metadata).
    fn metadata(&mut self) -> Result<(), ScanError<'a>> {
        self.eat(b'{', None, "`__metadata__` must be an object of strings")?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.string(None)?;
            self.eat(b':', None, "expected `:` after a metadata key")?;
            self.string(None)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.fail(None, "expected `,` or `}` in `__metadata__`")),
            }
        }
    }

    /// One tensor's `{"dtype": .., "shape": [..], "data_offsets": [a, b]}`.
    fn entry(&mut self, name: &'a str) -> Result<Entry<'a>, ScanError<'a>> {
        let t = Some(name);
        self.eat(b'{', t, "a tensor's entry must be an object")?;
        let (mut dtype, mut shape, mut offsets) = (None, None, None);
        loop {
            let key = self.string(t)?;
            self.eat(b':', t, "expected `:` after a key in a tensor's entry")?;
            match key {
                "dtype" if dtype.is_none() => {
                    let text = self.string(t)?;
                    let Some(&(_, bits)) = DTYPES.iter().find(|(known, _)| *known == text) else {
                        return Err(
                            self.fail(t, "a tensor's dtype is not a safetensors element type")
                        );
                    };
                    dtype = Some((text, bits));
                }
                "shape" if shape.is_none() => {
                    self.space();
                    let start = self.at;
                    self.eat(b'[', t, "a tensor's shape must be an array of integers")?;
                    let (mut rank, mut dims, mut elements) = (0usize, [0u64; 4], 1u64);
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        loop {
                            let d = self.integer(t)?;
                            if rank == MAX_RANK {
                                return Err(self.fail(t, "a tensor has more than 64 dimensions"));
                            }
                            if rank < 4 {
                                dims[rank] = d;
                            }
                            rank += 1;
                            elements = elements.saturating_mul(d);
                            match self.peek() {
                                Some(b',') => self.at += 1,
                                Some(b']') => {
                                    self.at += 1;
                                    break;
                                }
                                _ => {
                                    return Err(
                                        self.fail(t, "expected `,` or `]` in a tensor's shape")
                                    )
                                }
                            }
                        }
                    }
                    let text = core::str::from_utf8(&self.text[start..self.at])
                        .map_err(|_| self.fail(t, "a tensor's shape is not UTF-8"))?;
                    shape = Some((text, rank, dims, elements));
                }
                "data_offsets" if offsets.is_none() => {
                    self.eat(b'[', t, "a tensor's data_offsets must be two integers")?;
                    let start = self.integer(t)?;
                    self.eat(b',', t, "a tensor's data_offsets must be two integers")?;
                    let end = self.integer(t)?;
                    self.eat(b']', t, "a tensor's data_offsets must be two integers")?;
                    if end < start {
                        return Err(self.fail(t, "a tensor's data_offsets end before they start"));
                    }
                    offsets = Some((start, end));
                }
                "dtype" | "shape" | "data_offsets" => {
                    return Err(self.fail(t, "a key appears twice in a tensor's entry"))
                }
                _ => return Err(self.fail(
                    t,
                    "unknown key in a tensor's entry; expected `dtype`, `shape` and `data_offsets`",
                )),
            }
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.fail(t, "expected `,` or `}` in a tensor's entry")),
            }
        }
        let (Some((dtype, bits)), Some((shape_text, rank, dims, elements)), Some((start, end))) =
            (dtype, shape, offsets)
        else {
            return Err(self.fail(
                t,
                "a tensor's entry needs `dtype`, `shape` and `data_offsets`",
            ));
        };
        let bytes = elements
            .checked_mul(bits)
            .filter(|b| b % 8 == 0)
            .map(|b| b / 8);
        if bytes != Some(end - start) {
            return Err(self.fail(
                t,
                "a tensor's data_offsets do not hold exactly the bytes its shape and dtype need",
            ));
        }
        Ok(Entry {
            name,
            dtype,
            bits,
            shape_text,
            rank,
            dims,
            elements,
            start,
            end,
        })
    }

    /// The next entry, skipping `__metadata__`; `None` after the closing brace.
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ScanError<'a>> {
        loop {
            match self.state {
                0 => {
                    self.eat(b'{', None, "the header must be a JSON object")?;
                    self.state = 1;
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                        return self.end();
                    }
                }
                1 => {
                    let name = self.string(None)?;
                    self.eat(b':', Some(name), "expected `:` after a tensor's name")?;
                    let entry = if name == "__metadata__" {
                        self.metadata()?;
                        None
                    } else {
                        Some(self.entry(name)?)
                    };
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            self.end()?;
                        }
                        _ => {
                            return Err(
                                self.fail(Some(name), "expected `,` or `}` after a tensor's entry")
                            )
                        }
                    }
                    if entry.is_some() {
                        return Ok(entry);
                    }
                    if self.state == 2 {
                        return Ok(None);
                    }
                }
                _ => return Ok(None),
            }
        }
    }

    /// After the closing brace: only spaces may follow.
    fn end(&mut self) -> Result<Option<Entry<'a>>, ScanError<'a>> {
        self.state = 2;
        if self.peek().is_some() {
            return Err(self.fail(None, "unexpected text after the header's closing brace"));
        }
        Ok(None)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ScanError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == 2 {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(error) => {
                self.state = 2;
                Some(Err(error))
            }
        }
    }
}
