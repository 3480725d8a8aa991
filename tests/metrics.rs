//! Metrics against hand-computed examples.

use glassnet::metric::knn::{centroids, knn, nearest_centroid, nearest_items};
use glassnet::metric::scores::{mean_std, Confusion, Scores};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn hand_computed_three_class_example() {
    // actual:    0 0 0 0 1 1 1 2 2 2
    // predicted: 0 0 1 0 1 2 1 2 2 0
    let a = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
    let p = [0, 0, 1, 0, 1, 2, 1, 2, 2, 0];
    let c = Confusion::from_labels(&a, &p, 3);
    assert_eq!(c.counts, vec![3, 1, 0, 0, 2, 1, 1, 0, 2]);
    assert!(close(c.accuracy(), 0.7));
    let s = c.class_scores();
    // class 0: tp 3, predicted 4, actual 4 -> p .75 r .75 f1 .75
    assert!(close(s[0].precision, 0.75) && close(s[0].recall, 0.75) && close(s[0].f1, 0.75));
    // class 1: tp 2, predicted 3, actual 3 -> 2/3 each
    assert!(close(s[1].precision, 2.0 / 3.0) && close(s[1].recall, 2.0 / 3.0));
    // class 2: tp 2, predicted 3, actual 3
    assert!(close(s[2].f1, 2.0 / 3.0));
    assert!(close(
        c.balanced_accuracy(),
        (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0
    ));
    assert!(close(c.macro_f1(), (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0));
}

#[test]
fn a_class_never_predicted_scores_zero_not_nan() {
    let c = Confusion::from_labels(&[0, 0, 1, 1], &[0, 0, 0, 0], 2);
    let s = c.class_scores();
    assert_eq!((s[1].precision, s[1].recall, s[1].f1), (0.0, 0.0, 0.0));
    assert!(close(s[0].precision, 0.5) && close(s[0].recall, 1.0));
    assert!(close(c.balanced_accuracy(), 0.5));
    assert!(close(c.macro_f1(), (2.0 / 3.0) / 2.0));
}

#[test]
fn a_class_absent_from_a_fold_is_not_averaged_as_zero() {
    // Three classes exist; class 2 has no member and is never predicted in this fold.
    let c = Confusion::from_labels(&[0, 1], &[0, 1], 3);
    assert!(close(c.balanced_accuracy(), 1.0));
    assert!(close(c.macro_f1(), 1.0));
    assert_eq!(Scores::of(&c).accuracy, 1.0);
}

#[test]
fn merged_folds_sum_counts() {
    let mut c = Confusion::from_labels(&[0, 1], &[0, 0], 2);
    c.merge(&Confusion::from_labels(&[1, 1], &[1, 0], 2));
    assert_eq!(c.counts, vec![1, 0, 2, 1]);
    let (m, s) = mean_std(&[0.9, 0.8, 1.0]);
    assert!(close(m, 0.9) && close(s, 0.1));
}

#[test]
fn knn_votes_and_leave_one_out() {
    // Gallery on a line: class 0 at 0, 1, 2; class 1 at 10, 11.
    let g = [0.0f32, 1.0, 2.0, 10.0, 11.0];
    let l = [0u32, 0, 0, 1, 1];
    let r = knn(&g, &l, &[1.4, 9.0], 1, 3, false);
    assert_eq!((r[0].label, r[0].votes, r[0].nearest_label), (0, 3, 0));
    assert!((r[0].distance - 0.16).abs() < 1e-5);
    assert_eq!((r[1].label, r[1].votes), (1, 2));
    // The nearest (10, class 1) is outvoted by the three of class 0 among the five.
    let r = knn(&g, &l, &[6.05], 1, 5, false);
    assert_eq!(
        (r[0].label, r[0].votes, r[0].nearest_label, r[0].agree),
        (0, 3, 1, 2)
    );
    // Leave-one-out: the query never matches itself.
    let loo = knn(&g, &l, &g, 1, 1, true);
    assert!(loo.iter().all(|n| n.distance > 0.0));
    let c = centroids(&g, &l, 1, 2);
    assert_eq!(c, vec![1.0, 10.5]);
    assert_eq!(nearest_centroid(&c, &[5.0, 6.0], 1), vec![0, 1]);
}

#[test]
fn nearest_items_are_the_brute_force_order() {
    // 1-D points, so distances are hand-checkable: gallery 0, 3, 1, 1, 7 (two at distance
    // 1 from 0: the lower index first, as knn breaks ties).
    let gallery = [0.0f32, 3.0, 1.0, 1.0, 7.0];
    let labels = [0u32, 1, 0, 1, 1];
    let near = nearest_items(&gallery, &[0.2, 6.0], 1, 3);
    let idx: Vec<Vec<usize>> = near
        .iter()
        .map(|n| n.iter().map(|&(j, _)| j).collect())
        .collect();
    assert_eq!(idx, [vec![0, 2, 3], vec![4, 1, 2]]);
    assert!((near[0][1].1 - 0.64).abs() < 1e-6 && (near[1][1].1 - 9.0).abs() < 1e-6);
    // The nearest agrees with knn's; k beyond the gallery returns all of it.
    let nn = knn(&gallery, &labels, &[0.2, 6.0], 1, 1, false);
    for (n, k) in near.iter().zip(&nn) {
        assert_eq!(labels[n[0].0], k.nearest_label);
        assert_eq!(n[0].1, k.distance);
    }
    assert_eq!(nearest_items(&gallery, &[0.0], 1, 9)[0].len(), 5);
}
