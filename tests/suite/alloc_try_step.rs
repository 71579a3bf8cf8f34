//! The checked step allocates nothing once `prepare` has made the state, whether it applies the
//! update or refuses it, for the seed network (W1) and `784 => relu 128 => sigmoid 10` (W3).

use backprop::prelude::*;

use crate::common::counting::allocations;

network! { struct W1 < 4 => relu 5 => relu 2 => sigmoid 1 > }
network! { struct W3 < 784 => relu 128 => sigmoid 10 > }

/// Three good checked steps and one refused, after `prepare`: no allocation.
fn assert_checked_steps_allocate_nothing<N: Network + Clone>(
    net: &mut N,
    grad: &N,
    optimizer: &mut dyn Optimizer<N>,
) {
    let mut bad = grad.clone();
    if let Some(param) = bad.params_mut().last() {
        param.values[0] = backprop::scalar::constant(f64::NAN);
    }
    optimizer.prepare();
    let mut results = [Ok(()), Ok(()), Ok(()), Ok(())];
    let count = allocations(|| {
        for result in results.iter_mut().take(3) {
            *result = optimizer.try_step(net, grad);
        }
        results[3] = optimizer.try_step(net, &bad);
    });
    assert_eq!(count, 0);
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert!(results[3].is_err(), "the NaN gradient is refused");
}

#[test]
fn checked_steps_allocate_nothing_for_w1() {
    let mut net = W1::<f32>::init(0);
    let grad = W1::<f32>::init(1);
    assert_checked_steps_allocate_nothing(
        &mut net,
        &grad,
        &mut Sgd::new(0.1).momentum(0.9).nesterov(true),
    );
    assert_checked_steps_allocate_nothing(&mut net, &grad, &mut Sgd::new(0.1));
    assert_checked_steps_allocate_nothing(&mut net, &grad, &mut Adam::new(1e-3).amsgrad(true));
    assert_checked_steps_allocate_nothing(&mut net, &grad, &mut AdamW::new(1e-3));
}

#[test]
fn checked_steps_allocate_nothing_for_w3() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut net = W3::<f32>::init(0);
            let grad = W3::<f32>::init(1);
            assert_checked_steps_allocate_nothing(
                &mut net,
                &grad,
                &mut Sgd::new(0.01).weight_decay(1e-4),
            );
            assert_checked_steps_allocate_nothing(&mut net, &grad, &mut Adam::new(1e-3));
        })
        .unwrap()
        .join()
        .unwrap();
}
