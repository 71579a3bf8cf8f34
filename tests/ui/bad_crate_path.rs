backprop::network! {
    #[backprop(crate = 5)]
    struct Net < 2 => 1 >
}

fn main() {}
