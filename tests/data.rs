//! The image-folder loader on good and bad files, preprocessing, splits and augmentation.

use std::path::Path;

use glassnet::data::augment::orient;
use glassnet::data::folder::load_folder;
use glassnet::data::preprocess::Preprocess;
use glassnet::data::split::{stratified_folds, stratified_split};

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("glassnet-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A class folder of gradient images in several formats and depths.
fn write_good(dir: &Path) {
    let a = dir.join("alpha");
    let b = dir.join("beta");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let grey8 = image::GrayImage::from_fn(40, 30, |x, y| image::Luma([(x * 6 + y) as u8]));
    grey8.save(a.join("g8.png")).unwrap();
    grey8.save(a.join("g8.bmp")).unwrap();
    grey8.save(a.join("g8.tif")).unwrap();
    let grey16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(50, 50, |x, _| {
        image::Luma([(x * 1300) as u16])
    });
    grey16.save(b.join("g16.png")).unwrap();
    let rgb = image::RgbImage::from_fn(64, 20, |x, _| image::Rgb([x as u8 * 4, 0, 255]));
    rgb.save(b.join("rgb.jpg")).unwrap();
    std::fs::write(b.join("notes.txt"), "not an image").unwrap();
}

#[test]
fn loads_formats_depths_and_sizes() {
    let d = tmpdir("good");
    write_good(&d);
    let pre = Preprocess::resize_only(16);
    let (ds, skipped) = load_folder(&d, &pre, false).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(ds.classes, ["alpha", "beta"]);
    assert_eq!(ds.class_counts(), [3, 2]);
    assert_eq!(ds.images.len(), 5 * 256);
    assert!(ds.images.iter().all(|v| (-1.0..=1.0).contains(v)));
    // The 16-bit ramp spans most of [0, 1]: its ends map near -1 and 1.
    let g16 = ds.image(3);
    assert!(
        g16[0] < -0.8 && g16[15] > 0.8,
        "16-bit range lost: {} .. {}",
        g16[0],
        g16[15]
    );
    // The three 8-bit copies of one image decode to the same pixels (BMP arrives as RGB and
    // is converted back to grey, hence the tolerance).
    for other in [1, 2] {
        assert!(ds
            .image(0)
            .iter()
            .zip(ds.image(other))
            .all(|(a, b)| (a - b).abs() < 1e-5));
    }
}

#[test]
fn corrupt_image_is_named_or_skipped() {
    let d = tmpdir("corrupt");
    write_good(&d);
    let bad = d.join("alpha").join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not a png").unwrap();
    let pre = Preprocess::resize_only(16);
    let err = load_folder(&d, &pre, false).unwrap_err().to_string();
    assert!(
        err.contains("broken.png") && err.contains("--skip-bad"),
        "{err}"
    );
    let (ds, skipped) = load_folder(&d, &pre, true).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(ds.len(), 5);
    // A cut JPEG decodes without error (its missing blocks grey): it must be caught too.
    std::fs::remove_file(&bad).unwrap();
    let jpeg = encoded(image::ImageFormat::Jpeg);
    let cut = d.join("beta").join("cut.jpg");
    std::fs::write(&cut, &jpeg[..jpeg.len() * 3 / 4]).unwrap();
    let err = load_folder(&d, &pre, false).unwrap_err().to_string();
    assert!(
        err.contains("cut.jpg") && err.contains("damaged JPEG"),
        "{err}"
    );
    let (ds, skipped) = load_folder(&d, &pre, true).unwrap();
    assert_eq!((ds.len(), skipped.len()), (5, 1));
    assert!(skipped[0].1.contains("damaged JPEG"));
}

/// Links back up the tree (two of them, which used to grow memory without end) and a second
/// link to the same file: every real image once, in sorted order.
#[cfg(unix)]
#[test]
fn links_are_followed_once_per_real_folder_and_file() {
    use glassnet::data::folder::collect_images;
    let d = tmpdir("links");
    write_good(&d);
    std::os::unix::fs::symlink(&d, d.join("alpha").join("up")).unwrap();
    std::os::unix::fs::symlink(".", d.join("beta").join("here")).unwrap();
    std::os::unix::fs::symlink(d.join("alpha/g8.png"), d.join("beta/same.png")).unwrap();
    let got = collect_images(&d).unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|p| p.strip_prefix(&d).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "alpha/g8.bmp",
            "alpha/g8.png",
            "alpha/g8.tif",
            "beta/g16.png",
            "beta/rgb.jpg"
        ]
    );
    // The same through a link to the whole folder.
    let outside = tmpdir("links-outside");
    std::os::unix::fs::symlink(&d, outside.join("data")).unwrap();
    assert_eq!(collect_images(&outside).unwrap().len(), 5);
}

#[test]
fn missing_and_empty_directories_are_clear_errors() {
    let pre = Preprocess::default();
    let err = load_folder(Path::new("/no/such/dir"), &pre, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such/dir"), "{err}");
    let d = tmpdir("empty");
    let err = load_folder(&d, &pre, false).unwrap_err().to_string();
    assert!(err.contains("no class folders"), "{err}");
}

#[test]
fn trainability_checks_name_the_problem() {
    let d = tmpdir("oneclass");
    std::fs::create_dir_all(d.join("only")).unwrap();
    for i in 0..3 {
        image::GrayImage::from_pixel(8, 8, image::Luma([i * 40]))
            .save(d.join("only").join(format!("{i}.png")))
            .unwrap();
    }
    let (ds, _) = load_folder(&d, &Preprocess::resize_only(8), false).unwrap();
    let err = ds.check_trainable("x", 2).unwrap_err().to_string();
    assert!(err.contains("only one class"), "{err}");
    std::fs::create_dir_all(d.join("single")).unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([9]))
        .save(d.join("single").join("a.png"))
        .unwrap();
    let (ds, _) = load_folder(&d, &Preprocess::resize_only(8), false).unwrap();
    let err = ds.check_trainable("x", 2).unwrap_err().to_string();
    assert!(err.contains("'single' has 1 image"), "{err}");
    // With augmented views a one-image class trains (its positive: another view).
    ds.check_trainable("x", 1).unwrap();
}

/// Two views of the same images joined: images, labels and paths in order, one after the
/// other.
#[test]
fn joined_sets_keep_images_labels_and_paths_in_order() {
    let d = tmpdir("joined");
    for (c, v) in [("a", 30u8), ("b", 200)] {
        std::fs::create_dir_all(d.join(c)).unwrap();
        for i in 0..2u8 {
            image::GrayImage::from_fn(8, 8, |x, y| image::Luma([v + i * 7 + (x * y) as u8]))
                .save(d.join(c).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let (one, _) = load_folder(&d, &Preprocess::resize_only(8), false).unwrap();
    let (two, _) = load_folder(&d, &Preprocess::resize_only(4), false).unwrap();
    assert!(
        std::panic::catch_unwind(|| one.joined(&two)).is_err(),
        "sides differ"
    );
    let first = one.subset(&[3, 0]);
    let both = first.joined(&one);
    assert_eq!(both.len(), 6);
    assert_eq!(both.labels, [&first.labels[..], &one.labels[..]].concat());
    assert_eq!(both.image(1), one.image(0));
    assert_eq!(both.image(5), one.image(3));
    assert_eq!(both.paths[2], one.paths[0]);
}

#[test]
fn stratified_split_keeps_every_class_on_both_sides() {
    let labels: Vec<u32> = (0..100)
        .map(|i| {
            if i < 70 {
                0
            } else if i < 95 {
                1
            } else {
                2
            }
        })
        .collect();
    let (train, val) = stratified_split(&labels, 3, 0.2, 1);
    assert_eq!(train.len() + val.len(), 100);
    let count = |idx: &[usize], c| idx.iter().filter(|&&i| labels[i] == c).count();
    assert_eq!((count(&val, 0), count(&val, 1), count(&val, 2)), (14, 5, 1));
    assert!(train.iter().all(|i| !val.contains(i)));
    assert_eq!(
        stratified_split(&labels, 3, 0.2, 1),
        (train, val),
        "same seed, same split"
    );
}

#[test]
fn folds_are_stratified_disjoint_and_cover_everything() {
    let labels: Vec<u32> = (0..103).map(|i| (i % 7 % 3) as u32).collect();
    let k = 10;
    let folds = stratified_folds(&labels, 3, k, 5);
    for c in 0..3u32 {
        let per_fold: Vec<usize> = (0..k)
            .map(|f| {
                (0..103)
                    .filter(|&i| folds[i] == f && labels[i] == c)
                    .count()
            })
            .collect();
        let (lo, hi) = (
            per_fold.iter().min().unwrap(),
            per_fold.iter().max().unwrap(),
        );
        assert!(hi - lo <= 1, "class {c} per fold {per_fold:?}");
    }
    // Each image is in exactly one test fold by construction (one fold id each); all folds used.
    assert!((0..k).all(|f| folds.contains(&f)));
}

#[test]
fn orientations_are_the_eight_symmetries() {
    let side = 3;
    let src: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let mut seen = Vec::new();
    for t in 0..8 {
        let mut dst = vec![0.0; 9];
        orient(&mut dst, &src, side, t);
        let mut sorted = dst.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, src, "orientation {t} is a permutation");
        assert!(!seen.contains(&dst), "orientation {t} repeats another");
        seen.push(dst);
    }
    assert_eq!(seen[0], src);
}

#[test]
fn views_of_a_folder_or_the_builtin_set_match_separate_loads() {
    use glassnet::data::builtin::{builtin, builtin_views};
    use glassnet::data::folder::load_folder_views;
    use glassnet::data::preprocess::Crop;
    use glassnet::data::synth::SynthConfig;
    let d = tmpdir("views");
    write_good(&d);
    // A crop and the whole frame, as `--crop-views` loads them; and a plain resize.
    let cropped = Preprocess {
        crop: Some(Crop::default()),
        ..Preprocess::resize_only(16)
    };
    let whole = Preprocess::resize_only(16);
    let (sets, skipped) = load_folder_views(&d, &[&cropped, &whole], false).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(sets.len(), 2);
    for (set, pre) in sets.iter().zip([&cropped, &whole]) {
        let (alone, _) = load_folder(&d, pre, false).unwrap();
        assert_eq!(set.images, alone.images);
        assert_eq!(set.labels, alone.labels);
        assert_eq!(set.paths, alone.paths);
        assert_eq!(set.classes, alone.classes);
    }
    assert_ne!(sets[0].images, sets[1].images, "the crop changed nothing");
    for line_camera in [false, true] {
        // A few images per class: line-camera frames are up to 640 px and crops are slow.
        let cfg = SynthConfig {
            seed: 3,
            side: 32,
            line_camera,
            counts: [3, 2, 2, 2],
        };
        let pres = [
            Preprocess {
                crop: Some(Crop::default()),
                ..Preprocess::resize_only(32)
            },
            Preprocess::resize_only(32),
        ];
        let views = builtin_views(&cfg, &[&pres[0], &pres[1]]);
        for (v, pre) in views.iter().zip(&pres) {
            let alone = builtin(&cfg, pre);
            assert_eq!(v.images, alone.images, "line camera {line_camera}");
            assert_eq!(v.labels, alone.labels);
        }
    }
}

/// A 64x48 grey gradient with texture, encoded as `fmt`.
fn encoded(fmt: image::ImageFormat) -> Vec<u8> {
    let img = image::GrayImage::from_fn(64, 48, |x, y| {
        image::Luma([((x * 5 + y * 3 + (x * y) % 7) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(img)
        .to_rgb8()
        .write_to(&mut out, fmt)
        .unwrap();
    out.into_inner()
}

#[test]
fn damaged_files_are_refused_never_decoded_grey() {
    use glassnet::data::folder::decode_grey_bytes;
    for fmt in [
        image::ImageFormat::Png,
        image::ImageFormat::Jpeg,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
    ] {
        let good = encoded(fmt);
        decode_grey_bytes(&good, "good").unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
        if fmt == image::ImageFormat::Jpeg {
            // Bytes after the end-of-image marker (some cameras append data) are no damage.
            let mut trailer = good.clone();
            trailer.extend_from_slice(b"\xff\xd8appended");
            decode_grey_bytes(&trailer, "trailer").unwrap();
        }
        for keep in [0.3, 0.6, 0.9, 0.99] {
            let cut = &good[..(good.len() as f64 * keep) as usize];
            let r = decode_grey_bytes(cut, "cut.img");
            assert!(
                r.is_err(),
                "{fmt:?} truncated to {keep} of {} bytes decoded",
                good.len()
            );
            let e = r.err().unwrap().to_string();
            assert!(e.contains("cut.img"), "{e}");
        }
    }
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn an_image_claiming_too_many_pixels_is_refused_before_decoding() {
    use glassnet::data::folder::decode_grey_bytes;
    let mut png = encoded(image::ImageFormat::Png);
    // IHDR follows the 8-byte signature: length, "IHDR", width, height, ..., CRC.
    for (w, h) in [(20_000u32, 20_000u32), (1 << 16, 1 << 11), (9000, 9000)] {
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode_grey_bytes(&png, "bomb.png").unwrap_err().to_string();
        assert!(
            e.contains("bomb.png") && e.contains("megapixels"),
            "{w}x{h}: {e}"
        );
    }
}

/// train, evaluate and embed read class folders by the rule predict uses: images anywhere
/// under each class folder, links once (a loop inside a class neither repeats nor hangs),
/// and what is not read is listed.
#[cfg(unix)]
#[test]
fn class_folders_are_walked_by_the_one_rule_and_what_is_ignored_is_listed() {
    use glassnet::data::folder::ignored_files;
    let d = tmpdir("walk");
    write_good(&d);
    let nested = d.join("alpha").join("day2");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(d.join("alpha/g8.png"), nested.join("more.png")).unwrap();
    std::os::unix::fs::symlink("..", nested.join("up")).unwrap();
    std::os::unix::fs::symlink(d.join("alpha"), d.join("beta").join("alias")).unwrap();
    std::fs::write(d.join("README.txt"), "beside the classes").unwrap();
    std::fs::write(nested.join("scan.raw"), "not an image").unwrap();
    let pre = Preprocess::resize_only(16);
    let (ds, _) = load_folder(&d, &pre, false).unwrap();
    // alpha: 3 + the nested one; beta: its own 2 (its link to alpha adds nothing new).
    assert_eq!(ds.len(), 6, "{:?}", ds.paths);
    assert!(ds.paths.contains(&nested.join("more.png")));
    assert_eq!(ds.class_counts(), vec![4, 2]);
    let ignored: Vec<String> = ignored_files(&d)
        .unwrap()
        .iter()
        .map(|p| p.strip_prefix(&d).unwrap().display().to_string())
        .collect();
    assert_eq!(
        ignored,
        ["README.txt", "alpha/day2/scan.raw", "beta/notes.txt"]
    );
}

/// `--colour auto` chooses colour only where the planes differ: a set of tinted images is
/// colour; grey files, and colour files of grey content (R = G = B, also as JPEG), are grey.
/// A colour set loads as three planes per image, each plane the file's own.
#[test]
fn colour_is_detected_from_the_pixels_not_the_file_type() {
    use glassnet::data::colour::Colour;
    use glassnet::data::folder::has_colour;
    let ramp = |x: u32, y: u32| (x * 5 + y * 3) as u8;
    let write = |dir: &Path, f: &dyn Fn(&Path, usize)| {
        for class in ["a", "b"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..4 {
                f(&dir.join(class), i);
            }
        }
    };
    let tinted = tmpdir("colour-tinted");
    write(&tinted, &|d, i| {
        image::RgbImage::from_fn(30, 20, |x, y| {
            image::Rgb([ramp(x, y), 40, 200 - ramp(x, y)])
        })
        .save(d.join(format!("{i}.png")))
        .unwrap()
    });
    let grey_rgb = tmpdir("colour-grey-rgb");
    write(&grey_rgb, &|d, i| {
        let v = |x, y| ramp(x, y);
        let img = image::RgbImage::from_fn(30, 20, |x, y| image::Rgb([v(x, y); 3]));
        img.save(d.join(format!("{i}.png"))).unwrap();
        img.save(d.join(format!("{i}.jpg"))).unwrap();
    });
    let grey = tmpdir("colour-grey");
    write(&grey, &|d, i| {
        image::GrayImage::from_fn(30, 20, |x, y| image::Luma([ramp(x, y)]))
            .save(d.join(format!("{i}.png")))
            .unwrap()
    });
    assert!(has_colour(&tinted).unwrap());
    assert!(!has_colour(&grey_rgb).unwrap());
    assert!(!has_colour(&grey).unwrap());
    assert!(has_colour(&tinted.join("missing")).is_err());

    let pre = Preprocess {
        colour: Colour::Rgb,
        ..Preprocess::resize_only(16)
    };
    let (data, _) = load_folder(&tinted, &pre, false).unwrap();
    assert_eq!((data.channels, data.image_len()), (3, 3 * 16 * 16));
    let img = data.image(0);
    let plane = |k: usize| &img[k * 256..(k + 1) * 256];
    // Green is a constant 40 / 255; red rises where blue falls.
    let want = 40.0 / 255.0 * 2.0 - 1.0;
    assert!(plane(1).iter().all(|v| (v - want).abs() < 1e-5));
    let (r, b) = (plane(0), plane(2));
    assert!(r[255] > r[0] && b[255] < b[0]);
    for d in [tinted, grey_rgb, grey] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
