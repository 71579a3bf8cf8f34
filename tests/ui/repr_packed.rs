backprop::network! {
    #[repr(C, packed)]
    struct Net < 2 => 1 >
}

fn main() {}
