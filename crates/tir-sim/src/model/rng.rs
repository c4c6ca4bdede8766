//! A small seeded PRNG: xoshiro256** seeded through SplitMix64 (both by
//! Blackman and Vigna). Only integer arithmetic decides the sequence, so a
//! seed gives the same numbers on every platform; floats take the top 53
//! bits. Normals use Box-Muller with std's `ln`/`cos`, whose last bit may
//! differ between libms: callers round masses and amounts, which hides that.

/// One step of SplitMix64: advances `state` and returns a well-mixed value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes two words into one seed, so `(seed, index)` streams are unrelated.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut state = a ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    splitmix64(&mut state)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut state = seed;
        // SplitMix64 is a bijection of its counter, so four outputs are never all zero.
        Rng { s: [splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state)] }
    }

    /// An independent stream for `(seed, key)`.
    pub fn keyed(seed: u64, key: u64) -> Rng {
        Rng::new(mix(seed, key))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(n);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
        }
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "range({lo}, {hi})");
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with probability proportional to `weights` (a linear
    /// scan; use `Cumulative` for long or repeated tables).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.next_f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        // Rounding can leave x just past the end: take the last non-zero weight.
        weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
    }

    /// Standard normal (Box-Muller; the second value is dropped so that the
    /// state depends only on how many draws were made).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given median and log-space standard deviation.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A weighted table sampled by binary search over cumulative weights.
#[derive(Debug, Clone)]
pub struct Cumulative {
    totals: Vec<f64>,
}

impl Cumulative {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Cumulative {
        let mut sum = 0.0;
        let totals = weights
            .into_iter()
            .map(|w| {
                sum += w.max(0.0);
                sum
            })
            .collect::<Vec<_>>();
        assert!(sum > 0.0, "a weighted table needs a positive weight");
        Cumulative { totals }
    }

    /// Zipf over `n` ranks: rank r has weight 1 / (r + 1)^s.
    pub fn zipf(n: usize, s: f64) -> Cumulative {
        Cumulative::new((0..n).map(|r| 1.0 / ((r + 1) as f64).powf(s)))
    }

    pub fn len(&self) -> usize {
        self.totals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.totals[self.totals.len() - 1];
        let x = rng.next_f64() * total;
        self.totals.partition_point(|t| *t <= x).min(self.totals.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_output() {
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn xoshiro256_star_star_matches_the_reference_vector() {
        let mut rng = Rng { s: [1, 2, 3, 4] };
        let first: Vec<u64> = (0..6).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [11520, 0, 1509978240, 1215971899390074240, 1216172134540287360, 607988272756665600]);
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let a: Vec<u64> = {
            let mut rng = Rng::new(42);
            (0..100).map(|_| rng.next_u64()).collect()
        };
        let mut rng = Rng::new(42);
        assert!(a.iter().all(|x| *x == rng.next_u64()));
        let mut other = Rng::new(43);
        assert_ne!(a[0], other.next_u64());
        assert_ne!(Rng::keyed(42, 1), Rng::keyed(42, 2));
    }

    #[test]
    fn the_sequence_for_seed_seven_is_pinned() {
        // Guards reproducibility across versions: changing this breaks every --seed.
        let mut rng = Rng::new(7);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [12923355070828475994, 5142052590334782674, 15488392906492639638]);
    }

    #[test]
    fn floats_stay_in_the_unit_interval() {
        let mut rng = Rng::new(1);
        for _ in 0..100_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(2);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[rng.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..=10_500).contains(&c), "{counts:?}");
        }
        for _ in 0..1000 {
            assert!((3..=5).contains(&rng.range(3, 5)));
        }
        assert_eq!(rng.range(4, 4), 4);
    }

    #[test]
    fn normals_have_mean_zero_and_unit_variance() {
        let mut rng = Rng::new(3);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        let within_one = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / n as f64;
        assert!((within_one - 0.6827).abs() < 0.01, "{within_one}");
    }

    #[test]
    fn lognormals_are_positive_around_their_median() {
        let mut rng = Rng::new(4);
        let mut xs: Vec<f64> = (0..50_001).map(|_| rng.lognormal(250.0, 0.8)).collect();
        assert!(xs.iter().all(|x| *x > 0.0));
        xs.sort_by(f64::total_cmp);
        let median = xs[xs.len() / 2];
        assert!((median / 250.0 - 1.0).abs() < 0.03, "median {median}");
    }

    #[test]
    fn weighted_choices_follow_their_weights() {
        let mut rng = Rng::new(5);
        let weights = [1.0, 0.0, 3.0];
        let table = Cumulative::new(weights);
        let mut linear = [0u32; 3];
        let mut binary = [0u32; 3];
        for _ in 0..40_000 {
            linear[rng.weighted(&weights)] += 1;
            binary[table.sample(&mut rng)] += 1;
        }
        for counts in [linear, binary] {
            assert_eq!(counts[1], 0);
            assert!((9_400..=10_600).contains(&counts[0]), "{counts:?}");
        }
    }

    #[test]
    fn zipf_ranks_are_ever_less_frequent() {
        let mut rng = Rng::new(6);
        let table = Cumulative::zipf(20, 1.1);
        let mut counts = [0u32; 20];
        for _ in 0..100_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert!(counts.windows(2).take(5).all(|w| w[0] > w[1]), "{counts:?}");
        assert!(counts[0] > 5 * counts[10], "{counts:?}");
        assert!(counts.iter().all(|c| *c > 0));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = Rng::new(8);
        let mut items: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
