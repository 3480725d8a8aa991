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
    let s = RandomTriplets::new(&l, 4, 2).unwrap();
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
    let mut s = BalancedBatches::new(&l, 4, 96, 2).unwrap();
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
    let mut s2 = BalancedBatches::new(&l, 4, 96, 2).unwrap();
    let mut r2 = ChaCha8Rng::seed_from_u64(1);
    let mut s3 = BalancedBatches::new(&l, 4, 96, 2).unwrap();
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
    let mut s = BalancedBatches::new(&l, 4, 96, 2).unwrap();
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
    assert!(RandomTriplets::new(&[0, 0, 0], 1, 2).is_err());
    assert!(
        RandomTriplets::new(&[0, 1, 2], 3, 2).is_err(),
        "no class with two images"
    );
    assert!(BalancedBatches::new(&[0, 0, 1], 2, 96, 2).is_err());
    assert!(BalancedBatches::new(&[0, 0, 1, 1], 2, 2, 2).is_err());
    assert!(RandomTriplets::new(&[0, 0, 0], 1, 1).is_err(), "one class");
}

#[test]
fn one_image_classes_pair_their_image_with_itself_when_views_are_allowed() {
    // Classes 0 and 2 have one image each, class 1 three; with min_images 1 (augmented views)
    // they give anchors whose positive is the same image, drawn in another view.
    let l = [0u32, 1, 1, 1, 2];
    let mut g = ChaCha8Rng::seed_from_u64(4);
    let t = RandomTriplets::new(&l, 3, 1).unwrap().sample(&mut g, 300);
    for c in [0u32, 2] {
        let own: Vec<&[usize; 3]> = t.iter().filter(|x| l[x[0]] == c).collect();
        assert!(own.len() > 50, "class {c} anchors {} of 300", own.len());
        assert!(own.iter().all(|x| x[1] == x[0] && l[x[2]] != c));
    }
    assert!(t
        .iter()
        .filter(|x| l[x[0]] == 1)
        .all(|x| x[1] != x[0] && l[x[1]] == 1 && l[x[2]] != 1));
    // Mining batches: every class, the one-image ones as copies filling their slots.
    let mut s = BalancedBatches::new(&l, 3, 12, 1).unwrap();
    let b = s.sample(&mut g);
    assert_eq!(b.len(), 12);
    for c in 0..3u32 {
        assert_eq!(
            b.iter().filter(|&&i| l[i] == c).count(),
            4,
            "class {c}: {b:?}"
        );
    }
    assert_eq!(b.iter().filter(|&&i| i == 0).count(), 4);
    // Without views (min_images 2) those classes are left out, as before.
    let mut s = BalancedBatches::new(&[0u32, 0, 1, 1, 2], 3, 12, 2).unwrap();
    assert!(s.sample(&mut g).iter().all(|&i| i < 4));
}
