//! read_mo on .mo files written here in both byte orders, corrupt files, and extract_gettext_pairs' filters.

use ferrite_text::{extract_gettext_pairs, read_mo, GettextStats, Pair};
use std::path::{Path, PathBuf};

const UTF8_HEADER: &str = "Content-Type: text/plain; charset=UTF-8\n";

/// Writes a GNU .mo image: header (magic, revision 0, N, table offsets, empty hash table), the original and
/// translation tables, then NUL-terminated strings. Entries are sorted by msgid, as msgfmt does.
fn mo_bytes(entries: &[(&[u8], &[u8])], big_endian: bool) -> Vec<u8> {
    let mut entries = entries.to_vec();
    entries.sort();
    let n = entries.len() as u32;
    let word = |w: u32| if big_endian { w.to_be_bytes() } else { w.to_le_bytes() };
    let (originals, translations) = (28u32, 28 + 8 * n);
    let mut data_offset = translations + 8 * n;
    let mut tables = [Vec::new(), Vec::new()];
    let mut data = Vec::new();
    for (side, table) in tables.iter_mut().enumerate() {
        for entry in &entries {
            let s = if side == 0 { entry.0 } else { entry.1 };
            table.extend(word(s.len() as u32));
            table.extend(word(data_offset));
            data.extend_from_slice(s);
            data.push(0);
            data_offset += s.len() as u32 + 1;
        }
    }
    let mut out = Vec::new();
    for w in [0x9504_12de, 0, n, originals, translations, 0, 0] {
        out.extend(word(w));
    }
    out.extend(&tables[0]);
    out.extend(&tables[1]);
    out.extend(data);
    out
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrite_text_mo_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_mo(path: &Path, entries: &[(&str, &str)], big_endian: bool) {
    let raw: Vec<(&[u8], &[u8])> = entries.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())).collect();
    std::fs::write(path, mo_bytes(&raw, big_endian)).expect("write .mo");
}

fn sample_entries() -> Vec<(&'static str, &'static str)> {
    vec![
        ("", UTF8_HEADER),
        ("Open", "Ouvrir"),
        ("menu\u{4}File", "Fichier"),
        ("%d file\0%d files", "%d fichier\0%d fichiers"),
        ("Untranslated", ""),
        ("Thé", "Tea"),
    ]
}

#[test]
fn reads_both_byte_orders_with_plural_and_context() {
    let dir = temp_dir("orders");
    let mut expected = vec![
        ("%d file".to_string(), "%d fichier".to_string()),
        ("File".to_string(), "Fichier".to_string()),
        ("Open".to_string(), "Ouvrir".to_string()),
        ("Thé".to_string(), "Tea".to_string()),
    ];
    expected.sort();
    for big_endian in [false, true] {
        let path = dir.join(format!("be_{big_endian}.mo"));
        write_mo(&path, &sample_entries(), big_endian);
        let mut got = read_mo(&path).unwrap();
        got.sort();
        assert_eq!(got, expected, "big_endian = {big_endian}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn latin1_catalog_is_decoded() {
    let dir = temp_dir("latin1");
    let path = dir.join("latin1.mo");
    let header: &[u8] = b"Content-Type: text/plain; charset=ISO-8859-1\n";
    std::fs::write(&path, mo_bytes(&[(b"", header), (b"coffee", b"caf\xe9")], false)).unwrap();
    assert_eq!(
        read_mo(&path).unwrap(),
        vec![("coffee".to_string(), "café".to_string())]
    );
    std::fs::write(
        &path,
        mo_bytes(&[(b"", UTF8_HEADER.as_bytes()), (b"coffee", b"caf\xe9")], false),
    )
    .unwrap();
    let err = read_mo(&path).unwrap_err().to_string();
    assert!(err.contains("latin1.mo") && err.contains("not valid UTF-8"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let dir = temp_dir("truncated");
    let path = dir.join("cut.mo");
    let full = mo_bytes(
        &sample_entries()
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect::<Vec<_>>(),
        false,
    );
    // Every prefix: an error naming the file, except the one that only loses the final NUL terminator.
    for cut in 0..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        match read_mo(&path) {
            Err(e) => assert!(e.to_string().contains("cut.mo"), "{e}"),
            Ok(_) => assert_eq!(cut, full.len() - 1, "prefix of {cut} bytes was accepted"),
        }
    }
    std::fs::write(&path, &full[..40]).unwrap();
    let err = read_mo(&path).unwrap_err().to_string();
    assert!(
        err.contains("cut.mo") && err.contains("truncated") && err.contains("entry"),
        "{err}"
    );
    // Every single-byte corruption of the header and tables: no panic.
    for i in 0..(28 + 16 * 6) {
        let mut bad = full.clone();
        bad[i] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let _ = read_mo(&path);
    }
    std::fs::write(&path, b"\xde\xad\xbe\xef0123456789abcdef").unwrap();
    let err = read_mo(&path).unwrap_err().to_string();
    assert!(err.contains("cut.mo") && err.contains("magic"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extract_cleans_filters_and_dedupes() {
    let dir = temp_dir("extract");
    let long = "word ".repeat(50);
    let copy = "This help text was left in English";
    write_mo(
        &dir.join("a.mo"),
        &[
            ("", UTF8_HEADER),
            ("_Open", "_Ouvrir"),
            ("&File", "&Fichier"),
            ("%s: %s", "%s : %s"),
            ("{0} (%d)", "{0} (%d)"),
            ("Error: %s", "Erreur : %s"),
            ("Set LC_ALL\nnow", "Définir LC_ALL\nmaintenant"),
            (long.as_str(), "mot"),
            (copy, copy),
            ("Description", "Description"),
        ],
        false,
    );
    write_mo(
        &dir.join("b.mo"),
        &[
            ("", UTF8_HEADER),
            ("Open", "Ouvrir le fichier"),
            ("Save _As…", "Enregistrer _sous…"),
        ],
        true,
    );
    std::fs::write(dir.join("notes.txt"), "not a catalog").unwrap();
    let (pairs, stats) = extract_gettext_pairs(&dir).unwrap();
    let mut expected = vec![
        Pair::new("Description", "Description"),
        Pair::new("Error: %s", "Erreur : %s"),
        Pair::new("File", "Fichier"),
        Pair::new("Open", "Ouvrir"),
        Pair::new("Set LC_ALL now", "Définir LC_ALL maintenant"),
        Pair::new("Save As…", "Enregistrer sous…"),
    ];
    // a.mo's entries come first (sorted by msgid inside the file), so "Open" keeps a.mo's translation.
    let mut got = pairs.clone();
    got.sort_by(|a, b| a.src.cmp(&b.src));
    expected.sort_by(|a, b| a.src.cmp(&b.src));
    assert_eq!(got, expected);
    let expected_stats = GettextStats {
        files: 2,
        entries: 11,
        kept: 6,
        dropped_format_only: 2,
        dropped_duplicate: 1,
        dropped_other: 2,
    };
    assert_eq!(stats, expected_stats);
    // Deterministic: same result on a second run.
    assert_eq!(extract_gettext_pairs(&dir).unwrap().0, pairs);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extract_errors_name_the_culprit() {
    let dir = temp_dir("extract_errors");
    let err = extract_gettext_pairs(&dir).unwrap_err().to_string();
    assert!(err.contains("no .mo files"), "{err}");
    std::fs::write(dir.join("broken.mo"), b"short").unwrap();
    let err = extract_gettext_pairs(&dir).unwrap_err().to_string();
    assert!(err.contains("broken.mo"), "{err}");
    let err = extract_gettext_pairs(&dir.join("absent")).unwrap_err().to_string();
    assert!(err.contains("absent") && err.contains("cannot list"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
