//! Datasets: the shipped MNIST subset (checksum, split), IDX files, the toy 2-D problem.

use network::data::{load_idx, mnist_5k, mnist_split, toy2d, MNIST_5K_GZ};
use sha2::{Digest, Sha256};

#[test]
fn shipped_subset_matches_its_provenance() {
    // data/README.md: sha256 of the file as published.
    let digest = Sha256::digest(MNIST_5K_GZ);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
    );
    let d = mnist_5k().unwrap();
    assert_eq!(d.len(), 5000);
    for c in 0..10 {
        assert_eq!(d.labels.iter().filter(|&&l| l == c).count(), 500);
    }
    assert!(d.images.iter().all(|&p| (0.0..=1.0).contains(&p)));
}

#[test]
fn split_is_stratified_seeded_and_disjoint() {
    let (tr, te) = mnist_split(0).unwrap();
    assert_eq!((tr.len(), te.len()), (4000, 1000));
    for c in 0..10 {
        assert_eq!(te.labels.iter().filter(|&&l| l == c).count(), 100);
    }
    let (tr2, te2) = mnist_split(0).unwrap();
    assert_eq!((&tr.images, &te.labels), (&tr2.images, &te2.labels));
    let (_, te3) = mnist_split(1).unwrap();
    assert_ne!(te.images, te3.images);
    // Disjoint: no test image appears in train (compare exact pixel rows).
    let train_rows: std::collections::HashSet<Vec<u64>> = tr
        .images
        .chunks(784)
        .map(|r| r.iter().map(|p| p.to_bits()).collect())
        .collect();
    let dup = te
        .images
        .chunks(784)
        .filter(|r| train_rows.contains(&r.iter().map(|p| p.to_bits()).collect::<Vec<_>>()))
        .count();
    // MNIST has a handful of exact duplicate images; they must be rare, not a leak.
    assert!(dup <= 5, "{dup} test images also in train");
}

#[test]
fn idx_files_round_trip_and_bad_ones_are_named() {
    let dir = std::env::temp_dir().join(format!("convex-outer-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (n, h, w) = (3u32, 2u32, 3u32);
    let mut img = vec![0, 0, 8, 3];
    for v in [n, h, w] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend((0..(n * h * w)).map(|i| (i * 10) as u8));
    let mut lab = vec![0, 0, 8, 1];
    lab.extend_from_slice(&n.to_be_bytes());
    lab.extend([7u8, 0, 9]);
    let (ip, lp) = (dir.join("img.idx3-ubyte"), dir.join("lab.idx1-ubyte"));
    std::fs::write(&ip, &img).unwrap();
    std::fs::write(&lp, &lab).unwrap();
    let d = load_idx(&ip, &lp).unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d.labels, vec![7, 0, 9]);
    assert_eq!(d.example(1).0[0], 60.0 / 255.0);
    // Gzipped works too.
    let gz = dir.join("img.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &img).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    assert_eq!(
        load_idx(&gz, &lp).unwrap(),
        network::Dataset {
            name: gz.display().to_string(),
            ..d.clone()
        }
    );
    // Truncated image file.
    std::fs::write(&ip, &img[..img.len() - 1]).unwrap();
    let err = load_idx(&ip, &lp).unwrap_err().to_string();
    assert!(
        err.contains("img.idx3-ubyte") && err.contains("header says 3 images"),
        "{err}"
    );
    // Wrong magic.
    std::fs::write(&ip, [1u8, 2, 3, 4]).unwrap();
    let err = load_idx(&ip, &lp).unwrap_err().to_string();
    assert!(err.contains("not an IDX image file"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn toy2d_points_are_spread_and_seeded() {
    let d = toy2d(12, 0.16, 0).unwrap();
    assert_eq!(d.len(), 12);
    for i in 0..12 {
        for j in 0..i {
            let (a, b) = (d.example(i).0, d.example(j).0);
            let dist = (a[0] - b[0]).abs().max((a[1] - b[1]).abs());
            assert!(dist >= 0.16, "points {i} and {j} are {dist} apart");
        }
        assert!(d.example(i).0.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    assert!(d.labels.contains(&0) && d.labels.contains(&1));
    assert_eq!(d, toy2d(12, 0.16, 0).unwrap());
    assert_ne!(d.images, toy2d(12, 0.16, 1).unwrap().images);
}
