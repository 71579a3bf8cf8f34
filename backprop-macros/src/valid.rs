//! Semantic checks: the syntax tree in, a checked network model out, or every mistake at once.
//!
//! Each check pushes its error into an [`Errors`] context and carries on, so a declaration with a
//! zero width, an unknown activation and a duplicate name gets all three messages in one build,
//! each spanned on the token that caused it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::format_ident;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Lit, Meta, Path, Token, Visibility};

use crate::activation::{suggest, Activation, Argument, NAMES};
use crate::ast::{ActivationSpec, Architecture, Body, Declaration, Header, Layer, Part, Width};
use crate::costs::{Budget, Trainer};
use crate::names;
use crate::weights::{Weights, WeightsAttr};

/// The widest layer `network!` accepts: wider layers belong in a heap-allocated framework.
pub const MAX_WIDTH: usize = 65_536;

/// The most weights one layer may hold (`in × out`).
pub const MAX_LAYER_WEIGHTS: usize = 1 << 24;

/// A declaration that passed every check.
pub struct Network {
    /// Attributes and doc comments to put on the struct, without the derives the macro makes
    /// itself and without `#[backprop(...)]`.
    pub attrs: Vec<Attribute>,
    /// The user's `#[cfg(...)]` attributes, repeated on every item the expansion emits.
    pub cfgs: Vec<Attribute>,
    /// The path to the `backprop` facade: `::backprop`, or what `#[backprop(crate = path)]` says.
    pub krate: Path,
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
    /// The `#[budget(...)]` the build enforces, if any.
    pub budget: Option<Budget>,
    /// The `#[weights("...")]` file, read and checked, if any.
    pub weights: Option<(WeightsAttr, Weights)>,
}

impl Network {
    /// The output width: the last layer's (the checker guarantees one).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |layer| layer.outputs)
    }

    /// Every weight and bias.
    pub fn parameters(&self) -> usize {
        self.layers.iter().map(CheckedLayer::parameters).sum()
    }

    /// The widest layer's output width (what a batch's largest layer values hold per sample).
    pub fn widest(&self) -> usize {
        self.layers
            .iter()
            .map(|layer| layer.outputs)
            .max()
            .unwrap_or(0)
    }
}

impl CheckedLayer {
    /// The layer's weights and biases.
    pub fn parameters(&self) -> usize {
        self.inputs * self.outputs + self.outputs
    }

    /// Whether the layer is stored on the heap: more than `HEAP_WEIGHTS` weights (core's
    /// `sizes::HEAP_WEIGHTS`), unless its weights are compiled in (`#[weights]`: one const value).
    pub fn on_heap(&self) -> bool {
        self.inputs * self.outputs > crate::expand::HEAP_WEIGHTS && !self.inline
    }
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
    /// The span of the layer's width, for errors about the layer that only the compiler finds
    /// (a boxed layer without the `alloc` feature).
    pub span: Span,
    /// Stored inline even when large: a network with compiled-in weights is one `const` value
    /// (flash), so none of its layers is a heap box.
    pub inline: bool,
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

    /// Records an error spanning `tokens`, from the first to the last.
    fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
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

/// A declaration that failed its checks: every error, and what the fallback expansion needs.
pub struct Failure {
    /// Every error, combined.
    pub error: syn::Error,
    /// The struct's name, visibility and harmless attributes, for the bare fallback struct.
    pub header: Header,
}

/// Checks a parsed declaration and resolves it into a [`Network`].
pub fn check(declaration: Declaration) -> Result<Network, Failure> {
    let mut errors = Errors::default();
    let expression = declaration.name.is_none();
    let Attributes {
        kept,
        cfgs,
        krate,
        budget,
        weights,
    } = check_attributes(declaration.attrs, expression, &mut errors);
    let (inputs, mut layers, mut parts) = match &declaration.body {
        Body::Layers(architecture) => {
            let (inputs, layers) = check_architecture(architecture, &mut errors);
            (inputs, layers, Vec::new())
        }
        Body::Parts(parts) => check_parts(parts, &mut errors),
    };
    if let (Some(name), Body::Parts(parts)) = (&declaration.name, &declaration.body) {
        check_type_names(name, parts, &mut errors);
    }
    // The weight file is read only for a declaration without other errors (its layers known).
    let mut loaded = None;
    if let (Some(attr), true) = (weights, errors.errors.is_empty()) {
        let shown = declaration
            .name
            .as_ref()
            .map_or(String::new(), |n| n.unraw().to_string());
        match crate::weights::read(&attr, &layers, &shown) {
            Ok(file) => {
                for layer in layers
                    .iter_mut()
                    .chain(parts.iter_mut().flat_map(|p| p.layers.iter_mut()))
                {
                    layer.inline = true;
                }
                loaded = Some((attr, file));
            }
            Err(error) => errors.errors.push(error),
        }
    }
    if let Err(error) = errors.finish() {
        return Err(Failure {
            error,
            header: Header {
                attrs: kept.into_iter().chain(cfgs).collect(),
                vis: declaration.vis,
                name: declaration.name,
            },
        });
    }
    Ok(Network {
        attrs: kept,
        cfgs,
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::backprop)),
        vis: declaration.vis,
        name: declaration.name,
        inputs: inputs.unwrap_or_default(),
        layers,
        parts,
        budget,
        weights: loaded,
    })
}

/// The attributes of a declaration, sorted: the ones for the struct, the `cfg`s for every item,
/// and the facade's path.
struct Attributes {
    /// Put on the struct (docs, `repr`, derives of traits the macro does not derive, ...).
    kept: Vec<Attribute>,
    /// `#[cfg(...)]`, put on every emitted item so that a false one removes them all.
    cfgs: Vec<Attribute>,
    /// `#[backprop(crate = path)]`.
    krate: Option<Path>,
    /// `#[budget(...)]`.
    budget: Option<Budget>,
    /// `#[weights("path")]`, parsed (the file is read once the layers are checked).
    weights: Option<WeightsAttr>,
}

/// The traits the macro implements for the struct itself (`Debug` as a summary, `Default` as
/// `zeros()`); a user's derive of one is dropped.
pub const DERIVED: &[&str] = &["Clone", "Debug", "PartialEq", "Default"];

/// Sorts the user's attributes; drops the derives the macro makes anyway (also inside
/// `cfg_attr`); reads `#[backprop(crate = path)]`. The expression form takes only that one.
fn check_attributes(attrs: Vec<Attribute>, expression: bool, errors: &mut Errors) -> Attributes {
    let mut sorted = Attributes {
        kept: Vec::new(),
        cfgs: Vec::new(),
        krate: None,
        budget: None,
        weights: None,
    };
    for attr in attrs {
        if attr.path().is_ident("backprop") {
            check_options(&attr, &mut sorted.krate, errors);
        } else if attr.path().is_ident("weights") && !expression {
            if sorted.weights.is_some() {
                errors.push_spanned(
                    &attr,
                    "`#[weights(...)]` is given twice; a network has one weight file",
                );
            } else {
                match crate::weights::parse_attr(&attr) {
                    Ok(parsed) => sorted.weights = Some(parsed),
                    Err(error) => errors.errors.push(error),
                }
            }
        } else if attr.path().is_ident("budget") && !expression {
            if sorted.budget.is_some() {
                errors.push_spanned(
                    &attr,
                    "`#[budget(...)]` is given twice; put every limit in one, as in \
                     `#[budget(ram = 16384, macs = 100000)]`",
                );
            } else {
                sorted.budget = check_budget(&attr, errors);
            }
        } else if expression {
            errors.push_spanned(
                &attr,
                "the expression form `network!(< ... >)` takes no attributes except \
                 `#[backprop(crate = path)]`; declare a named network to document or derive",
            );
        } else if attr.path().is_ident("cfg") {
            sorted.cfgs.push(attr);
        } else if let Some(cfgs) = cfgs_in_cfg_attr(&attr) {
            // `#[cfg_attr(pred, cfg(..))]` removes items like a `cfg` does: on every item too.
            sorted.cfgs.push(cfgs);
            if let Some(attr) = without_macro_derives(attr, errors) {
                sorted.kept.push(attr);
            }
        } else if attr.path().is_ident("repr") {
            check_repr(&attr, errors);
            sorted.kept.push(attr);
        } else if let Some(attr) = without_macro_derives(attr, errors) {
            sorted.kept.push(attr);
        }
    }
    sorted
}

/// The `cfg`s inside a `cfg_attr`, as `#[cfg_attr(pred, cfg(..), ...)]`, if it has any.
fn cfgs_in_cfg_attr(attr: &Attribute) -> Option<Attribute> {
    if !attr.path().is_ident("cfg_attr") {
        return None;
    }
    let (predicate, inner) = attr.parse_args_with(cfg_attr_args).ok()?;
    let cfgs: Vec<&Meta> = inner
        .iter()
        .filter(|meta| meta.path().is_ident("cfg"))
        .collect();
    if cfgs.is_empty() {
        return None;
    }
    Some(syn::parse_quote!(#[cfg_attr(#predicate, #(#cfgs),*)]))
}

/// Whether `attr` only decides whether an item exists (`cfg`, or `cfg_attr` of `cfg`s only): the
/// fallback struct keeps those, and docs, and nothing else.
pub fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg")
        || (attr.path().is_ident("cfg_attr")
            && attr
                .parse_args_with(cfg_attr_args)
                .is_ok_and(|(_, inner)| inner.iter().all(|meta| meta.path().is_ident("cfg"))))
}

/// `pred, attr, attr, ...`: the arguments of `cfg_attr`.
fn cfg_attr_args(input: ParseStream) -> syn::Result<(Meta, Punctuated<Meta, Token![,]>)> {
    let predicate: Meta = input.parse()?;
    input.parse::<Token![,]>()?;
    let inner = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
    Ok((predicate, inner))
}

/// `#[repr(packed)]` is an error: the struct's derives take references to its fields, which a
/// packed struct forbids. Other representations are the compiler's to check.
fn check_repr(attr: &Attribute, errors: &mut Errors) {
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("packed") {
            errors.push_spanned(
                &meta.path,
                "a network cannot be `repr(packed)`: its derived `Clone`, `Debug` and `PartialEq` \
                 take references to its layers; remove `packed`",
            );
        }
        // Skip an argument such as `packed(2)` or `align(8)`.
        if meta.input.peek(syn::token::Paren) {
            let _content;
            syn::parenthesized!(_content in meta.input);
        }
        Ok(())
    });
}

/// `#[backprop(crate = path)]`: where the facade is, for a renamed dependency.
fn check_options(attr: &Attribute, krate: &mut Option<Path>, errors: &mut Errors) {
    let result = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("crate") {
            let value = meta.value()?;
            let parsed = if value.peek(syn::LitStr) {
                value
                    .parse::<syn::LitStr>()
                    .and_then(|text| text.parse::<Path>())
            } else {
                value.parse::<Path>()
            };
            let path = parsed.map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "expected the path of the `backprop` crate after `crate =`, \
                     as in `#[backprop(crate = ::bp)]`",
                )
            })?;
            if krate.is_some() {
                return Err(meta.error("`crate` is given twice; keep one `crate = path`"));
            }
            *krate = Some(path);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown `backprop` option `{}`; the only option is `crate = path`, \
                 as in `#[backprop(crate = ::bp)]`",
                quote::ToTokens::to_token_stream(&meta.path)
                    .to_string()
                    .replace(' ', "")
            )))
        }
    });
    if let Err(error) = result {
        errors.errors.push(error);
    }
}

/// `#[budget(ram = N, macs = N, batch = B, scalar = f32 | f64, train = sgd | sgd_momentum |
/// adam | adamw)]`: at least one of `ram` and `macs`; every mistake spanned on its token.
fn check_budget(attr: &Attribute, errors: &mut Errors) -> Option<Budget> {
    let mut budget = Budget {
        ram: None,
        macs: None,
        batch: 1,
        scalar: Ident::new("f32", Span::call_site()),
        train: None,
    };
    let mut seen: Vec<String> = Vec::new();
    let result = attr.parse_nested_meta(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|ident| ident.to_string())
            .unwrap_or_default();
        if seen.contains(&key) {
            return Err(meta.error(format!("`{key}` is given twice in `#[budget(...)]`; keep one")));
        }
        let positive = |meta: &syn::meta::ParseNestedMeta, what: &str| -> syn::Result<(u64, syn::LitInt)> {
            let literal: syn::LitInt = meta.value()?.parse().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    format!("expected a whole number of {what} after `=`, as in `{key} = 16384`"),
                )
            })?;
            let value = literal.base10_parse::<u64>().map_err(|_| {
                syn::Error::new(
                    literal.span(),
                    format!("expected a whole number of {what} that fits in 64 bits"),
                )
            })?;
            Ok((value, literal))
        };
        match key.as_str() {
            "ram" => budget.ram = Some(positive(&meta, "bytes")?),
            "macs" => budget.macs = Some(positive(&meta, "multiply-adds")?),
            "batch" => {
                let (value, literal) = positive(&meta, "samples")?;
                if value == 0 || value > 1 << 20 {
                    return Err(syn::Error::new(
                        literal.span(),
                        format!("a batch of {value} samples cannot be budgeted; expected 1 to 1048576"),
                    ));
                }
                budget.batch = value as usize;
            }
            "scalar" => {
                let ident: Ident = meta.value()?.parse()?;
                if ident != "f32" && ident != "f64" {
                    return Err(syn::Error::new(
                        ident.span(),
                        format!("unknown scalar `{ident}` in `#[budget(...)]`; expected `f32` or `f64`"),
                    ));
                }
                budget.scalar = ident;
            }
            "train" => {
                let ident: Ident = meta.value()?.parse()?;
                budget.train = Some(Trainer::from_name(&ident.to_string()).ok_or_else(|| {
                    syn::Error::new(
                        ident.span(),
                        format!(
                            "unknown optimizer `{ident}` in `#[budget(train = ...)]`; expected one of `{}`",
                            Trainer::NAMES.join("`, `")
                        ),
                    )
                })?);
            }
            _ => {
                return Err(meta.error(format!(
                    "unknown budget `{}`; expected `ram = bytes`, `macs = count`, `batch = samples`, \
                     `scalar = f32`, or `train = adam` (or `sgd`, `sgd_momentum`, `adamw`)",
                    quote::ToTokens::to_token_stream(&meta.path)
                        .to_string()
                        .replace(' ', "")
                )))
            }
        }
        seen.push(key);
        Ok(())
    });
    if let Err(error) = result {
        errors.errors.push(error);
        return None;
    }
    if budget.ram.is_none() && budget.macs.is_none() {
        errors.push_spanned(
            attr,
            "a budget needs a limit: `#[budget(ram = 16384)]` (bytes) or `#[budget(macs = 100000)]`",
        );
        return None;
    }
    Some(budget)
}

/// The attribute without `Clone`, `Debug` and `PartialEq` in its derive lists (the macro derives
/// those already), or `None` when nothing is left of it. Other attributes come back unchanged.
fn without_macro_derives(attr: Attribute, errors: &mut Errors) -> Option<Attribute> {
    let Meta::List(list) = &attr.meta else {
        return Some(attr);
    };
    let filtered = if list.path.is_ident("derive") {
        let Ok(paths) = list.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
        else {
            return Some(attr);
        };
        for path in &paths {
            if let Some(reason) = underivable(path) {
                errors.push_spanned(path, reason);
            }
        }
        let kept: Vec<&Path> = paths.iter().filter(|path| !is_macro_derive(path)).collect();
        if kept.len() == paths.len() {
            return Some(attr);
        }
        if kept.is_empty() {
            return None;
        }
        let path = &list.path;
        quote::quote!(#path(#(#kept),*))
    } else if list.path.is_ident("cfg_attr") {
        let Ok((predicate, inner)) = list.parse_args_with(cfg_attr_args) else {
            return Some(attr);
        };
        let mut changed = false;
        let kept: Vec<TokenStream> = inner
            .iter()
            .filter_map(|meta| {
                let probe: Attribute = syn::parse_quote!(#[#meta]);
                match without_macro_derives(probe.clone(), errors) {
                    Some(kept) => {
                        changed |= quote::ToTokens::to_token_stream(&kept).to_string()
                            != quote::ToTokens::to_token_stream(&probe).to_string();
                        let meta = kept.meta;
                        Some(quote::quote!(#meta))
                    }
                    None => {
                        changed = true;
                        None
                    }
                }
            })
            .collect();
        if !changed {
            return Some(attr);
        }
        if kept.is_empty() {
            return None;
        }
        quote::quote!(cfg_attr(#predicate, #(#kept),*))
    } else {
        return Some(attr);
    };
    let (pound, style, bracket) = (attr.pound_token, attr.style, attr.bracket_token);
    Some(Attribute {
        pound_token: pound,
        style,
        bracket_token: bracket,
        meta: syn::parse2(filtered).ok()?,
    })
}

/// Why a standard trait the layers do not implement cannot be derived for a network, if `path`
/// names one: such a derive would fail inside the expansion.
fn underivable(path: &Path) -> Option<String> {
    let name = std_trait(path)?;
    let why = match name.as_str() {
        "Copy" => ": large layers live on the heap; copy a network with `.clone()`",
        "Eq" | "Hash" | "Ord" => {
            ": its weights are floating point, which has no total equality, hash or order; \
             `PartialEq` is derived already"
        }
        "PartialOrd" => ": networks have no order; `PartialEq` is derived already",
        _ => return None,
    };
    Some(format!("cannot derive `{name}` for a network{why}"))
}

/// The trait a derive path names, if it is a standard one: `Debug` for `Debug`, `fmt::Debug`,
/// `::core::fmt::Debug`, ...
fn std_trait(path: &Path) -> Option<String> {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.unraw().to_string())
        .collect();
    let (last, prefix) = segments.split_last()?;
    prefix
        .iter()
        .all(|segment| {
            [
                "std", "core", "alloc", "fmt", "clone", "cmp", "marker", "default", "hash",
            ]
            .contains(&segment.as_str())
        })
        .then(|| last.clone())
}

/// `Debug`, `fmt::Debug`, `core::fmt::Debug`, `::std::fmt::Debug`, ... (and `Clone`, `PartialEq`).
fn is_macro_derive(path: &Path) -> bool {
    std_trait(path).is_some_and(|name| DERIVED.contains(&name.as_str()))
}

/// In a chained network, every generated type name (the chain, its workspace, each part and its
/// workspace) must be distinct: `a_b` and `aB` would both make `NetAB`.
fn check_type_names(name: &Ident, parts: &[Part], errors: &mut Errors) {
    let workspace = names::workspace(name);
    let mut taken: Vec<(String, String)> = vec![
        (
            name.unraw().to_string(),
            format!("the network `{}` itself", name.unraw()),
        ),
        (
            workspace.to_string(),
            format!("the workspace of `{}`", name.unraw()),
        ),
    ];
    for part in parts {
        let ty = names::part_type(name, &part.name);
        let ws = names::workspace(&ty);
        for generated in [ty.to_string(), ws.to_string()] {
            if let Some((_, owner)) = taken.iter().find(|(other, _)| *other == generated) {
                errors.push(
                    part.name.span(),
                    format!(
                        "part `{}` would generate the type `{generated}`, which is already {owner}; \
                         rename the part",
                        part.name.unraw()
                    ),
                );
                break;
            }
        }
        taken.push((
            ty.to_string(),
            format!("the type of part `{}`", part.name.unraw()),
        ));
        taken.push((
            ws.to_string(),
            format!("the workspace of part `{}`", part.name.unraw()),
        ));
    }
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
        if let Some(first) = parts[..index]
            .iter()
            .find(|other| other.name.unraw() == part.name.unraw())
        {
            errors.push(
                part.name.span(),
                format!(
                    "duplicate part name `{}`: a chained network's parts need distinct names",
                    first.name.unraw()
                ),
            );
        }
        let (inputs, part_layers) = check_architecture(&part.architecture, errors);
        if let (Some((before, outputs)), Some(inputs)) = (previous, inputs) {
            if outputs != inputs {
                errors.push(
                    part.architecture.inputs.width.span(),
                    format!(
                        "`{}` takes {inputs} inputs, but `{}` before it outputs {outputs}: \
                         the widths where parts meet must agree",
                        part.name.unraw(),
                        before.unraw()
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
                        "layer `{}` would hold {inputs} × {outputs} weights, more than the {MAX_LAYER_WEIGHTS} a \
                         statically sized layer may have; use narrower layers",
                        field.unraw()
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
                span: layer
                    .width
                    .as_ref()
                    .map_or(arrow.spans[0], |width| width.token.span()),
                inline: false,
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
                activation.name.unraw()
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
        (Some(spec), _) if spec.args.is_none() && Activation::named(&spec.name.unraw().to_string()).is_none() => {
            // `=> five >`: most likely meant as a width, and already reported as an unknown activation.
        }
        (Some(spec), _) => errors.push(
            spec.name.span(),
            format!("missing width after `{0}`: write the layer's number of units, as in `{0} 5`", spec.name.unraw()),
        ),
        (None, Some(name)) => errors.push(
            name.span(),
            format!("missing width after `{0}:`: write the layer's number of units, as in `{0}: relu 5`", name.unraw()),
        ),
        (None, None) => errors.push(
            arrow,
            "expected a layer after `=>`: write its width, as in `=> 1`, or remove the trailing `=>`",
        ),
    }
    None
}

/// A width: a positive integer literal within [`MAX_WIDTH`].
fn check_width(width: &Width, errors: &mut Errors) -> Option<usize> {
    if width.minus.is_some() {
        errors.push_spanned(
            width,
            format!(
                "a layer width is a positive number of units, found `-{}`; remove the `-`",
                width.token
            ),
        );
        return None;
    }
    if let TokenTree::Group(group) = &width.token {
        if group.delimiter() == proc_macro2::Delimiter::None {
            // `$h:expr` holding more than one token: point at what the caller wrote.
            errors.push_spanned(
                group.stream(),
                format!(
                    "expected a layer width (a positive integer), found the expression `{}`",
                    group.stream()
                ),
            );
            return None;
        }
    }
    let literal = match &width.token {
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
    let written = name.unraw().to_string();
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
        Argument::Optional {
            meaning,
            default,
            range: (low, high),
        } => match parse_number(tokens.clone()) {
            Ok((value, _)) if (low..=high).contains(&value) => {
                Some(activation.with_argument(value))
            }
            Ok((value, number)) if value.abs() > f64::from(f32::MAX) => {
                errors.push_spanned(
                    number,
                    format!(
                        "{meaning} of `{written}` must be finite in `f32` (at most {:e} in size), \
                         found {value:e}; networks default to `f32`",
                        f32::MAX
                    ),
                );
                None
            }
            Ok((value, number)) => {
                errors.push_spanned(
                    number,
                    format!(
                        "{meaning} of `{written}` must be between {low:?} and {}, found {value:?}; \
                         the default is `{written}({default:?})`",
                        if high == f64::from(f32::MAX) { "`f32::MAX`".to_owned() } else { format!("{high:?}") }
                    ),
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
fn parse_number(tokens: TokenStream) -> Result<(f64, TokenStream), (Option<Span>, String)> {
    if tokens.is_empty() {
        return Err((None, "nothing".to_owned()));
    }
    let parser = |input: ParseStream| -> syn::Result<(f64, TokenStream)> {
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
        let written = quote::quote!(#minus #lit);
        Ok((if minus.is_some() { -value } else { value }, written))
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
        let Some(first) = names[..later]
            .iter()
            .position(|(other, _)| other.unraw() == name.unraw())
        else {
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
            format!(
                "duplicate layer name `{}`: it is also {what} layer {other}; give each layer its own name",
                name.unraw()
            ),
        );
    }
}
