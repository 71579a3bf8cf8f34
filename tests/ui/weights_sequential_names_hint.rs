// A file of `nn.Sequential` names (0.weight, ...) bound with state-dict names: the hint says so.
use backprop::network;

network! {
    #[weights("../../../../tests/fixtures/weights/sequential.safetensors")]
    pub struct Net < 3 => tanh 8 => relu 4 => 2 >
}

fn main() {}
