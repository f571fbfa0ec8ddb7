//! Criterion benchmarks of taps; see `benches/`.
