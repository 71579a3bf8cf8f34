// A path that exists but cannot be read as a file (a directory): the reason is the OS's.
use backprop::network;

network! {
    #[weights("../../../../tests/fixtures/weights")]
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

fn main() {}
