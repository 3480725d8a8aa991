//! Sampler invariants: A and P share a class, N does not; class balance; determinism.

use glassnet::metric::sampler::{BalancedBatches, RandomTriplets};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A line's imbalance: 700 control, 200, 60, 40.
fn labels() -> Vec<u32> {
    [700usize, 200, 60, 40]
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
        .collect()
}

#[test]
fn random_triplets_are_valid_balanced_and_reproducible() {
    let l = labels();
    let s = RandomTriplets::new(&l, 4).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let t = s.sample(&mut rng, 20_000);
    let mut anchors = [0usize; 4];
    for &[a, p, n] in &t {
        assert_eq!(l[a], l[p], "anchor and positive share a class");
        assert_ne!(a, p, "anchor and positive are different images");
        assert_ne!(l[a], l[n], "the negative is another class");
        anchors[l[a] as usize] += 1;
    }
    // Anchor classes uniform (rare classes as often as common ones): 5000 each, +-4%.
    for (c, &n) in anchors.iter().enumerate() {
        assert!(
            (4800..=5200).contains(&n),
            "class {c} anchored {n} times of 20000"
        );
    }
    let again = s.sample(&mut ChaCha8Rng::seed_from_u64(3), 20_000);
    assert_eq!(t, again, "same seed, same triplets");
    assert_ne!(t, s.sample(&mut ChaCha8Rng::seed_from_u64(4), 20_000));
}

#[test]
fn balanced_batches_cover_classes_equally() {
    let l = labels();
    let mut s = BalancedBatches::new(&l, 4, 96).unwrap();
    assert_eq!((s.p, s.k), (4, 24));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut seen = vec![0usize; l.len()];
    for _ in 0..50 {
        let b = s.sample(&mut rng);
        assert_eq!(b.len(), 96);
        for c in 0..4u32 {
            assert_eq!(
                b.iter().filter(|&&i| l[i] == c).count(),
                24,
                "class {c} in every batch, k each"
            );
        }
        for i in b {
            seen[i] += 1;
        }
    }
    // Without replacement within a cycle: the 40 rarest images are each seen 30 times.
    assert!(seen[960..].iter().all(|&n| n == 30), "{:?}", &seen[960..]);
    let mut s2 = BalancedBatches::new(&l, 4, 96).unwrap();
    let mut r2 = ChaCha8Rng::seed_from_u64(1);
    let mut s3 = BalancedBatches::new(&l, 4, 96).unwrap();
    let mut r3 = ChaCha8Rng::seed_from_u64(1);
    assert_eq!(s2.sample(&mut r2), s3.sample(&mut r3));
}

#[test]
fn a_class_smaller_than_its_share_of_a_batch_fills_it_evenly() {
    // 3 images of a rare class against 24 slots per class: each image 8 times per batch,
    // never one image 24 times, and every batch still holds every class.
    let l: Vec<u32> = [500usize, 3, 50, 40]
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
        .collect();
    let mut s = BalancedBatches::new(&l, 4, 96).unwrap();
    assert_eq!((s.p, s.k), (4, 24));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let rare: Vec<usize> = (500..503).collect();
    for _ in 0..20 {
        let b = s.sample(&mut rng);
        for c in 0..4u32 {
            assert_eq!(b.iter().filter(|&&i| l[i] == c).count(), 24, "class {c}");
        }
        for i in &rare {
            let n = b.iter().filter(|&&j| j == *i).count();
            assert!((7..=9).contains(&n), "rare image {i} {n} times in a batch");
        }
    }
}

#[test]
fn samplers_refuse_data_without_triplets() {
    assert!(RandomTriplets::new(&[0, 0, 0], 1).is_err());
    assert!(
        RandomTriplets::new(&[0, 1, 2], 3).is_err(),
        "no class with two images"
    );
    assert!(BalancedBatches::new(&[0, 0, 1], 2, 96).is_err());
    assert!(BalancedBatches::new(&[0, 0, 1, 1], 2, 2).is_err());
}
