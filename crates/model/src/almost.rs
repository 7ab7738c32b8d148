//! Prometheus's `util/almost`: float equality within a relative tolerance,
//! with NaN equal to NaN.
//!
//! The engine uses it where Prometheus does (the monotonicity fix of
//! `histogram_quantile`); the other callers are test support: the PromQL
//! test scripts and `promtool test rules`' `fuzzy_compare`, both with
//! [`TEST_EPSILON`].

/// The relative tolerance of Prometheus's test harnesses (`defaultEpsilon`
/// of the PromQL tests, the epsilon of `fuzzy_compare`).
pub const TEST_EPSILON: f64 = 1e-6;

/// The smallest positive normal `f64` (Go's `minNormal`).
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;

/// `almost.Equal(a, b, epsilon)`: equal, both NaN, or closer than `epsilon`
/// relative to their magnitudes (absolutely, next to zero or subnormals).
pub fn equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tolerance_is_relative() {
        assert!(equal(1.0, 1.0 + 1e-9, TEST_EPSILON));
        assert!(!equal(1.0, 1.001, TEST_EPSILON));
        assert!(equal(f64::NAN, f64::NAN, TEST_EPSILON));
        assert!(!equal(f64::NAN, 1.0, TEST_EPSILON));
        assert!(!equal(0.0, 1e-9, TEST_EPSILON));
        assert!(equal(0.0, -0.0, TEST_EPSILON));
        assert!(equal(f64::INFINITY, f64::INFINITY, TEST_EPSILON));
        assert!(!equal(f64::INFINITY, f64::NEG_INFINITY, TEST_EPSILON));
        assert!(equal(1e300, 1e300 * (1.0 + 1e-9), TEST_EPSILON));
        // The sum of magnitudes overflows; Go clamps it to MaxFloat64.
        assert!(equal(f64::MAX, f64::MAX * (1.0 - 1e-9), TEST_EPSILON));
        assert!(!equal(f64::MAX, -f64::MAX, TEST_EPSILON));
    }

    proptest! {
        #[test]
        fn symmetric_and_reflexive(a in any::<f64>(), b in any::<f64>()) {
            prop_assert!(equal(a, a, TEST_EPSILON));
            prop_assert_eq!(equal(a, b, TEST_EPSILON), equal(b, a, TEST_EPSILON));
        }

        /// Normal values within a tenth of epsilon are equal; beyond four
        /// epsilons (relative to the sum of magnitudes) they are not.
        #[test]
        fn relative_bounds(a in 1e-300f64..1e300, neg in any::<bool>()) {
            let a = if neg { -a } else { a };
            prop_assert!(equal(a, a * (1.0 + TEST_EPSILON / 10.0), TEST_EPSILON));
            prop_assert!(!equal(a, a * (1.0 + 4.0 * TEST_EPSILON), TEST_EPSILON));
        }
    }
}
