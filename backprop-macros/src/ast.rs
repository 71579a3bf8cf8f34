//! The grammar of `network!` and its parser: tokens in, a syntax tree out.
//!
//! ```text
//! network! { $(#[attr])* $vis struct $Name < $inputs $( => $layer )+ > }
//! network!( < $inputs $( => $layer )+ > )
//! $layer := [$field_name :] [$activation [( $argument )]] $width
//! ```
//!
//! The parser is deliberately lenient inside a layer: it keeps whatever the user wrote (an unknown
//! activation, a zero or non-integer width, a missing width) so that `valid.rs` can report every
//! such mistake at once. Only the punctuation that frames the declaration (`struct`, `<`, `=>`, `>`)
//! stops the parse.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{token, Attribute, Ident, Token, Visibility};

/// A whole `network!` invocation.
pub struct Declaration {
    /// Attributes and doc comments on the struct (in the expression form, only
    /// `#[backprop(crate = path)]` is meaningful; `valid.rs` says so).
    pub attrs: Vec<Attribute>,
    /// The struct's visibility (item form only; inherited otherwise).
    pub vis: Visibility,
    /// The struct's name, or `None` for the expression form.
    pub name: Option<Ident>,
    /// The layer list, or the named parts of a chained network.
    pub body: Body,
}

/// What a declaration describes.
pub enum Body {
    /// `< 4 => relu 5 => 1 >`: one network.
    Layers(Architecture),
    /// `{ encoder: < 8 => relu 4 => 2 >, decoder: < 2 => relu 4 => 8 > }`: networks chained in
    /// order, the output of each feeding the next.
    Parts(Vec<Part>),
}

/// `encoder: < 8 => relu 4 => 2 >` inside a chained declaration.
pub struct Part {
    /// The part's field name.
    pub name: Ident,
    /// The part's layers.
    pub architecture: Architecture,
}

/// `< inputs => layer => ... >`.
pub struct Architecture {
    /// The opening `<`.
    pub open: Token![<],
    /// The input width, parsed like a layer so that a stray activation on it can be reported.
    pub inputs: Layer,
    /// The layers in order, each with the `=>` that introduced it.
    pub layers: Vec<(Token![=>], Layer)>,
    /// The closing `>`.
    pub close: Token![>],
}

/// One layer as written: every part optional here, checked in `valid.rs`.
pub struct Layer {
    /// `name:` before the layer.
    pub name: Option<Ident>,
    /// The activation, with its parenthesised argument if any.
    pub activation: Option<ActivationSpec>,
    /// The width as written (an integer literal when the declaration is right).
    pub width: Option<Width>,
}

/// A layer width as written: one token, maybe after a `-` (which `valid.rs` rejects with a
/// message of its own). Invisible groups (a `$h:literal` or `$h:expr` passed through
/// `macro_rules!`) are already looked through.
pub struct Width {
    /// A leading minus sign, as in `-3`.
    pub minus: Option<Token![-]>,
    /// The width token itself, whatever it is.
    pub token: TokenTree,
}

/// The tokens a `-3` is made of, for errors spanned on both (`Error::new_spanned`).
impl quote::ToTokens for Width {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.minus.to_tokens(tokens);
        self.token.to_tokens(tokens);
    }
}

/// `token`, or what an invisible group (`Delimiter::None`, as `macro_rules!` wraps a
/// `$x:literal` or `$x:expr` in) holds when it holds exactly one token, looked through repeatedly.
pub fn unwrap_invisible(token: TokenTree) -> TokenTree {
    let mut token = token;
    loop {
        let TokenTree::Group(group) = &token else {
            return token;
        };
        if group.delimiter() != Delimiter::None {
            return token;
        }
        let mut inner = group.stream().into_iter();
        match (inner.next(), inner.next()) {
            (Some(only), None) => token = only,
            _ => return token,
        }
    }
}

/// What can be recovered from a declaration that failed to parse: enough to emit the bare struct,
/// so that one typo is one error rather than one at every use of the network.
pub struct Header {
    /// Attributes on the struct (the fallback keeps only docs and `cfg`s).
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name, or `None` for the expression form.
    pub name: Option<Ident>,
}

/// The header of `input` (`attrs vis struct Name`), read without looking at the rest; `None`
/// when even that does not parse.
pub fn recover_header(input: TokenStream) -> Option<Header> {
    let parser = |input: ParseStream| -> syn::Result<Header> {
        let attrs = input.call(Attribute::parse_outer)?;
        if input.peek(Token![<]) {
            input.parse::<TokenStream>()?;
            return Ok(Header {
                attrs,
                vis: Visibility::Inherited,
                name: None,
            });
        }
        let vis = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name = input.parse()?;
        input.parse::<TokenStream>()?;
        Ok(Header {
            attrs,
            vis,
            name: Some(name),
        })
    };
    parser.parse2(input).ok()
}

/// `relu`, `leaky_relu(0.2)`, ...
pub struct ActivationSpec {
    /// The activation's name.
    pub name: Ident,
    /// The parentheses and what they hold, if written.
    pub args: Option<(token::Paren, TokenStream)>,
}

impl Parse for Declaration {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        if input.peek(Token![<]) {
            let architecture = input.parse()?;
            expect_end(input)?;
            return Ok(Declaration {
                attrs,
                vis: Visibility::Inherited,
                name: None,
                body: Body::Layers(architecture),
            });
        }
        let vis: Visibility = input.parse()?;
        if !input.peek(Token![struct]) {
            return Err(input.error(
                "expected `struct` or `<`: write `network! { pub struct Net < 4 => relu 5 => 1 > }` \
                 or `network!(< 4 => relu 5 => 1 >)`",
            ));
        }
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the network's name after `struct`, as in `struct Net < 4 => 1 >`",
            )
        })?;
        let body = if input.peek(token::Brace) {
            Body::Parts(parse_parts(input)?)
        } else if input.peek(Token![<]) {
            Body::Layers(input.parse()?)
        } else {
            return Err(input.error(format!(
                "expected `<` after `{name}` to open the layer list, as in `struct {name} < 4 => relu 5 => 1 >`"
            )));
        };
        expect_end(input)?;
        Ok(Declaration {
            attrs,
            vis,
            name: Some(name),
            body,
        })
    }
}

/// `{ name: < ... >, name: < ... > }`, a trailing comma allowed.
fn parse_parts(input: ParseStream) -> syn::Result<Vec<Part>> {
    let content;
    let braces = syn::braced!(content in input);
    let mut parts = Vec::new();
    while !content.is_empty() {
        let name: Ident = content.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a part name, as in `encoder: < 8 => relu 4 => 2 >`",
            )
        })?;
        content.parse::<Token![:]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `:` after the part name `{name}`"),
            )
        })?;
        if !content.peek(Token![<]) {
            return Err(content.error(format!(
                "expected `<` to open the layers of part `{name}`, as in `{name}: < 8 => relu 4 => 2 >`"
            )));
        }
        let architecture = content.parse()?;
        parts.push(Part { name, architecture });
        if !content.is_empty() {
            content.parse::<Token![,]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `,` between the parts of a chained network",
                )
            })?;
        }
    }
    if parts.is_empty() {
        return Err(syn::Error::new(
            braces.span.join(),
            "a chained network needs at least one part, as in `{ encoder: < 8 => 2 >, decoder: < 2 => 8 > }`",
        ));
    }
    Ok(parts)
}

/// Nothing may follow the declaration.
fn expect_end(input: ParseStream) -> syn::Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error("unexpected tokens after the end of the declaration"))
    }
}

impl Parse for Architecture {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let open = input.parse()?;
        let inputs = parse_layer(input)?;
        let mut layers = Vec::new();
        let mut last_span = last_span_of(&inputs).unwrap_or_else(|| input.span());
        loop {
            if input.peek(Token![=>]) {
                let arrow: Token![=>] = input.parse()?;
                let layer = parse_layer(input)?;
                last_span = last_span_of(&layer).unwrap_or_else(|| arrow.span());
                layers.push((arrow, layer));
            } else if input.peek(Token![>]) {
                let close = input.parse()?;
                return Ok(Architecture {
                    open,
                    inputs,
                    layers,
                    close,
                });
            } else if input.is_empty() {
                return Err(syn::Error::new(
                    last_span,
                    "the layer list is not closed: expected `>` after the last layer, as in `< 4 => relu 5 => 1 >`",
                ));
            } else {
                return Err(input.error(
                    "expected `=>` before the next layer or `>` to close the layer list; \
                     a layer is `[name:] [activation] width`, as in `relu 5`",
                ));
            }
        }
    }
}

/// Parses `[name:] [activation[(args)]] [width]` up to the next `=>` or `>`.
fn parse_layer(input: ParseStream) -> syn::Result<Layer> {
    let mut name = None;
    if input.peek(Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]) {
        name = Some(input.parse()?);
        input.parse::<Token![:]>()?;
    }
    let mut activation = None;
    if input.peek(Ident) {
        let name: Ident = input.parse()?;
        let mut args = None;
        if input.peek(token::Paren) {
            let content;
            let paren = syn::parenthesized!(content in input);
            args = Some((paren, content.parse()?));
        }
        activation = Some(ActivationSpec { name, args });
    }
    let mut width = None;
    if !at_separator(input) {
        // Through invisible groups: `Option<Token![-]>` peeks into them, the token is unwrapped.
        let minus: Option<Token![-]> = input.parse()?;
        if minus.is_some() && at_separator(input) {
            return Err(input.error(
                "expected a layer width after `-`; a width is a positive integer, as in `5`",
            ));
        }
        let token = unwrap_invisible(input.parse::<TokenTree>()?);
        width = Some(Width { minus, token });
    }
    if !at_separator(input) {
        return Err(input.error(
            "expected `=>` or `>` after the layer width; a layer is `[name:] [activation] width`, as in `relu 5`",
        ));
    }
    Ok(Layer {
        name,
        activation,
        width,
    })
}

/// True at `=>`, at `>` or at the end of input: where a layer ends.
fn at_separator(input: ParseStream) -> bool {
    input.is_empty() || input.peek(Token![=>]) || input.peek(Token![>])
}

/// The span of the last token of a layer, to point at when the list is not closed.
fn last_span_of(layer: &Layer) -> Option<Span> {
    if let Some(width) = &layer.width {
        return Some(width.token.span());
    }
    if let Some(activation) = &layer.activation {
        return Some(match &activation.args {
            Some((paren, _)) => paren.span.join(),
            None => activation.name.span(),
        });
    }
    layer.name.as_ref().map(Ident::span)
}
