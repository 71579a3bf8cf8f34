// A width passed through `macro_rules!` as `$h:expr` is looked through when it is one token;
// an expression is not a width.
macro_rules! net {
    ($h:expr) => {
        backprop::network! { struct Net < 4 => $h => 1 > }
    };
}
net!(2 + 2);

fn main() {}
