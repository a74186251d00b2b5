//! Plain-text tables and sizes for the terminal and logs.

/// A byte count as people read it: `812 KiB`, `12.3 MiB`, `4.20 GiB`.
pub fn mib(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=1_048_575 => format!("{:.0} KiB", b / 1024.0),
        1_048_576..=1_073_741_823 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// Formats rows as an aligned Markdown-style table under `header`.
///
/// Cells are left-aligned; each column is as wide as its widest cell. Rows shorter
/// than the header are padded with empty cells.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let ncol = header.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let cell = |r: &[String], i: usize| r.get(i).map(String::as_str).unwrap_or("").to_string();
    let mut width = vec![0usize; ncol];
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, w) in width.iter_mut().enumerate() {
            *w = (*w).max(cell(r, i).chars().count());
        }
    }
    let line = |r: &[String]| {
        let cells: Vec<String> = (0..ncol).map(|i| format!("{:<w$}", cell(r, i), w = width[i])).collect();
        format!("| {} |", cells.join(" | "))
    };
    let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = vec![line(header), format!("|-{}-|", rule.join("-|-"))];
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

/// Largest |a − b| over all elements of two same-shaped tensors (any dtype,
/// any devices), computed in f64 on the CPU. 0 for empty tensors.
pub fn max_abs_diff(a: &tch::Tensor, b: &tch::Tensor) -> crate::Result<f64> {
    if a.size() != b.size() {
        return Err(crate::Error::Shape {
            what: "max_abs_diff(a, b)".into(),
            expected: format!("b shaped like a {:?}", a.size()),
            got: b.size(),
        });
    }
    if a.numel() == 0 {
        return Ok(0.0);
    }
    let host = |t: &tch::Tensor| t.f_to_device(tch::Device::Cpu)?.f_to_kind(tch::Kind::Double);
    Ok(host(a)?.f_sub(&host(b)?)?.f_abs()?.f_max()?.f_double_value(&[])?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_the_unit_that_fits() {
        assert_eq!(super::mib(3 << 10), "3 KiB");
        assert_eq!(super::mib(12_900_000), "12.3 MiB");
        assert_eq!(super::mib(4_509_715_660), "4.20 GiB");
    }

    #[test]
    fn columns_align_to_the_widest_cell() {
        let h = vec!["name".to_string(), "x".to_string()];
        let rows = vec![vec!["a".to_string(), "12345".to_string()], vec!["long name".to_string()]];
        let t = super::table(&h, &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.chars().count() == lines[0].chars().count()), "{t}");
        assert_eq!(lines[3], "| long name |       |");
    }
}
