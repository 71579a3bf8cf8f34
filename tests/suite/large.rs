//! A `784 => relu 128 => sigmoid 10` network (issue 5's W3) with its gradient, optimizer state and
//! a batch-32 workspace fits a default 2 MiB thread in a debug build: its large layer lives on the
//! heap, built there directly. And large layers, boxed or inline, give the gradient a backward
//! pass written by hand gives, entry for entry.

use backprop::gradcheck;
use backprop::nalgebra::{DMatrix, DVector};
use backprop::prelude::*;

network! { pub struct Mnist < 784 => relu 128 => sigmoid 10 > }

/// Runs `f` on a thread with the default test stack of 2 MiB.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_large_layer_is_boxed_and_the_small_one_inline() {
    let net = Mnist::<f32>::zeros();
    let boxed: backprop::Heap<backprop::Linear<f32, 784, 128>> = net.fc1.clone();
    assert_eq!(boxed.weight.len(), 784 * 128);
    let _: &backprop::Linear<f32, 128, 10> = &net.fc2;
    // The struct itself holds a pointer and the small layer, not the 400 KB matrix.
    assert!(std::mem::size_of::<Mnist<f32>>() < 8 * 1024);
}

#[test]
fn w3_trains_on_a_2_mib_thread_in_debug() {
    on_small_stack(|| {
        let mut net = Mnist::<f32>::init(0);
        let mut grad = Mnist::zeros();
        let mut ws = net.workspace::<32>();
        let x = SMatrix::<f32, 784, 32>::from_fn(|r, c| ((r * 7 + c * 13) % 17) as f32 / 17.0);
        let y = SMatrix::<f32, 10, 32>::from_fn(|r, c| if r == c % 10 { 1.0 } else { 0.0 });
        let first = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        // Adam keeps two network-shaped moments, made on its first step, on this thread.
        let mut adam = Adam::new(1e-3);
        let mut last = first;
        for _ in 0..5 {
            adam.step(&mut net, &grad);
            last = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        }
        assert!(last < first, "the loss falls: {first} → {last}");
        let copy = net.clone();
        assert_eq!(copy.cast::<f64>().cast::<f32>(), copy);
    });
}

network! {
    /// A boxed register-tiled layer (150 × 128 = 19 200 weights) and an inline register-tiled one
    /// (128 × 40 = 5 120 weights) before a small one.
    pub struct Wide < 150 => tanh 128 => tanh 40 => 3 >
}

/// The generated gradient of `Wide` at batch 5 against a backward pass written by hand over
/// nalgebra's dynamic matrices (every entry), and a sample of entries against finite differences.
#[test]
fn large_layers_give_the_gradient_a_hand_written_backward_gives() {
    on_small_stack(|| {
        let net = Wide::<f64>::init(3);
        let x =
            SMatrix::<f64, 150, 5>::from_fn(|r, c| ((r * 31 + c * 17) % 23) as f64 / 23.0 - 0.5);
        let y = SMatrix::<f64, 3, 5>::from_fn(|r, c| ((r + 2 * c) % 3) as f64 - 1.0);
        let mut grad = Wide::zeros();
        let loss = net.backward(&x, &y, &Mse, &mut net.workspace(), &mut grad);

        // By hand: z = W a + b per column, tanh, tanh, identity; MSE's mean over 3 × 5 entries.
        let dynamic =
            |m: &[f64], rows: usize, cols: usize| DMatrix::from_column_slice(rows, cols, m);
        let layer = |w: &[f64], b: &[f64], input: &DMatrix<f64>, rows: usize| {
            let mut z = dynamic(w, rows, input.nrows()) * input;
            for mut column in z.column_iter_mut() {
                column += DVector::from_column_slice(b);
            }
            z
        };
        let (w1, w2, w3) = (
            dynamic(net.fc1.weight.as_slice(), 128, 150),
            dynamic(net.fc2.weight.as_slice(), 40, 128),
            dynamic(net.fc3.weight.as_slice(), 3, 40),
        );
        let x = dynamic(x.as_slice(), 150, 5);
        let a1 = layer(w1.as_slice(), net.fc1.bias.as_slice(), &x, 128).map(f64::tanh);
        let a2 = layer(w2.as_slice(), net.fc2.bias.as_slice(), &a1, 40).map(f64::tanh);
        let out = layer(w3.as_slice(), net.fc3.bias.as_slice(), &a2, 3);
        let residual = &out - dynamic(y.as_slice(), 3, 5);
        assert!((loss - residual.norm_squared() / 15.0).abs() <= 1e-14);
        let d3 = residual * (2.0 / 15.0);
        let d2 = (w3.transpose() * &d3).component_mul(&a2.map(|a| 1.0 - a * a));
        let d1 = (w2.transpose() * &d2).component_mul(&a1.map(|a| 1.0 - a * a));
        let expected: [(&str, Vec<f64>); 6] = [
            ("fc1.weight", (&d1 * x.transpose()).as_slice().to_vec()),
            ("fc1.bias", d1.column_sum().as_slice().to_vec()),
            ("fc2.weight", (&d2 * a1.transpose()).as_slice().to_vec()),
            ("fc2.bias", d2.column_sum().as_slice().to_vec()),
            ("fc3.weight", (&d3 * a2.transpose()).as_slice().to_vec()),
            ("fc3.bias", d3.column_sum().as_slice().to_vec()),
        ];
        for (param, (name, want)) in grad.params().zip(&expected) {
            assert_eq!(param.name, *name);
            assert_eq!(param.values.len(), want.len());
            for (index, (&got, &want)) in param.values.iter().zip(want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{name}[{index}]: {got} against {want} by hand"
                );
            }
        }

        let x = SMatrix::<f64, 150, 5>::from_column_slice(x.as_slice());
        let report = gradcheck::check(
            &net,
            &x,
            &y,
            &Mse,
            &gradcheck::Options::default().sample(200, 7),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.checked(), 200);
    });
}
