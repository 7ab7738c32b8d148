//! `histogram_quantile` over classic (`le`-labelled) buckets, following
//! Prometheus's `bucketQuantile`: buckets sorted by bound, equal bounds
//! merged, counts forced monotonic (tiny float noise ignored), a `+Inf`
//! bucket required, linear interpolation inside the target bucket.

/// Relative tolerance below which differences between bucket counts are
/// treated as float noise.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// `buckets` are `(upper bound, cumulative count)`; reordered in place.
/// Returns the quantile and whether monotonicity had to be forced.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    coalesce(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    // Go's sort.Search over all but the +Inf bucket.
    let n = buckets.len() - 1;
    let (mut i, mut j) = (0usize, n);
    while i < j {
        let h = (i + j) / 2;
        if buckets[h].1 >= rank {
            j = h;
        } else {
            i = h + 1;
        }
    }
    let b = i;
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

fn coalesce(buckets: &mut Vec<(f64, f64)>) {
    let mut last = buckets[0];
    let mut i = 0;
    for k in 1..buckets.len() {
        let b = buckets[k];
        if b.0 == last.0 {
            last.1 += b.1;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    buckets.truncate(i + 1);
}

fn ensure_monotonic(buckets: &mut [(f64, f64)]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if vigil_model::almost::equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_bucket() {
        let mut b = vec![(f64::INFINITY, 10.0), (0.1, 2.0), (0.5, 6.0), (1.0, 10.0)];
        let (v, forced) = bucket_quantile(0.5, &mut b);
        assert!(!forced);
        // rank 5 lies in (0.1, 0.5]: 0.1 + 0.4 * (3/4)
        assert!((v - 0.4).abs() < 1e-12);
    }

    #[test]
    fn needs_inf_bucket_and_observations() {
        let mut b = vec![(0.1, 2.0), (0.5, 6.0)];
        assert!(bucket_quantile(0.5, &mut b).0.is_nan());
        let mut b = vec![(0.1, 0.0), (f64::INFINITY, 0.0)];
        assert!(bucket_quantile(0.5, &mut b).0.is_nan());
    }

    #[test]
    fn top_bucket_returns_highest_finite_bound() {
        let mut b = vec![(1.0, 1.0), (2.0, 2.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &mut b).0, 2.0);
    }

    #[test]
    fn forces_monotonicity() {
        let mut b = vec![(1.0, 5.0), (2.0, 4.0), (f64::INFINITY, 10.0)];
        let (_, forced) = bucket_quantile(0.5, &mut b);
        assert!(forced);
        assert_eq!(b[1].1, 5.0);
    }

    #[test]
    fn out_of_range_quantiles() {
        let mut b = vec![(1.0, 5.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(-0.1, &mut b).0, f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &mut b).0, f64::INFINITY);
        assert!(bucket_quantile(f64::NAN, &mut b).0.is_nan());
    }
}
