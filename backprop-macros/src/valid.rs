//! Semantic checks: the syntax tree in, a checked network model out, or every mistake at once.
//!
//! Each check pushes its error into an [`Errors`] context and carries on, so a declaration with a
//! zero width, an unknown activation and a duplicate name gets all three messages in one build,
//! each spanned on the token that caused it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::format_ident;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Lit, Token, Visibility};

use crate::activation::{suggest, Activation, Argument, NAMES};
use crate::ast::{ActivationSpec, Architecture, Body, Declaration, Layer, Part};

/// The widest layer `network!` accepts: wider layers belong in a heap-allocated framework.
pub const MAX_WIDTH: usize = 65_536;

/// The most weights one layer may hold (`in × out`).
pub const MAX_LAYER_WEIGHTS: usize = 1 << 24;

/// A declaration that passed every check.
pub struct Network {
    /// Attributes and doc comments to put on the struct.
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name, or `None` for the expression form.
    pub name: Option<Ident>,
    /// The input width.
    pub inputs: usize,
    /// The layers, first to last, across every part; never empty.
    pub layers: Vec<CheckedLayer>,
    /// For a chained network, its parts in order; empty otherwise.
    pub parts: Vec<CheckedPart>,
}

/// One part of a chained network: a network of its own.
pub struct CheckedPart {
    /// The part's field name (`encoder`).
    pub name: Ident,
    /// The part's input width.
    pub inputs: usize,
    /// The part's layers (their `part` is `None`: the part stands alone).
    pub layers: Vec<CheckedLayer>,
}

/// One layer with its widths resolved.
#[derive(Clone)]
pub struct CheckedLayer {
    /// The part the layer belongs to, in a chained network.
    pub part: Option<Ident>,
    /// The field name (`fc1` unless the declaration named it).
    pub field: Ident,
    /// Input width (the previous layer's output width).
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// The activation applied after the affine map.
    pub activation: Activation,
}

/// Collects errors so they can be reported together, in the spirit of serde_derive's `Ctxt`.
#[derive(Default)]
struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// Records an error at `span`.
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// All errors combined into one, or `Ok` when there were none.
    fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}

/// Checks a parsed declaration and resolves it into a [`Network`].
pub fn check(declaration: Declaration) -> syn::Result<Network> {
    let mut errors = Errors::default();
    let (inputs, layers, parts) = match &declaration.body {
        Body::Layers(architecture) => {
            let (inputs, layers) = check_architecture(architecture, &mut errors);
            (inputs, layers, Vec::new())
        }
        Body::Parts(parts) => check_parts(parts, &mut errors),
    };
    errors.finish()?;
    Ok(Network {
        attrs: declaration.attrs,
        vis: declaration.vis,
        name: declaration.name,
        inputs: inputs.unwrap_or_default(),
        layers,
        parts,
    })
}

/// The parts of a chained network: each checked as a network, names distinct, and each part's
/// input width equal to the previous part's output width.
fn check_parts(
    parts: &[Part],
    errors: &mut Errors,
) -> (Option<usize>, Vec<CheckedLayer>, Vec<CheckedPart>) {
    let mut checked = Vec::new();
    let mut layers = Vec::new();
    let mut previous: Option<(&Ident, usize)> = None;
    for (index, part) in parts.iter().enumerate() {
        if let Some(first) = parts[..index].iter().find(|other| other.name == part.name) {
            errors.push(
                part.name.span(),
                format!(
                    "duplicate part name `{}`: a chained network's parts need distinct names",
                    first.name
                ),
            );
        }
        let (inputs, part_layers) = check_architecture(&part.architecture, errors);
        if let (Some((before, outputs)), Some(inputs)) = (previous, inputs) {
            if outputs != inputs {
                errors.push(
                    part.architecture.inputs.width.span(),
                    format!(
                        "`{}` takes {inputs} inputs, but `{before}` before it outputs {outputs}: \
                         the widths where parts meet must agree",
                        part.name
                    ),
                );
            }
        }
        previous = part_layers.last().map(|layer| (&part.name, layer.outputs));
        layers.extend(part_layers.iter().cloned().map(|layer| CheckedLayer {
            part: Some(part.name.clone()),
            ..layer
        }));
        checked.push(CheckedPart {
            name: part.name.clone(),
            inputs: inputs.unwrap_or_default(),
            layers: part_layers,
        });
    }
    let inputs = checked.first().map(|part| part.inputs);
    (inputs, layers, checked)
}

/// One layer list: its input width and its checked layers.
fn check_architecture(
    architecture: &Architecture,
    errors: &mut Errors,
) -> (Option<usize>, Vec<CheckedLayer>) {
    let inputs = check_input(&architecture.inputs, architecture.open.span, errors);
    if architecture.layers.is_empty() {
        errors.push(
            architecture.close.span,
            "a network needs at least one layer: add `=> width` before `>`, as in `< 4 => relu 5 => 1 >`",
        );
    }

    let mut layers = Vec::new();
    let mut previous = inputs;
    for (index, (arrow, layer)) in architecture.layers.iter().enumerate() {
        let field = layer
            .name
            .clone()
            .unwrap_or_else(|| format_ident!("fc{}", index + 1));
        let activation = check_activation(layer, errors);
        let outputs = check_layer_width(layer, arrow.spans[0], errors);
        if let (Some(inputs), Some(outputs)) = (previous, outputs) {
            if inputs.saturating_mul(outputs) > MAX_LAYER_WEIGHTS {
                errors.push(
                    layer.width.span(),
                    format!(
                        "layer `{field}` would hold {inputs} × {outputs} weights, more than the {MAX_LAYER_WEIGHTS} a \
                         statically sized layer may have; use narrower layers"
                    ),
                );
            }
        }
        if let (Some(Activation::Softmax), Some(1), Some(spec)) =
            (activation, outputs, &layer.activation)
        {
            errors.push(
                spec.name.span(),
                "softmax over a single unit always outputs 1 and passes no gradient; \
                 use `sigmoid 1` for one probability, or give the layer at least 2 units",
            );
        }
        if let (Some(inputs), Some(outputs), Some(activation)) = (previous, outputs, activation) {
            layers.push(CheckedLayer {
                part: None,
                field,
                inputs,
                outputs,
                activation,
            });
        }
        previous = outputs;
    }
    check_duplicate_names(&architecture.layers, errors);

    (inputs, layers)
}

/// The input width: a width and nothing else.
fn check_input(input: &Layer, open: Span, errors: &mut Errors) -> Option<usize> {
    if let Some(name) = &input.name {
        errors.push(
            name.span(),
            "the input width takes no name: only layers after `=>` are named",
        );
    }
    if let Some(activation) = &input.activation {
        errors.push(
            activation.name.span(),
            format!(
                "the input width takes no activation: an activation belongs to the layer it follows, \
                 as in `< 4 => {} 5 >`",
                activation.name
            ),
        );
        return None;
    }
    match &input.width {
        Some(width) => check_width(width, errors),
        None => {
            errors.push(
                open,
                "expected the input width after `<`, as in `< 4 => relu 5 => 1 >`",
            );
            None
        }
    }
}

/// A layer's width, or an error saying what is missing or wrong.
fn check_layer_width(layer: &Layer, arrow: Span, errors: &mut Errors) -> Option<usize> {
    if let Some(width) = &layer.width {
        return check_width(width, errors);
    }
    match (&layer.activation, &layer.name) {
        (Some(spec), _) if spec.args.is_none() && Activation::named(&spec.name.to_string()).is_none() => {
            // `=> five >`: most likely meant as a width, and already reported as an unknown activation.
        }
        (Some(spec), _) => errors.push(
            spec.name.span(),
            format!("missing width after `{0}`: write the layer's number of units, as in `{0} 5`", spec.name),
        ),
        (None, Some(name)) => errors.push(
            name.span(),
            format!("missing width after `{name}:`: write the layer's number of units, as in `{name}: relu 5`"),
        ),
        (None, None) => errors.push(
            arrow,
            "expected a layer after `=>`: write its width, as in `=> 1`, or remove the trailing `=>`",
        ),
    }
    None
}

/// A width token: a positive integer literal within [`MAX_WIDTH`].
fn check_width(token: &TokenTree, errors: &mut Errors) -> Option<usize> {
    let literal = match token {
        TokenTree::Literal(literal) => Lit::new(literal.clone()),
        other => {
            errors.push(
                other.span(),
                format!("expected a layer width (a positive integer), found `{other}`"),
            );
            return None;
        }
    };
    let int = match literal {
        Lit::Int(int) => int,
        Lit::Float(float) => {
            errors.push(
                float.span(),
                format!("a layer width is a whole number of units, found `{float}`; write an integer such as `4`"),
            );
            return None;
        }
        other => {
            errors.push(
                other.span(),
                format!(
                    "expected a layer width (a positive integer), found `{}`",
                    quote::ToTokens::to_token_stream(&other)
                ),
            );
            return None;
        }
    };
    if !int.suffix().is_empty() {
        errors.push(
            int.span(),
            format!(
                "write the width `{}` without the `{}` suffix",
                int.base10_digits(),
                int.suffix()
            ),
        );
        return None;
    }
    match int.base10_parse::<usize>() {
        Ok(0) => {
            errors.push(int.span(), "a layer width must be at least 1, found `0`");
            None
        }
        Ok(width) if width <= MAX_WIDTH => Some(width),
        _ => {
            errors.push(
                int.span(),
                format!(
                    "width `{}` is too large: a statically sized layer may have at most {MAX_WIDTH} units",
                    int.base10_digits()
                ),
            );
            None
        }
    }
}

/// The layer's activation (identity when omitted), or an error for an unknown name or bad argument.
fn check_activation(layer: &Layer, errors: &mut Errors) -> Option<Activation> {
    let Some(ActivationSpec { name, args }) = &layer.activation else {
        return Some(Activation::Identity);
    };
    let written = name.to_string();
    let Some(activation) = Activation::named(&written) else {
        if layer.width.is_none() && args.is_none() {
            errors.push(
                name.span(),
                format!("expected a layer width (a positive integer) or an activation, found `{written}`"),
            );
            return None;
        }
        let hint = match suggest(&written) {
            Some(known) => format!("did you mean `{known}`?"),
            None => format!("the activations are {}", NAMES.join(", ")),
        };
        errors.push(
            name.span(),
            format!("unknown activation `{written}`; {hint}"),
        );
        return None;
    };
    let Some((paren, tokens)) = args else {
        return Some(activation);
    };
    match activation.argument() {
        Argument::None => {
            errors.push(
                paren.span.join(),
                format!("`{written}` takes no argument; write `{written}` without parentheses"),
            );
            None
        }
        Argument::Optional { meaning, default } => match parse_number(tokens.clone()) {
            Ok((value, _)) if value.is_finite() => Some(activation.with_argument(value)),
            Ok((_, span)) => {
                errors.push(
                    span,
                    format!("the argument of `{written}` must be a finite number"),
                );
                None
            }
            Err((span, found)) => {
                let span = span.unwrap_or_else(|| paren.span.join());
                errors.push(
                    span,
                    format!(
                        "`{written}` takes one number, {meaning}, as in `{written}({default:?})`; found {found}"
                    ),
                );
                None
            }
        },
    }
}

/// Parses `[-] number` and nothing more; on failure, where and what was found instead.
fn parse_number(tokens: TokenStream) -> Result<(f64, Span), (Option<Span>, String)> {
    if tokens.is_empty() {
        return Err((None, "nothing".to_owned()));
    }
    let parser = |input: ParseStream| -> syn::Result<(f64, Span)> {
        let minus: Option<Token![-]> = input.parse()?;
        let lit: Lit = input.parse()?;
        let value = match &lit {
            Lit::Int(int) => int.base10_parse::<f64>()?,
            Lit::Float(float) => float.base10_parse::<f64>()?,
            other => return Err(syn::Error::new(other.span(), "not a number")),
        };
        if !input.is_empty() {
            return Err(input.error("extra tokens"));
        }
        Ok((if minus.is_some() { -value } else { value }, lit.span()))
    };
    parser.parse2(tokens.clone()).map_err(|error| {
        let found = tokens.to_string();
        (Some(error.span()), format!("`{found}`"))
    })
}

/// Two layers with the same field name, explicit or generated (`fc2`), are an error on the later
/// explicit one.
fn check_duplicate_names(layers: &[(Token![=>], Layer)], errors: &mut Errors) {
    let names: Vec<(Ident, bool)> = layers
        .iter()
        .enumerate()
        .map(|(index, (_, layer))| match &layer.name {
            Some(name) => (name.clone(), true),
            None => (format_ident!("fc{}", index + 1), false),
        })
        .collect();
    for (later, (name, explicit)) in names.iter().enumerate() {
        let Some(first) = names[..later].iter().position(|(other, _)| other == name) else {
            continue;
        };
        // Point at the explicit name: the generated one has no token of its own.
        let (span, other, other_generated) = if *explicit {
            (name.span(), first + 1, !names[first].1)
        } else {
            (names[first].0.span(), later + 1, true)
        };
        let what = if other_generated {
            "the name generated for"
        } else {
            "the name of"
        };
        errors.push(
            span,
            format!("duplicate layer name `{name}`: it is also {what} layer {other}; give each layer its own name"),
        );
    }
}
