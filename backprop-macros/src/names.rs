//! Names the expansion makes up: the workspace and part types, and the generic parameters, chosen
//! so that they never collide with a name the user wrote.
//!
//! Every identifier that becomes text or part of a new identifier goes through
//! [`IdentExt::unraw`], so `r#type` names the layer `type` (as PyTorch does) and a part `r#type`
//! makes the type `NetType`.

use proc_macro2::Span;
use quote::format_ident;
use syn::ext::IdentExt;
use syn::Ident;

/// `Net` → `NetWorkspace`.
pub fn workspace(name: &Ident) -> Ident {
    format_ident!("{}Workspace", name.unraw())
}

/// The type of a chained network's part: `AutoEncoder` + `encoder` → `AutoEncoderEncoder`.
pub fn part_type(name: &Ident, part: &Ident) -> Ident {
    let mut pascal = String::new();
    for word in part
        .unraw()
        .to_string()
        .split('_')
        .filter(|word| !word.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            pascal.extend(first.to_uppercase());
            pascal.push_str(chars.as_str());
        }
    }
    format_ident!("{}{}", name.unraw(), pascal)
}

/// The generic parameters of the generated items.
pub struct Generics {
    /// The scalar (`T`).
    pub scalar: Ident,
    /// The batch size (`B`).
    pub batch: Ident,
    /// The scalar `cast` converts to (`U`).
    pub cast: Ident,
    /// The loss (`L`).
    pub loss: Ident,
    /// The target (`Y`).
    pub target: Ident,
    /// A sample given to `forward` (`X`).
    pub sample: Ident,
}

impl Generics {
    /// `T`, `B`, `U`, `L`, `Y`, `X`, each unless a type the expansion names is called that: then
    /// the first of `T1`, `T2`, ... that no such type is called.
    pub fn avoiding(taken: &[Ident]) -> Generics {
        let taken: Vec<String> = taken
            .iter()
            .map(|ident| ident.unraw().to_string())
            .collect();
        let pick = |base: &str| {
            let mut candidate = base.to_owned();
            let mut suffix = 0;
            while taken.contains(&candidate) {
                suffix += 1;
                candidate = format!("{base}{suffix}");
            }
            Ident::new(&candidate, Span::call_site())
        };
        Generics {
            scalar: pick("T"),
            batch: pick("B"),
            cast: pick("U"),
            loss: pick("L"),
            target: pick("Y"),
            sample: pick("X"),
        }
    }
}
