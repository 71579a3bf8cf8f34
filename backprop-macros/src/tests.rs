//! The macro never panics: random token streams always end in generated code or an error.

use proptest::prelude::*;

use crate::generate;

/// Tokens a declaration is made of, right and wrong, to draw random sequences from.
const VOCABULARY: &[&str] = &[
    "<",
    ">",
    "=>",
    "=",
    ":",
    "::",
    ",",
    ";",
    "-",
    "pub",
    "struct",
    "Net",
    "fc1",
    "enc",
    "relu",
    "rleu",
    "leaky_relu",
    "elu",
    "softmax",
    "sigmoid",
    "identity",
    "gelu",
    "(",
    ")",
    "(0.2)",
    "(-1)",
    "()",
    "(a, b)",
    "0",
    "1",
    "2",
    "5",
    "4.5",
    "1e999",
    "99999999999999999999999",
    "5u8",
    "\"text\"",
    "'c'",
    "#[doc = \"d\"]",
    "///",
    "[",
    "]",
    "{",
    "}",
    "x",
    "f32",
    "pub(crate)",
    "65537",
    ">>",
    "<<",
    "=>>",
];

/// Runs the macro on `text` if it lexes, and checks that it produced something.
fn run(text: &str) {
    let Ok(tokens) = text.parse::<proc_macro2::TokenStream>() else {
        return;
    };
    let output = generate(tokens).to_string();
    assert!(
        output.contains("compile_error") || output.contains("struct"),
        "neither code nor an error for `{text}`: {output}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn random_tokens_never_panic(words in proptest::collection::vec(proptest::sample::select(VOCABULARY), 0..24)) {
        run(&words.join(" "));
    }

    #[test]
    fn random_declarations_never_panic(
        prefix in proptest::sample::select(&["", "pub struct Net", "struct N", "#[derive(Default)] struct N"][..]),
        layers in proptest::collection::vec(
            (proptest::sample::select(&["", "relu ", "rleu ", "softmax ", "leaky_relu(0.3) ", "elu(x) ", "a: ", "fc2: tanh "][..]),
             proptest::sample::select(&["0", "1", "3", "4.5", "", "x", "70000", "-2"][..])),
            0..6),
        close in proptest::sample::select(&[">", "", "=> >", "> extra"][..]),
    ) {
        let body: Vec<String> = layers.iter().map(|(activation, width)| format!("{activation}{width}")).collect();
        run(&format!("{prefix} < 4 => {} {close}", body.join(" => ")));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_chains_never_panic(
        parts in proptest::collection::vec(
            (proptest::sample::select(&["encoder", "decoder", "encoder", "x", "", "1"][..]),
             proptest::sample::select(&["< 4 => relu 2 >", "< 2 => 4 >", "< 3 => tanh 4 >", "< 0 >", "<", "4 => 2", ""][..]),
             proptest::sample::select(&[",", "", ";", ",,"][..])),
            0..4),
    ) {
        let body: Vec<String> = parts.iter().map(|(name, layers, sep)| format!("{name}: {layers}{sep}")).collect();
        run(&format!("pub struct Chain {{ {} }}", body.join(" ")));
    }
}

#[test]
fn the_seed_declaration_expands() {
    let output = generate(
        "pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >"
            .parse()
            .unwrap(),
    )
    .to_string();
    assert!(!output.contains("compile_error"), "{output}");
    assert!(output.contains("pub struct Net"));
}

/// The text of the generated method `name`, from its `fn` to the next `fn`.
fn method_body<'a>(code: &'a str, name: &str) -> &'a str {
    let start = code
        .find(&format!("fn {name} "))
        .unwrap_or_else(|| panic!("no fn {name}"));
    let rest = &code[start + 3..];
    &rest[..rest.find(" fn ").unwrap_or(rest.len())]
}

#[test]
fn forward_and_backward_are_straight_line() {
    let code = generate(
        "pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >"
            .parse()
            .unwrap(),
    )
    .to_string();
    // The passes live in the `Model` impl; the inherent methods delegate to it.
    let code = &code[code
        .find("Model < 4usize , 1usize > for Net")
        .expect("a Model impl")..];
    for name in ["forward_into", "backward"] {
        let body = method_body(code, name);
        for word in ["for ", "while ", "loop ", "dyn ", "Vec", "Box", "alloc"] {
            assert!(
                !body.contains(word),
                "`{word}` in the generated {name}: {body}"
            );
        }
    }
    let forward = method_body(code, "forward_into");
    assert_eq!(
        forward.matches(". affine (").count(),
        3,
        "one affine map per layer: {forward}"
    );
    let backward = method_body(code, "backward");
    assert_eq!(
        backward.matches(". set_gradient (").count(),
        3,
        "one gradient per layer: {backward}"
    );
    assert_eq!(
        backward.matches(". propagate (").count(),
        2,
        "δ flows back through two layers: {backward}"
    );
    // Layers appear in reverse order in the backward pass.
    let (fc3, fc1) = (
        backward.find("grad . fc3").unwrap(),
        backward.find("grad . fc1").unwrap(),
    );
    assert!(fc3 < fc1);
}

/// The expansion of `text`, as text.
fn expand_text(text: &str) -> String {
    generate(text.parse().unwrap()).to_string()
}

#[test]
fn raw_identifiers_neither_panic_nor_leak_into_names() {
    let code = expand_text("pub struct C { r#type: < 2 => 3 >, b: < 3 => 4 > }");
    assert!(!code.contains("compile_error"), "{code}");
    assert!(code.contains("struct CType"), "{code}");
    assert!(code.contains("\"type.fc1.weight\""), "{code}");
    assert!(!code.contains("r#type."), "{code}");
    let code = expand_text("struct Net < 2 => r#type: 3 => 1 >");
    assert!(code.contains("\"type.weight\""), "{code}");
    // `r#fc1` is the field `fc1`: a duplicate of the generated name of layer 1.
    let code = expand_text("struct Net < 2 => 3 => r#fc1: 1 >");
    assert!(code.contains("duplicate layer name `fc1`"), "{code}");
}

#[test]
fn generic_names_avoid_the_declared_types() {
    let code = expand_text("struct T < 2 => 1 >");
    assert!(code.contains("struct T < T1 :"), "{code}");
    let code = expand_text("struct Net < 2 => 1 >");
    assert!(code.contains("struct Net < T :"), "{code}");
    let code = expand_text("struct U < 2 => 1 >");
    assert!(code.contains("fn cast < U1 :"), "{code}");
}

#[test]
fn the_expression_form_reports_every_error_in_one_block() {
    let code = expand_text("< 4 => rleu 5 => 0 >");
    assert_eq!(code.matches("compile_error").count(), 2, "{code}");
    assert!(code.starts_with('{') && code.ends_with('}'), "{code}");
    assert!(syn::parse_str::<syn::Expr>(&code).is_ok(), "{code}");
}

#[test]
fn a_failed_declaration_still_declares_its_types() {
    let code = expand_text("/// Docs.\n#[derive(Debug)] pub struct Net < 4 => rleu 5 => 1 >");
    assert!(code.contains("pub struct Net <"), "{code}");
    assert!(code.contains("pub struct NetWorkspace <"), "{code}");
    assert!(!code.contains("derive"), "{code}");
    let code = expand_text("pub struct Net < 4 => 5 extra >");
    assert!(
        code.contains("compile_error") && code.contains("pub struct Net <"),
        "{code}"
    );
}

#[test]
fn user_derives_of_the_macro_traits_are_dropped() {
    let code = expand_text("#[derive(Clone, std::fmt::Debug, Serialize)] #[cfg_attr(all(), derive(PartialEq))] struct Net < 2 => 1 >");
    assert_eq!(code.matches("derive (Clone").count(), 0, "{code}");
    assert!(code.contains("# [derive (Serialize)]"), "{code}");
    assert!(!code.contains("cfg_attr"), "{code}");
}

#[test]
fn cfg_goes_on_every_item() {
    let code = expand_text("#[cfg(feature = \"x\")] struct Net { a: < 2 => 3 >, b: < 3 => 1 > }");
    // Three networks (the chain and its two parts), ten items each: the struct, its `Debug` and
    // `Default`, the `serde_impls!` invocation, the workspace, the workspace's impl, the inherent
    // impl, the derivatives' impl, `Model` and `Network`; and each part (not the chain, whose
    // layers are the parts') asserts the storage rule agrees with core's.
    assert_eq!(
        code.matches("# [cfg (feature = \"x\")]").count(),
        3 * 10 + 2,
        "{code}"
    );
}

#[test]
fn invisible_groups_are_looked_through() {
    use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
    let wrap = |text: &str| -> TokenStream {
        TokenTree::Group(Group::new(Delimiter::None, text.parse().unwrap())).into()
    };
    let mut tokens: TokenStream = "struct Net < 4 =>".parse().unwrap();
    tokens.extend(wrap("16"));
    tokens.extend("=> leaky_relu".parse::<TokenStream>().unwrap());
    tokens.extend(std::iter::once(TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        wrap("-0.5"),
    ))));
    tokens.extend("1 =>".parse::<TokenStream>().unwrap());
    tokens.extend(wrap("2 + 2"));
    tokens.extend(">".parse::<TokenStream>().unwrap());
    let code = generate(tokens).to_string();
    assert_eq!(code.matches("compile_error").count(), 2, "{code}");
    assert!(code.contains("found the expression `2 + 2`"), "{code}");
    assert!(code.contains("between 0.0 and 1.0, found -0.5"), "{code}");
}
