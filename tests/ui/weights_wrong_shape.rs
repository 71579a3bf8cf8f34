// trybuild compiles this in target/tests/trybuild/backprop: the path is relative to that crate.
use backprop::network;

network! {
    #[weights("../../../../tests/fixtures/weights/wrong_shape.safetensors")]
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

fn main() {}
