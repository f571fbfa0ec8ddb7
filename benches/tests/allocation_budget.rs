//! The allocation budgets of establishment, counted exactly (allocation counts are
//! deterministic, unlike timings, so they belong in tests): at most 32 heap
//! allocations per whole dual-stack establishment and at most 16 for the
//! racing layer alone.

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use taps_benches::{DualStackEstablishment, race_only};
use taps_core::race::History;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn per_iteration(mut f: impl FnMut()) -> f64 {
    for _ in 0..16 {
        f();
    }
    let region = Region::new(GLOBAL);
    for _ in 0..100 {
        f();
    }
    region.change().allocations as f64 / 100.0
}

// One test function: the counter is process-wide, so parallel tests would
// count each other's allocations.
#[test]
fn allocation_budgets() {
    let mut est = DualStackEstablishment::new();
    assert_eq!(est.run(), 2, "two attempts per establishment");
    let establishment = per_iteration(|| {
        est.run();
    });
    let history = History::default();
    assert!(race_only(&history).is_some_and(|w| w.is_ipv6()));
    let race = per_iteration(|| {
        race_only(&history);
    });
    println!("establishment: {establishment} allocations; race only: {race}");
    assert!(
        establishment <= 32.0,
        "{establishment} allocations per establishment (budget 32)"
    );
    assert!(race <= 16.0, "{race} allocations per race (budget 16)");
}
