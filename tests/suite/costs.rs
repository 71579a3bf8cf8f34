//! The cost constants of generated networks against `core::mem::size_of` of the values they
//! describe and the heap bytes a counting allocator sees them take, for eleven architectures
//! (boxed layers, a chain, both scalars, batches 1 and 32); multiply-adds against hand counts.

use core::mem::size_of;

use backprop::buffers::LayerBuffers;
use backprop::prelude::*;
use backprop::Linear;

use crate::common::counting::peak_bytes;

network! { struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct W3 < 784 => relu 128 => sigmoid 10 > }
network! { struct Tiny < 1 => 1 > }
network! { struct Controller < 3 => tanh 8 => 1 > }
network! { struct Mid < 64 => relu 32 => 10 > }
network! { struct Wide < 200 => relu 100 => 3 > }
network! { struct AtLimit < 128 => 128 > }
network! { struct OverLimit < 129 => relu 128 => 2 > }
network! { struct Deep < 2 => relu 300 => relu 300 => 1 > }
network! { struct Classes < 10 => softmax 3 > }
network! {
    struct Chain {
        encoder: < 8 => relu 4 => 2 >,
        decoder: < 2 => relu 4 => 8 >,
    }
}

/// Heap bytes live after `make` returns its value (the value kept alive until measured).
fn heap_of<R>(make: impl FnOnce() -> R) -> usize {
    let (value, peak) = peak_bytes(make);
    drop(value);
    peak
}

/// Checks every byte constant of `$net<$t>` against size_of and the counting allocator, given the
/// types of its heap parts (large layers, workspace buffers at batch 1 and 32) written by hand.
macro_rules! check_bytes {
    ($net:ident, $ws:ident, $t:ty, params = $params:expr,
     heap = [$($heap:ty),*], ws1 = [$($b1:ty),*], ws32 = [$($b32:ty),*]) => {{
        type N = $net<$t>;
        let heap = 0 $(+ size_of::<$heap>())*;
        assert_eq!(N::PARAMETER_BYTES, $params * size_of::<$t>(), "{} parameter bytes", stringify!($net));
        assert_eq!(N::HEAP_BYTES, heap, "{} heap bytes", stringify!($net));
        assert_eq!(N::NETWORK_BYTES, size_of::<N>() + heap);
        assert_eq!(N::GRADIENT_BYTES, size_of::<N>() + heap);
        assert_eq!(heap_of(N::zeros), heap, "{}: heap bytes a network takes", stringify!($net));
        let ws1 = size_of::<$ws<$t, 1>>() $(+ size_of::<$b1>())*;
        let ws32 = size_of::<$ws<$t, 32>>() $(+ size_of::<$b32>())*;
        assert_eq!(N::workspace_bytes::<1>(), ws1);
        assert_eq!(N::workspace_bytes::<32>(), ws32);
        let net = N::zeros();
        assert_eq!(size_of::<$ws<$t, 32>>() + heap_of(|| net.workspace::<32>()), ws32);
        assert_eq!(size_of::<$ws<$t, 1>>() + heap_of(|| net.workspace::<1>()), ws1);
        // Optimizer state: the struct and, once prepared, its boxed network-shaped buffers.
        assert_eq!(N::SGD_BYTES, size_of::<Sgd<N>>());
        assert_eq!(N::SGD_MOMENTUM_BYTES, size_of::<Sgd<N>>() + size_of::<N>() + heap);
        let sgd_heap = heap_of(|| {
            let mut sgd = Sgd::<N>::new(0.1).momentum(0.9);
            sgd.prepare();
            sgd
        });
        assert_eq!(N::SGD_MOMENTUM_BYTES, size_of::<Sgd<N>>() + sgd_heap);
        let adam_heap = heap_of(|| {
            let mut adam = Adam::<N>::new(1e-3);
            adam.prepare();
            adam
        });
        assert_eq!(N::ADAM_BYTES, size_of::<Adam<N>>() + adam_heap, "{} Adam", stringify!($net));
        let adamw_heap = heap_of(|| {
            let mut adamw = AdamW::<N>::new(1e-3);
            adamw.prepare();
            adamw
        });
        assert_eq!(N::ADAMW_BYTES, size_of::<AdamW<N>>() + adamw_heap);
        assert_eq!(
            N::training_ram::<32>(N::ADAM_BYTES),
            2 * (size_of::<N>() + heap) + ws32 + N::ADAM_BYTES
        );
        assert_eq!(N::inference_ram::<1>(), size_of::<N>() + heap + ws1);
    }};
}

#[test]
fn byte_constants_equal_the_sizes_of_the_values() {
    check_bytes!(Seed, SeedWorkspace, f32, params = 4 * 5 + 5 + 5 * 2 + 2 + 2 + 1, heap = [],
        ws1 = [LayerBuffers<f32, 5, 1>, LayerBuffers<f32, 2, 1>, LayerBuffers<f32, 1, 1>],
        ws32 = [LayerBuffers<f32, 5, 32>, LayerBuffers<f32, 2, 32>, LayerBuffers<f32, 1, 32>]);
    check_bytes!(Seed, SeedWorkspace, f64, params = 4 * 5 + 5 + 5 * 2 + 2 + 2 + 1, heap = [],
        ws1 = [LayerBuffers<f64, 5, 1>, LayerBuffers<f64, 2, 1>, LayerBuffers<f64, 1, 1>],
        ws32 = [LayerBuffers<f64, 5, 32>, LayerBuffers<f64, 2, 32>, LayerBuffers<f64, 1, 32>]);
    check_bytes!(W3, W3Workspace, f32, params = 784 * 128 + 128 + 128 * 10 + 10,
        heap = [Linear<f32, 784, 128>],
        ws1 = [LayerBuffers<f32, 128, 1>, LayerBuffers<f32, 10, 1>],
        ws32 = [LayerBuffers<f32, 128, 32>, LayerBuffers<f32, 10, 32>]);
    check_bytes!(Tiny, TinyWorkspace, f32, params = 2, heap = [],
        ws1 = [LayerBuffers<f32, 1, 1>], ws32 = [LayerBuffers<f32, 1, 32>]);
    check_bytes!(Controller, ControllerWorkspace, f64, params = 3 * 8 + 8 + 8 + 1, heap = [],
        ws1 = [LayerBuffers<f64, 8, 1>, LayerBuffers<f64, 1, 1>],
        ws32 = [LayerBuffers<f64, 8, 32>, LayerBuffers<f64, 1, 32>]);
    check_bytes!(Mid, MidWorkspace, f32, params = 64 * 32 + 32 + 32 * 10 + 10, heap = [],
        ws1 = [LayerBuffers<f32, 32, 1>, LayerBuffers<f32, 10, 1>],
        ws32 = [LayerBuffers<f32, 32, 32>, LayerBuffers<f32, 10, 32>]);
    check_bytes!(Wide, WideWorkspace, f64, params = 200 * 100 + 100 + 100 * 3 + 3,
        heap = [Linear<f64, 200, 100>],
        ws1 = [LayerBuffers<f64, 100, 1>, LayerBuffers<f64, 3, 1>],
        ws32 = [LayerBuffers<f64, 100, 32>, LayerBuffers<f64, 3, 32>]);
    check_bytes!(AtLimit, AtLimitWorkspace, f32, params = 128 * 128 + 128, heap = [],
        ws1 = [LayerBuffers<f32, 128, 1>], ws32 = [LayerBuffers<f32, 128, 32>]);
    check_bytes!(OverLimit, OverLimitWorkspace, f32, params = 129 * 128 + 128 + 128 * 2 + 2,
        heap = [Linear<f32, 129, 128>],
        ws1 = [LayerBuffers<f32, 128, 1>, LayerBuffers<f32, 2, 1>],
        ws32 = [LayerBuffers<f32, 128, 32>, LayerBuffers<f32, 2, 32>]);
    check_bytes!(Deep, DeepWorkspace, f32, params = 2 * 300 + 300 + 300 * 300 + 300 + 300 + 1,
        heap = [Linear<f32, 300, 300>],
        ws1 = [LayerBuffers<f32, 300, 1>, LayerBuffers<f32, 300, 1>, LayerBuffers<f32, 1, 1>],
        ws32 = [LayerBuffers<f32, 300, 32>, LayerBuffers<f32, 300, 32>, LayerBuffers<f32, 1, 32>]);
    check_bytes!(Classes, ClassesWorkspace, f32, params = 33, heap = [],
        ws1 = [LayerBuffers<f32, 3, 1>], ws32 = [LayerBuffers<f32, 3, 32>]);
    check_bytes!(Chain, ChainWorkspace, f32, params = (8 * 4 + 4 + 4 * 2 + 2) + (2 * 4 + 4 + 4 * 8 + 8),
        heap = [],
        ws1 = [LayerBuffers<f32, 4, 1>, LayerBuffers<f32, 2, 1>, LayerBuffers<f32, 4, 1>, LayerBuffers<f32, 8, 1>],
        ws32 = [LayerBuffers<f32, 4, 32>, LayerBuffers<f32, 2, 32>, LayerBuffers<f32, 4, 32>, LayerBuffers<f32, 8, 32>]);
}

#[test]
fn multiply_adds_equal_a_hand_count() {
    // Seed: 4·5 + 5·2 + 2·1 = 32 per forward pass. A training step adds the weight gradients
    // (32) and the propagation into fc2 and fc1's outputs (5·2 + 2·1 = 12): 76.
    assert_eq!(Seed::<f32>::FORWARD_MACS, 32);
    assert_eq!(Seed::<f32>::TRAINING_MACS, 76);
    assert_eq!(Seed::<f32>::forward_macs(32), 32 * 32);
    assert_eq!(Seed::<f64>::training_macs(8), 76 * 8);
    // W3: 784·128 + 128·10 = 100 352 + 1 280 = 101 632; training 2 · 101 632 + 1 280 more.
    assert_eq!(W3::<f32>::FORWARD_MACS, 101_632);
    assert_eq!(W3::<f32>::TRAINING_MACS, 101_632 + 101_632 + 1_280);
    assert_eq!(W3::<f32>::training_macs(32), 32 * 204_544);
}

network! {
    /// Within its budgets: inference at batch 1 is 2 · (15 + 6) · 4 bytes of values and pointers,
    /// far below 16 KiB; a training step at batch 4 with Adam is 4 · 76 = 304 multiply-adds.
    #[budget(ram = 16384, macs = 32)]
    struct Budgeted < 4 => relu 5 => relu 2 => sigmoid 1 >
}

network! {
    #[budget(ram = 65536, macs = 304, batch = 4, train = adam, scalar = f64)]
    struct BudgetedTraining < 4 => relu 5 => relu 2 => sigmoid 1 >
}

#[test]
fn budgets_that_hold_compile() {
    // Exactly at the multiply-add limits above: a budget is "at most".
    assert_eq!(Budgeted::<f32>::forward_macs(1), 32);
    assert_eq!(BudgetedTraining::<f64>::training_macs(4), 304);
    assert!(
        BudgetedTraining::<f64>::training_ram::<4>(BudgetedTraining::<f64>::ADAM_BYTES) <= 65536
    );
}

/// On x86-64 every weight starts on a cache line wherever the network lives: on the stack behind
/// a byte, boxed, in a chain, as a gradient (issue 20: a vector load
/// straddling two lines made W2's step a fifth slower, depending on where the stack landed).
#[cfg(target_arch = "x86_64")]
#[test]
fn every_weight_starts_on_a_cache_line() {
    /// A network behind one byte, so its natural place is off any line.
    #[repr(C)]
    struct Shifted<N> {
        _byte: u8,
        net: N,
    }
    fn weights_aligned<N: Network>(net: &N, what: &str) {
        for (index, param) in net.params().enumerate() {
            if index % 2 == 0 {
                let at = param.values.as_ptr() as usize;
                assert_eq!(at % 64, 0, "{what}: {} at {at:#x}", param.name);
            }
        }
    }
    let seed = Shifted {
        _byte: 1,
        net: Seed::<f32>::init(1),
    };
    weights_aligned(&seed.net, "Seed on the stack");
    let controller = Shifted {
        _byte: 1,
        net: Controller::<f64>::init(2),
    };
    weights_aligned(&controller.net, "Controller (f64)");
    let mid = Box::new(Shifted {
        _byte: 1,
        net: Mid::<f32>::init(3),
    });
    weights_aligned(&mid.net, "Mid, boxed");
    weights_aligned(&W3::<f32>::init(4), "W3 (boxed layers)");
    weights_aligned(&Chain::<f32>::init(5), "Chain");
    let grad = Shifted {
        _byte: 1,
        net: Mid::<f32>::zeros(),
    };
    weights_aligned(&grad.net, "a gradient");
    assert_eq!(core::mem::align_of::<Linear<f32, 3, 5>>(), 64);
}
