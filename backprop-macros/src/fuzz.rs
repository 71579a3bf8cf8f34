//! A seeded fuzz suite: random declarations and token-wise mutations of them go through the
//! parser, the checker and the expansion. None may panic; every output must be valid Rust
//! syntax (items, or one expression for the expression form); and the accepted ones are
//! compiled for real by the ignored test `accepted_declarations_compile`.
//!
//! `BACKPROP_FUZZ_CASES` sets the number of cases (default 100 000), `BACKPROP_FUZZ_SEED` the
//! seed (default 0), `BACKPROP_FUZZ_COMPILE` the number of accepted declarations to compile
//! (default 500).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// SplitMix64: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Struct names, including the ones that collide with what the expansion generates.
const STRUCT_NAMES: &[&str] = &[
    "Net",
    "T",
    "B",
    "U",
    "L",
    "Y",
    "X",
    "T1",
    "Workspace",
    "NetWorkspace",
    "f32",
    "Box",
    "Option",
    "Self_",
    "r#Net",
    "r#type",
    "Scalar",
    "Linear",
    "network",
    "x",
    "AutoEncoder",
];

/// Layer and part names, raw identifiers and generated-looking names included.
const FIELD_NAMES: &[&str] = &[
    "fc1",
    "fc2",
    "hidden",
    "out",
    "r#type",
    "r#fn",
    "r#fc1",
    "a_b",
    "aB",
    "workspace",
    "x",
    "ws",
    "grad",
    "T",
    "B",
    "self_",
    "_a",
    "__",
];

/// Activations as written, right and wrong.
const ACTIVATIONS: &[&str] = &[
    "relu",
    "tanh",
    "sigmoid",
    "identity",
    "softplus",
    "gelu",
    "silu",
    "softmax",
    "leaky_relu",
    "leaky_relu(0.2)",
    "leaky_relu(0)",
    "leaky_relu(1)",
    "elu",
    "elu(0.5)",
    "elu(3)",
    "r#relu",
    "rleu",
    "leaky_relu(1e39)",
    "elu(-1)",
    "relu(1)",
];

/// Attributes a declaration may carry.
const ATTRIBUTES: &[&str] = &[
    "/// A fuzzed network.",
    "#[derive(Clone, Debug)]",
    "#[derive(PartialEq)]",
    "#[derive(::core::fmt::Debug)]",
    "#[cfg(all())]",
    "#[cfg_attr(all(), derive(Debug))]",
    "#[cfg_attr(any(), cfg(any()))]",
    "#[cfg_attr(all(), cfg(any()))]",
    "#[allow(dead_code)]",
    "#[backprop(crate = ::backprop)]",
    "#[derive(Default)]",
    "#[must_use]",
    "#[deprecated]",
    "#[repr(C)]",
    "#[repr(packed)]",
    "#[non_exhaustive]",
];

/// Replacement tokens: keywords, literals of every kind, punctuation, raw identifiers.
const REPLACEMENTS: &[&str] = &[
    "struct",
    "pub",
    "fn",
    "type",
    "self",
    "Self",
    "crate",
    "super",
    "_",
    "r#type",
    "r#struct",
    "relu",
    "softmax",
    "elu",
    "0",
    "1",
    "7",
    "-3",
    "- 3",
    "65536",
    "65537",
    "4294967297",
    "99999999999999999999999999",
    "5u8",
    "4usize",
    "3i32",
    "2.5",
    "1e39",
    "1e-50",
    "0x10",
    "0b11",
    "1_000",
    "\"16\"",
    "'c'",
    "b'c'",
    "b\"bytes\"",
    "r\"raw\"",
    "c\"c\"",
    "true",
    "=>",
    "<",
    ">",
    ">>",
    "<=",
    "=",
    ":",
    "::",
    ",",
    ";",
    "-",
    "#",
    "!",
    "?",
    "'a",
    "$",
    "@",
    "()",
    "[]",
    "{}",
    "(1)",
    "(0.1)",
    "(-0.1)",
    "(x)",
    "(1, 2)",
    "< 2 => 1 >",
    "{ a: < 2 => 1 > }",
];

/// One random declaration in the grammar (often valid, sometimes not), as text.
fn declaration(rng: &mut Rng) -> String {
    let mut text = String::new();
    let expression = rng.chance(15);
    if expression {
        if rng.chance(20) {
            text.push_str("#[backprop(crate = ::backprop)] ");
        }
        text.push_str(&architecture(rng));
        return text;
    }
    for _ in 0..rng.below(3) {
        text.push_str(rng.pick(ATTRIBUTES));
        text.push('\n');
    }
    text.push_str(rng.pick(&["", "pub ", "pub(crate) "]));
    text.push_str("struct ");
    text.push_str(rng.pick(STRUCT_NAMES));
    text.push(' ');
    if rng.chance(20) {
        text.push_str("{ ");
        for _ in 0..1 + rng.below(3) {
            let _ = write!(text, "{}: {}, ", rng.pick(FIELD_NAMES), architecture(rng));
        }
        text.push('}');
    } else {
        text.push_str(&architecture(rng));
    }
    text
}

/// `< inputs => layer ... >`.
fn architecture(rng: &mut Rng) -> String {
    let mut text = format!("< {}", width(rng));
    for _ in 0..1 + rng.below(4) {
        text.push_str(" => ");
        if rng.chance(20) {
            let _ = write!(text, "{}: ", rng.pick(FIELD_NAMES));
        }
        if rng.chance(60) {
            let _ = write!(text, "{} ", rng.pick(ACTIVATIONS));
        }
        text.push_str(&width(rng));
    }
    text.push_str(" >");
    text
}

/// A width: small mostly, now and then one that makes a boxed layer.
fn width(rng: &mut Rng) -> String {
    if rng.chance(3) {
        return rng
            .pick(&["130", "200", "0", "-2", "5u8", "2.0"])
            .to_string();
    }
    (1 + rng.below(9)).to_string()
}

/// A token from the replacement pool, sometimes wrapped in an invisible group.
fn replacement(rng: &mut Rng) -> TokenStream {
    let tokens: TokenStream = rng.pick(REPLACEMENTS).parse().expect("the pool lexes");
    if rng.chance(15) {
        invisible(tokens)
    } else {
        tokens
    }
}

/// `tokens` in an invisible group, as `macro_rules!` passes a `$x:expr`.
fn invisible(tokens: TokenStream) -> TokenStream {
    TokenTree::Group(Group::new(Delimiter::None, tokens)).into()
}

/// Mutates `tokens` once, token-wise, at any depth: delete, duplicate, swap, replace, insert,
/// wrap in an invisible or a real group.
fn mutate(tokens: TokenStream, rng: &mut Rng) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if trees.is_empty() {
        return replacement(rng);
    }
    let at = rng.below(trees.len());
    // Into a group, now and then.
    if let TokenTree::Group(group) = &trees[at] {
        if rng.chance(50) {
            let mut inner = Group::new(group.delimiter(), mutate(group.stream(), rng));
            inner.set_span(group.span());
            trees[at] = TokenTree::Group(inner);
            return trees.into_iter().collect();
        }
    }
    match rng.below(7) {
        0 => {
            trees.remove(at);
        }
        1 => {
            let copy = trees[at].clone();
            trees.insert(at, copy);
        }
        2 if trees.len() > 1 => {
            let other = rng.below(trees.len());
            trees.swap(at, other);
        }
        3 => {
            trees.splice(at..=at, replacement(rng));
        }
        4 => {
            trees.splice(at..at, replacement(rng));
        }
        5 => {
            let wrapped = invisible(trees[at].clone().into());
            trees.splice(at..=at, wrapped);
        }
        _ => {
            let delimiter =
                rng.pick(&[Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace]);
            let end = (at + 1 + rng.below(3)).min(trees.len());
            let inner: TokenStream = trees[at..end].iter().cloned().collect();
            trees.splice(at..end, [TokenTree::Group(Group::new(delimiter, inner))]);
        }
    }
    trees.into_iter().collect()
}

/// A raw literal or identifier no text pool can hold: huge, suffixed, unusual.
fn odd_literal(rng: &mut Rng) -> TokenTree {
    match rng.below(6) {
        0 => Literal::u128_suffixed(u128::from(rng.next()) << 64).into(),
        1 => Literal::f64_unsuffixed(f64::from_bits(rng.next() >> 2)).into(),
        2 => Literal::i64_unsuffixed(-(rng.below(5) as i64)).into(),
        3 => Literal::usize_suffixed(rng.below(70_000)).into(),
        4 => Ident::new_raw(
            rng.pick(&["relu", "type", "match", "fc1"]),
            Span::call_site(),
        )
        .into(),
        _ => Punct::new('-', Spacing::Alone).into(),
    }
}

/// Case `index` of the suite: a declaration, mutated zero to three times.
fn case(rng: &mut Rng) -> TokenStream {
    let mut tokens: TokenStream = declaration(rng)
        .parse()
        .expect("generated declarations lex");
    for _ in 0..rng.below(4) {
        tokens = mutate(tokens, rng);
    }
    if rng.chance(5) {
        let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
        let at = rng.below(trees.len() + 1);
        trees.insert(at, odd_literal(rng));
        tokens = trees.into_iter().collect();
    }
    tokens
}

/// Runs `tokens` through the parser and the checker, then the fallback or (for one accepted case
/// in `expand_every`) the expansion; whether it was accepted. Panics (failing the test) when the macro panics or, for one case in
/// `syntax_every`, when its output is not valid Rust syntax (parsing the output back is the
/// slow part of a case).
fn run(tokens: TokenStream, expand_every: u64, syntax_every: u64, index: u64) -> bool {
    let text = || tokens.to_string();
    let (output, accepted, expression) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match syn::parse2::<crate::ast::Declaration>(tokens.clone()) {
                Err(error) => {
                    let header = crate::ast::recover_header(tokens.clone());
                    let expression = header.as_ref().is_some_and(|header| header.name.is_none());
                    (crate::expand::fallback(error, header), false, expression)
                }
                Ok(declaration) => {
                    let expression = declaration.name.is_none();
                    match crate::valid::check(declaration) {
                        // Expanding is the slow part of a case: one accepted case in `expand_every`.
                        Ok(network) if index.is_multiple_of(expand_every) => {
                            (crate::expand::expand(&network), true, expression)
                        }
                        Ok(_) => (TokenStream::new(), true, expression),
                        Err(failure) => (
                            crate::expand::fallback(failure.error, Some(failure.header)),
                            false,
                            expression,
                        ),
                    }
                }
            }
        }))
        .unwrap_or_else(|_| panic!("the macro panicked on `{}`", text()));
    if index.is_multiple_of(syntax_every) && !output.is_empty() {
        let parsed = if expression {
            syn::parse2::<syn::Expr>(output.clone()).map(drop)
        } else {
            syn::parse2::<syn::File>(output.clone()).map(drop)
        };
        if let Err(error) = parsed {
            panic!(
                "the output for `{}` is not valid Rust ({error}): {output}",
                text()
            );
        }
    }
    accepted
}

#[test]
fn fuzzed_declarations_never_panic_and_expand_to_valid_syntax() {
    let cases = env_number("BACKPROP_FUZZ_CASES", 100_000);
    let mut rng = Rng(env_number("BACKPROP_FUZZ_SEED", 0));
    let mut accepted = 0_u64;
    for index in 0..cases {
        accepted += u64::from(run(case(&mut rng), 3, 20, index));
    }
    eprintln!("{accepted} of {cases} fuzzed declarations accepted");
    // The suite must reach both sides of the checker.
    assert!(
        accepted > cases / 20 && accepted < cases * 19 / 20,
        "{accepted} of {cases} accepted"
    );
}

/// Accepted declarations of the suite, distinct, in the order the generator makes them.
///
/// Two kinds of case are left out, because what they test is not the macro: a case whose text
/// lexes differently from its tokens (the text loses invisible groups, which `macro_rules!`
/// cannot produce around a lone `>`), and a case whose attributes were mutated (the macro passes
/// attributes it does not own to the compiler, which checks them on the user's tokens).
fn accepted_declarations(count: usize, seed: u64) -> Vec<TokenStream> {
    let pool: BTreeSet<String> = ATTRIBUTES
        .iter()
        .chain(["#[backprop(crate = ::backprop)]"].iter())
        .map(|attr| {
            attr.parse::<TokenStream>()
                .expect("attributes lex")
                .to_string()
        })
        .collect();
    let mut rng = Rng(seed);
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    while found.len() < count {
        let text = case(&mut rng).to_string();
        let Ok(tokens) = text.parse::<TokenStream>() else {
            continue;
        };
        let attrs_from_pool = crate::ast::recover_header(tokens.clone()).is_some_and(|header| {
            header
                .attrs
                .iter()
                .all(|attr| pool.contains(&quote::ToTokens::to_token_stream(attr).to_string()))
        });
        if attrs_from_pool && !seen.contains(&text) && run(tokens.clone(), 1, 1, 0) {
            seen.insert(text);
            found.push(tokens);
        }
    }
    found
}

/// Each declaration in a module of its own (so struct names may repeat across modules), with a
/// function that builds and runs the network, so that every impl is instantiated.
fn scratch_source(declarations: &[TokenStream]) -> String {
    let mut source = String::from(
        "#![allow(dead_code, non_camel_case_types, non_snake_case, unused_imports)]\n\
         /// Zeros, a forward pass and a backward pass of `net`.\n\
         fn run<N: ::backprop::Model<I, O, Scalar = f32>, const I: usize, const O: usize>(net: &N) -> usize {\n\
         \x20   let mut ws = ::backprop::Model::workspace::<1>(net);\n\
         \x20   let x = ::backprop::nalgebra::SVector::<f32, I>::zeros();\n\
         \x20   let n = ::backprop::Model::forward_into(net, &x, &mut ws).len();\n\
         \x20   let mut grad = N::zeros();\n\
         \x20   let target = ::backprop::nalgebra::SVector::<f32, O>::zeros();\n\
         \x20   let loss = ::backprop::Model::backward(net, &x, &target, &::backprop::loss::Mse, &mut ws, &mut grad);\n\
         \x20   n + net.params().count() + usize::from(loss.is_nan())\n\
         }\n",
    );
    let mut calls = String::new();
    for (index, tokens) in declarations.iter().enumerate() {
        let header = crate::ast::recover_header(tokens.clone());
        let false_cfg = tokens.to_string().contains("cfg (any ())");
        let body = match header.and_then(|header| header.name) {
            Some(name) if !false_cfg => format!(
                "pub fn __exercise() -> usize {{ super::run(&{name}::<::core::primitive::f32>::zeros()) \
                 + super::run(&{name}::<::core::primitive::f32>::init({index})) }}"
            ),
            Some(_) => "pub fn __exercise() -> usize { 0 }".to_owned(),
            None => format!("pub fn __exercise() -> usize {{ let net = ::backprop::network!({tokens}); super::run(&net) }}"),
        };
        let item = if body.contains("::backprop::network!") {
            String::new()
        } else {
            format!("::backprop::network! {{ {tokens} }}")
        };
        let _ = writeln!(source, "mod m{index} {{\n    {item}\n    {body}\n}}");
        let _ = writeln!(calls, "    total += m{index}::__exercise();");
    }
    let _ = write!(
        source,
        "fn main() {{\n    let mut total = 0;\n{calls}    println!(\"{} networks, {{total}} values\");\n}}\n",
        declarations.len()
    );
    source
}

/// Compiles and runs the accepted declarations of the suite in one scratch crate. Ignored in the
/// normal run (it builds a crate); CI runs it with
/// `cargo test -p backprop-macros --lib -- --ignored accepted_declarations_compile`.
#[test]
#[ignore = "builds a scratch crate with cargo; run with --ignored"]
fn accepted_declarations_compile() {
    let count = env_number("BACKPROP_FUZZ_COMPILE", 500) as usize;
    let declarations = accepted_declarations(count, env_number("BACKPROP_FUZZ_SEED", 0));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let scratch = target.join("fuzz-compile");
    std::fs::create_dir_all(scratch.join("src")).expect("the scratch crate's directory");
    let manifest = format!(
        "[package]\nname = \"backprop-fuzz-compile\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\nbackprop = {{ path = {:?} }}\n\n[workspace]\n",
        root.display().to_string()
    );
    std::fs::write(scratch.join("Cargo.toml"), manifest).expect("the scratch manifest");
    // The workspace's lock file, so that the same dependency versions are reused.
    std::fs::copy(root.join("Cargo.lock"), scratch.join("Cargo.lock")).expect("the lock file");
    std::fs::write(scratch.join("src/main.rs"), scratch_source(&declarations))
        .expect("the scratch source");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .arg("run")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(scratch.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the accepted declarations in {} do not all compile and run:\n{stderr}",
        scratch.join("src/main.rs").display()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with(&format!("{count} networks")), "{stdout}");
}

#[test]
fn the_generator_is_seeded_and_mutations_change_tokens() {
    let (mut a, mut b) = (Rng(7), Rng(7));
    let (first, second) = (case(&mut a).to_string(), case(&mut b).to_string());
    assert_eq!(first, second);
    let mut rng = Rng(1);
    let tokens: TokenStream = "struct Net < 4 => relu 5 => 1 >".parse().unwrap();
    let changed = (0..200)
        .filter(|_| mutate(tokens.clone(), &mut rng).to_string() != tokens.to_string())
        .count();
    assert!(
        changed > 150,
        "only {changed} of 200 mutations changed the tokens"
    );
}
