// The encoder outputs 2 values, the decoder takes 3: the error names both widths.
backprop::network! {
    struct AutoEncoder {
        encoder: < 6 => tanh 4 => 2 >,
        decoder: < 3 => relu 4 => 6 >,
    }
}

fn main() {}
