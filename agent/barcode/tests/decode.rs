//! Decoding the shipped artwork with the real engine: every reference label of both brands (genuine and
//! counterfeit), the same labels turned through a full circle, and the labelled packs of the sample
//! scenes.

mod common;

use common::{brand, reference_crops, sample_crops, turned, Crop};
use hallmark_barcode::{decode_crop, gs1, Barcode, Date, Format};

fn decode(c: &Crop) -> Vec<Barcode> {
    decode_crop(&c.rgb, c.width, c.height, c.width as usize * 3)
}

fn linear(found: &[Barcode]) -> Vec<&Barcode> {
    found.iter().filter(|b| b.format.is_linear()).collect()
}

fn reference(class: &str) -> Crop {
    let mut all = reference_crops();
    let Some(i) = all.iter().position(|c| c.class == class) else {
        panic!("no reference for {class}")
    };
    all.swap_remove(i)
}

#[test]
fn every_genuine_reference_reads_its_manifest_gtin_with_a_valid_check_digit() {
    for key in common::BRANDS {
        for class in brand(key).classes.iter().filter(|c| c.role == "genuine") {
            let found = decode(&reference(&class.name));
            let ean = linear(&found);
            assert_eq!(ean.len(), 1, "{}: {found:?}", class.name);
            assert_eq!(
                ean[0].gtin.as_deref(),
                Some(class.gtin.as_str()),
                "{}",
                class.name
            );
            assert!(ean[0].check_digit_ok, "{}", class.name);
        }
    }
}

#[test]
fn wrong_check_digit_counterfeits_read_as_such() {
    for (key, class, printed) in [
        ("northwind", "earl-grey-counterfeit", "9501101010218"),
        ("aurora", "paracetamol-500-counterfeit", "0614141200286"),
    ] {
        assert_eq!(common::printed_digits(&brand(key), class), printed);
        let found = decode(&reference(class));
        let ean = linear(&found);
        assert_eq!(ean.len(), 1, "{class}: {found:?}");
        assert_eq!(
            ean[0].gtin.as_deref(),
            Some(format!("0{printed}").as_str()),
            "{class}"
        );
        assert!(!ean[0].check_digit_ok, "{class}");
        assert!(ean[0].text.ends_with(printed), "{class}: {}", ean[0].text);
    }
}

#[test]
fn other_gtin_counterfeits_read_the_other_products_gtin() {
    for (key, class, other) in [
        ("northwind", "green-jasmine-counterfeit", "earl-grey"),
        ("aurora", "ibuprofen-200-counterfeit", "paracetamol-500"),
    ] {
        let b = brand(key);
        let other_gtin = b
            .classes
            .iter()
            .find(|c| c.name == other)
            .map(|c| c.gtin.clone());
        let found = decode(&reference(class));
        let ean = linear(&found);
        assert_eq!(ean.len(), 1, "{class}: {found:?}");
        assert_eq!(ean[0].gtin, other_gtin, "{class}");
        assert!(ean[0].check_digit_ok, "{class}");
    }
}

#[test]
fn foreign_prefix_counterfeits_read_a_gtin_outside_the_brand() {
    for (key, class) in [
        ("northwind", "chai-spice-counterfeit"),
        ("aurora", "cetirizine-10-counterfeit"),
    ] {
        let b = brand(key);
        let found = decode(&reference(class));
        let ean = linear(&found);
        assert_eq!(ean.len(), 1, "{class}: {found:?}");
        let gtin = ean[0].gtin.clone().unwrap_or_default();
        assert!(ean[0].check_digit_ok, "{class}");
        assert!(gtin.starts_with("04006381"), "{class}: {gtin}");
        assert!(
            b.prefixes.iter().all(|p| !gs1::in_prefix(&gtin, p)),
            "{class}: {gtin} in {:?}",
            b.prefixes
        );
        // While every genuine GTIN is inside.
        for c in &b.classes {
            assert!(
                b.prefixes.iter().any(|p| gs1::in_prefix(&c.gtin, p)),
                "{}",
                c.gtin
            );
        }
    }
}

#[test]
fn aurora_datamatrix_gives_gtin_expiry_batch_and_serial() {
    for class in brand("aurora").classes {
        let found = decode(&reference(&class.name));
        let dm: Vec<_> = found
            .iter()
            .filter(|b| b.format == Format::DataMatrix)
            .collect();
        assert_eq!(dm.len(), 1, "{}: {found:?}", class.name);
        let want_gtin = common::datamatrix_gtin(&brand("aurora"), &class.name);
        assert_eq!(
            dm[0].gtin.as_deref(),
            Some(want_gtin.as_str()),
            "{}",
            class.name
        );
        assert!(dm[0].check_digit_ok);
        // The reference artwork is rendered with serial 1: batch B1001, serial SN00000001.
        assert_eq!(dm[0].serial.as_deref(), Some("SN00000001"));
        assert_eq!(dm[0].batch.as_deref(), Some("B1001"));
        assert_eq!(
            dm[0].expiry,
            Some(Date {
                year: 2028,
                month: 11,
                day: 30
            })
        );
        assert_eq!(
            dm[0].text,
            format!("(01){want_gtin}(17)281130(10)B1001(21)SN00000001")
        );
        let json = serde_json::to_value(dm[0]).unwrap_or_default();
        assert_eq!(
            (json["format"].as_str(), json["expiry"].as_str()),
            (Some("datamatrix"), Some("2028-11-30"))
        );
    }
}

#[test]
fn boxes_lie_on_the_symbols() {
    // Northwind's EAN-13 bars: module 2 px, pasted at x = 360 - 234 - 6 + 22 quiet = 142, y = 370 + 20.
    let found = decode(&reference("earl-grey"));
    let [x1, y1, x2, y2] = linear(&found)[0].bbox;
    for (got, want) in [(x1, 142.0), (x2, 332.0)] {
        assert!((got - want).abs() <= 4.0, "{:?}", linear(&found)[0].bbox);
    }
    assert!(
        y1 >= 388.0 && y2 <= 462.0 && y2 > y1,
        "{:?}",
        linear(&found)[0].bbox
    );
}

#[test]
fn a_padded_stride_reads_the_same() {
    let c = reference("paracetamol-500-counterfeit");
    let stride = c.width as usize * 3 + 17;
    let mut padded = vec![0u8; stride * c.height as usize];
    for (dst, src) in padded
        .chunks_mut(stride)
        .zip(c.rgb.chunks(c.width as usize * 3))
    {
        dst[..src.len()].copy_from_slice(src);
    }
    assert_eq!(decode_crop(&padded, c.width, c.height, stride), decode(&c));
}

#[test]
fn a_window_of_a_larger_frame_reads_the_same() {
    // As the agent hands a box over: the frame's rows, from the box's first pixel to its last, no copy.
    let c = reference("earl-grey-counterfeit");
    let (fw, x0, y0) = (c.width as usize + 100, 40usize, 7usize);
    let stride = fw * 3;
    let mut frame = vec![90u8; stride * (c.height as usize + 20)];
    for (y, src) in c.rgb.chunks(c.width as usize * 3).enumerate() {
        let at = (y0 + y) * stride + x0 * 3;
        frame[at..at + src.len()].copy_from_slice(src);
    }
    let start = y0 * stride + x0 * 3;
    let end = (y0 + c.height as usize - 1) * stride + (x0 + c.width as usize) * 3;
    assert_eq!(
        decode_crop(&frame[start..end], c.width, c.height, stride),
        decode(&c)
    );
    // One byte short of the last row: refused, not read out of bounds.
    assert!(decode_crop(&frame[start..end - 1], c.width, c.height, stride).is_empty());
}

/// Design: the safety property. Turned through a full circle, a GENUINE label never yields a wrong
/// check digit or another GTIN (a false COUNTERFEIT); counterfeits' wrong check digits are still seen.
#[test]
fn turned_labels_never_misread_and_mostly_read() {
    let mut read = 0;
    let mut total = 0;
    let mut bad_check_seen = 0;
    for c in reference_crops() {
        for degrees in (30..360).step_by(30) {
            let t = turned(&c, degrees as f32);
            let found = decode(&t);
            total += 1;
            let want = format!("0{}", c.printed);
            for b in linear(&found) {
                assert_eq!(
                    b.gtin.as_deref(),
                    Some(want.as_str()),
                    "{}: {found:?}",
                    t.source
                );
                read += 1;
                bad_check_seen += usize::from(!b.check_digit_ok);
            }
        }
    }
    // Measured: all 132 read at these angles; the floor leaves room for a different engine build.
    assert!(
        read * 100 >= total * 95,
        "{read}/{total} turned labels read"
    );
    assert!(
        bad_check_seen >= 20,
        "{bad_check_seen} of 22 wrong check digits seen"
    );
}

#[test]
fn sample_scene_crops_read_at_the_measured_rate_and_never_wrong() {
    let crops = sample_crops();
    assert_eq!(crops.len(), 24);
    let (mut ean, mut dm) = (0, 0);
    for c in &crops {
        let found = decode(c);
        let want = format!("0{}", c.printed);
        for b in linear(&found) {
            assert_eq!(
                b.gtin.as_deref(),
                Some(want.as_str()),
                "{}: {found:?}",
                c.source
            );
            ean += 1;
        }
        if let Some(g) = &c.datamatrix_gtin {
            dm += usize::from(
                found
                    .iter()
                    .any(|b| b.format == Format::DataMatrix && b.gtin.as_ref() == Some(g)),
            );
        }
    }
    // Measured (README): 3 of 24 EAN-13s and 3 of 12 DataMatrix; most sample packs are too small or
    // blurred for their barcodes to be legible.
    assert!(ean >= 2, "{ean} EAN-13s read");
    assert!(dm >= 2, "{dm} DataMatrix read");
}

/// Labels farther from the camera (modules of 1–1.8 px), turned: the engine reads few of them, but what
/// is returned is never wrong. (A third of the measured set, to keep the debug-build test short.)
#[test]
fn scaled_labels_never_misread() {
    let mut read = 0;
    let crops = common::scaled_crops(&[0.5, 0.7, 0.9], &[0.0, 45.0, 160.0]);
    for c in &crops {
        let found = decode(c);
        let want = format!("0{}", c.printed);
        for b in linear(&found) {
            assert_eq!(
                b.gtin.as_deref(),
                Some(want.as_str()),
                "{}: {found:?}",
                c.source
            );
            read += 1;
        }
    }
    // Measured: 47 of 108.
    assert!(read >= 40, "{read} of {} scaled labels read", crops.len());
}

/// Every crop of `frame` (RGB8, `fw` wide) whose corners lie within `reach` pixels of `(x1, y1, x2, y2)`,
/// moved together: where a detector's box happens to fall around one label.
fn crops_around(
    frame: &[u8],
    fw: usize,
    [x1, y1, x2, y2]: [usize; 4],
    reach: usize,
) -> Vec<Vec<Barcode>> {
    let mut out = Vec::new();
    for dy in 0..=2 * reach {
        for dx in 0..=2 * reach {
            let (ax, ay, bx, by) = (
                x1 + dx - reach,
                y1 + dy - reach,
                x2 + dx - reach,
                y2 + dy - reach,
            );
            let window = &frame[ay * fw * 3 + ax * 3..(by - 1) * fw * 3 + bx * 3];
            out.push(decode_crop(
                window,
                (bx - ax) as u32,
                (by - ay) as u32,
                fw * 3,
            ));
        }
    }
    out
}

#[test]
fn a_flat_label_reads_wherever_the_box_around_it_falls() {
    // The Paracetamol counterfeit at 420 px on a grey 960×720 frame (as the agent's barcode tests put
    // it): the engine's finder missed its EAN-13 at one of these 49 crops, the one a retrained
    // detector's box gave, until a crop that reads nothing linear got its second look.
    let label = reference("paracetamol-500-counterfeit");
    let img = image::RgbImage::from_raw(label.width, label.height, label.rgb.clone()).unwrap();
    let scale = 420.0 / label.width.max(label.height) as f32;
    let (w, h) = (
        (label.width as f32 * scale) as u32,
        (label.height as f32 * scale) as u32,
    );
    let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(960, 720, image::Rgb([128, 128, 128]));
    image::imageops::replace(
        &mut frame,
        &img,
        ((960 - w) / 2) as i64,
        ((720 - h) / 2) as i64,
    );
    let reads = crops_around(frame.as_raw(), 960, [247, 216, 700, 518], 3);
    for (k, found) in reads.iter().enumerate() {
        let ean = linear(found);
        assert_eq!(ean.len(), 1, "crop {k}: {found:?}");
        assert_eq!(ean[0].text, label.printed, "crop {k}");
        assert!(
            !ean[0].check_digit_ok,
            "crop {k}: the printed check digit is wrong"
        );
    }
}

mod hostile_element_strings {
    //! GS1 element strings come from whatever a reader decoded on a pack: any text at all. Parsing
    //! answers with a value or an error, never a panic (proptest, CI-sized).
    use hallmark_barcode::gs1::{parse_element_string, Gtin};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn any_text_never_panics(s in ".{0,200}") {
            let _ = parse_element_string(&s);
            let _ = Gtin::parse(&s);
        }

        #[test]
        fn element_strings_cut_and_spliced_never_panic(
            cut in 0usize..80,
            insert in "[\\x1d()0-9A-Za-z\\]]{0,12}",
        ) {
            let good = "]d2\x1d0109501101010215172811301" .to_string() + "0B1001\x1d21SN00000001";
            let mut s: String = good.chars().take(cut).collect();
            s.push_str(&insert);
            s.extend(good.chars().skip(cut));
            let _ = parse_element_string(&s);
            let human = "(01)09501101010215(17)281130(10)B1001(21)SN00000001";
            let mut h: String = human.chars().take(cut % human.len()).collect();
            h.push_str(&insert);
            let _ = parse_element_string(&h);
        }
    }
}
