//! A global allocator that counts the calling thread's allocations and the peak of its live heap
//! bytes, for the allocation tests.
//! A test binary installs it with
//! `#[global_allocator] static GLOBAL: common::counting::Counting = common::counting::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each thread's allocations (and reallocations).
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed on this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last `peak_bytes` began.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Counts one allocation on this thread.
fn count_one() {
    ALLOCATIONS.with(|count| count.set(count.get() + 1));
}

/// Adds `delta` bytes to this thread's live heap and raises the peak.
fn live(delta: isize) {
    let now = LIVE.with(|live| {
        let now = live.get() + delta;
        live.set(now);
        now
    });
    PEAK.with(|peak| peak.set(peak.get().max(now)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        live(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        live(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // Counted as the new block allocated before the old one is freed, as a copy would be.
        live(new_size as isize);
        live(-(layout.size() as isize));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// How many allocations `f` makes on this thread.
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// What `f` returns and the most heap bytes it held live at once on this thread, beyond what was
/// live when it started.
pub fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, (peak - start).max(0) as usize)
}
