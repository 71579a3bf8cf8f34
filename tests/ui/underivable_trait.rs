// Clone, Debug, PartialEq and Default are implemented by the macro (a user's derive of them is
// dropped); these cannot be derived for floating-point layers.
backprop::network! {
    #[derive(Clone, Default, Eq, std::hash::Hash, Copy)]
    struct Net < 2 => 1 >
}

fn main() {}
