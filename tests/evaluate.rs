//! The pieces of `evaluate` below the CLI: pixel baselines on the shared distance matrix,
//! gamma "scale", and the t-SNE map.

mod common;
use common::{random, rng};
use glassnet::cpu::reference as r;
use glassnet::data::Dataset;
use glassnet::engine::cpu::{CpuEngine, CpuKind};
use glassnet::eval::baselines::{gamma_scale, pixel_knn, pixel_naive_bayes, pixel_svm, PixelGram};
use glassnet::eval::tsne::tsne_2d;
use glassnet::model::{init_params, Arch, Head, ParamLayout};
use rand::Rng;

/// Three classes of 8x8 images: a bright left half, a bright right half, or a bright
/// centre, each with noise; `per_class` images each, classes interleaved.
fn three_classes(per_class: usize, seed: u64) -> Dataset {
    let mut g = rng(seed);
    let side = 8;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..3 * per_class {
        let c = (i % 3) as u32;
        for y in 0..side {
            for x in 0..side {
                let on = match c {
                    0 => x < 4,
                    1 => x >= 4,
                    _ => (2..6).contains(&x) && (2..6).contains(&y),
                };
                let base = if on { 0.6 } else { -0.6 };
                images.push(base + g.random_range(-0.5f32..0.5));
            }
        }
        labels.push(c);
    }
    Dataset {
        side,
        channels: 1,
        images,
        labels,
        classes: vec!["left".into(), "right".into(), "centre".into()],
        paths: Vec::new(),
    }
}

fn engine() -> CpuEngine {
    let arch = Arch::reference(Head::L2);
    let params = init_params(&arch, &ParamLayout::new(&arch), 0);
    CpuEngine::new(&arch, &params, CpuKind::Fast).unwrap()
}

fn accuracy(pred: &[u32], data: &Dataset, test: &[usize]) -> f64 {
    let right = test
        .iter()
        .zip(pred)
        .filter(|(&i, &p)| data.labels[i] == p)
        .count();
    right as f64 / test.len() as f64
}

#[test]
fn gram_blocks_are_the_reference_distances() {
    let data = three_classes(5, 1);
    let gram = PixelGram::new(&mut engine(), &data).unwrap();
    let (rows, cols) = ([4usize, 0, 13], [2usize, 14, 7, 7]);
    let block = gram.block(&rows, &cols);
    for (a, &i) in rows.iter().enumerate() {
        for (b, &j) in cols.iter().enumerate() {
            let mut want = [0.0f32];
            r::pairwise_distance(&mut want, data.image(i), data.image(j), 1, 1, 64);
            let got = block[a * cols.len() + b];
            assert!(
                (got - want[0]).abs() <= 1e-3 + 1e-5 * want[0],
                "d({i}, {j}) = {got}, reference {}",
                want[0]
            );
        }
    }
}

#[test]
fn gamma_scale_is_one_over_features_times_variance() {
    let data = three_classes(2, 2);
    let train = [0usize, 3, 4];
    let px: Vec<f64> = train
        .iter()
        .flat_map(|&i| data.image(i).iter().map(|&v| v as f64))
        .collect();
    let mean = px.iter().sum::<f64>() / px.len() as f64;
    let var = px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64;
    let want = 1.0 / (64.0 * var);
    let got = gamma_scale(&data, &train);
    assert!((got - want).abs() < 1e-9 * want.max(1.0), "{got} vs {want}");
}

#[test]
fn baselines_learn_separable_classes_and_repeat_exactly() {
    let data = three_classes(20, 3);
    let (train, test): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|i| i % 4 != 0);
    let labels: Vec<u32> = train.iter().map(|&i| data.labels[i]).collect();
    let gram = PixelGram::new(&mut engine(), &data).unwrap();
    let gamma = gamma_scale(&data, &train);
    let svm = pixel_svm(&gram, gamma, 10.0, &train, &labels, &test).unwrap();
    assert!(
        accuracy(&svm.labels, &data, &test) >= 0.95,
        "svm {:?}",
        svm.labels
    );
    let again = pixel_svm(&gram, gamma, 10.0, &train, &labels, &test).unwrap();
    assert_eq!(svm.labels, again.labels, "the SVM is not deterministic");
    let nb = pixel_naive_bayes(&data, &train, &test).unwrap();
    assert!(
        accuracy(&nb.labels, &data, &test) >= 0.95,
        "nb {:?}",
        nb.labels
    );
    let knn = pixel_knn(&gram, &train, &labels, &test, 1);
    assert!(
        accuracy(&knn.labels, &data, &test) >= 0.95,
        "1-NN {:?}",
        knn.labels
    );
    // Chance is 1/3: a classifier that ignores its input cannot pass the checks above, and
    // a shuffled-label SVM must fall well below them.
    let shuffled: Vec<u32> = labels.iter().map(|&l| (l + 1) % 3).collect();
    let wrong = pixel_svm(&gram, gamma, 10.0, &train, &shuffled, &test).unwrap();
    assert!(accuracy(&wrong.labels, &data, &test) < 0.2);
}

#[test]
fn tsne_keeps_separated_clusters_apart() {
    let mut g = rng(4);
    let (n, d) = (60, 16);
    let mut emb = random(&mut g, n * d);
    for (i, row) in emb.chunks_mut(d).enumerate() {
        let c = i % 3;
        for v in row.iter_mut() {
            *v *= 0.05;
        }
        row[c] += 3.0;
    }
    let xy = tsne_2d(&emb, d, 0).expect("enough points");
    assert_eq!(xy.len(), 2 * n);
    assert!(xy.iter().all(|v| v.is_finite()));
    // Every point's nearest neighbour in the map belongs to its own cluster.
    for i in 0..n {
        let nearest = (0..n)
            .filter(|&j| j != i)
            .min_by(|&a, &b| {
                let da = (xy[2 * a] - xy[2 * i]).powi(2) + (xy[2 * a + 1] - xy[2 * i + 1]).powi(2);
                let db = (xy[2 * b] - xy[2 * i]).powi(2) + (xy[2 * b + 1] - xy[2 * i + 1]).powi(2);
                da.total_cmp(&db)
            })
            .unwrap();
        assert_eq!(nearest % 3, i % 3, "point {i} lands beside point {nearest}");
    }
    assert!(tsne_2d(&emb[..5 * d], d, 0).is_none());
}
