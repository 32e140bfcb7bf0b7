//! The files an import reads, each turned into one shape — a header row and a stream of rows
//! of text cells — so every import (contacts, accounts, orders) handles CSV, XLSX and vCard
//! alike. All three stream: CSV through the decoder, XLSX cell by cell on a reader thread
//! (bounded channel), vCard card by card; memory stays bounded whatever the file's size.

use std::io::{BufRead, BufReader, Read, Seek};
use std::sync::mpsc;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use guanxi_platform::error::Result;
use guanxi_platform::Error;

/// The file formats an import reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Csv,
    Xlsx,
    Vcard,
}

impl Format {
    /// From a file name's extension (`.xlsx`, `.vcf`, else CSV).
    pub fn of_name(name: &str) -> Format {
        let n = name.to_lowercase();
        if n.ends_with(".xlsx") {
            Format::Xlsx
        } else if n.ends_with(".vcf") || n.ends_with(".vcard") {
            Format::Vcard
        } else {
            Format::Csv
        }
    }
}

/// How a CSV file's text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Utf8,
    Gb18030,
}

/// Decides the encoding from the file's first bytes (`whole`: they are the whole file): UTF-8
/// when they are valid UTF-8 (a character cut at the end of a partial sample is allowed),
/// GB18030 (a superset of GBK) when they decode without error, otherwise refused.
pub fn detect(sample: &[u8], whole: bool) -> std::result::Result<Encoding, Error> {
    match std::str::from_utf8(sample) {
        Ok(_) => return Ok(Encoding::Utf8),
        Err(e) if e.error_len().is_none() && !whole => return Ok(Encoding::Utf8),
        Err(_) => {}
    }
    let (_, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(sample);
    if had_errors {
        Err(Error::field("file", "unknown_encoding"))
    } else {
        Ok(Encoding::Gb18030)
    }
}

/// One row: its 1-based line (or record number) and its cells, or why it could not be read.
pub type RowResult = std::result::Result<(u64, Vec<String>), (u64, String)>;

/// A file as a table.
pub struct Table {
    pub headers: Vec<String>,
    /// CSV only.
    pub encoding: Option<Encoding>,
    pub rows: Box<dyn Iterator<Item = RowResult> + Send>,
}

/// What any import reads at most — a file past a bound is refused with a clear error, and
/// memory stays flat whatever the file holds (a 1.9 MB XLSX whose one cell inflated to
/// gigabytes once took the server to 5.9 GB):
/// rows (cards) per file, as many as Excel holds.
pub const MAX_ROWS: u64 = 1_048_576;
/// Columns per row.
pub const MAX_COLUMNS: usize = 1_024;
/// Characters per cell, Excel's own limit.
pub const MAX_CELL_CHARS: usize = 32_767;
/// Bytes an XLSX workbook may inflate to, all its parts together.
pub const XLSX_MAX_INFLATED: u64 = 1 << 30;
/// An XLSX part larger than [`XLSX_SMALL_PART`] may inflate to at most this many times its
/// compressed size (spreadsheet XML deflates 5–30×; bombs, thousands of times).
pub const XLSX_MAX_RATIO: u64 = 200;
pub const XLSX_SMALL_PART: u64 = 16 << 20;

/// Opens `input` as `format`; its rows come bounded ([`MAX_ROWS`], [`MAX_COLUMNS`],
/// [`MAX_CELL_CHARS`]).
pub fn open<R: Read + Seek + Send + 'static>(format: Format, input: R) -> Result<Table> {
    let table = match format {
        Format::Csv => csv(input),
        Format::Xlsx => xlsx(input),
        Format::Vcard => vcard(input),
    }?;
    if table.headers.len() > MAX_COLUMNS {
        return Err(Error::field("file", "too_many_columns"));
    }
    Ok(Table {
        rows: bounded(table.rows),
        ..table
    })
}

/// Rows past the bounds: a row with too many columns or too long a cell is an error row; the
/// row after the last allowed one ends the file with an error.
fn bounded(
    rows: Box<dyn Iterator<Item = RowResult> + Send>,
) -> Box<dyn Iterator<Item = RowResult> + Send> {
    let mut seen = 0u64;
    let mut done = false;
    let mut rows = rows;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let row = rows.next()?;
        seen += 1;
        if seen > MAX_ROWS {
            done = true;
            let line = match &row {
                Ok((l, _)) | Err((l, _)) => *l,
            };
            return Some(Err((line, "too_many_rows".into())));
        }
        Some(match row {
            Ok((line, cells)) if cells.len() > MAX_COLUMNS => {
                Err((line, "too_many_columns".into()))
            }
            Ok((line, cells))
                if cells
                    .iter()
                    .any(|c| c.chars().nth(MAX_CELL_CHARS).is_some()) =>
            {
                Err((line, "cell_too_long".into()))
            }
            other => other,
        })
    }))
}

/// Reads every part of an XLSX workbook through to the end without keeping it, refusing one
/// that inflates past [`XLSX_MAX_INFLATED`] in all or [`XLSX_MAX_RATIO`] times its compressed
/// size — before the spreadsheet reader holds any of it in memory.
pub fn check_xlsx<R: Read + Seek>(input: &mut R) -> Result<()> {
    let not_xlsx = || Error::field("file", "not_xlsx");
    let too_large = || Error::field("file", "xlsx_too_large");
    {
        let mut zip = zip::ZipArchive::new(&mut *input).map_err(|_| not_xlsx())?;
        let mut total = 0u64;
        for i in 0..zip.len() {
            let part = zip.by_index(i).map_err(|_| not_xlsx())?;
            let cap = XLSX_SMALL_PART
                .max(part.compressed_size().saturating_mul(XLSX_MAX_RATIO))
                .min(XLSX_MAX_INFLATED - total);
            let n = std::io::copy(&mut part.take(cap + 1), &mut std::io::sink())
                .map_err(|_| not_xlsx())?;
            if n > cap {
                return Err(too_large());
            }
            total += n;
        }
    }
    input
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::BadRequest(format!("reading the file: {e}")))?;
    Ok(())
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab or carriage return
/// first — the OWASP rule) gets a leading `'`, which Excel and WPS show as text; the importer
/// takes it off again ([`csv_unsafe`]), so an export imports back unchanged.
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Undoes [`csv_safe`] on a cell read from a CSV file.
pub fn csv_unsafe(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "unknown_encoding".into(),
        _ => "unreadable_row".into(),
    }
}

/// CSV in UTF-8 (with or without BOM) or GBK/GB18030, detected from the first 64 KB.
pub fn csv<R: Read + Send + 'static>(mut input: R) -> Result<Table> {
    let mut sample = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while filled < sample.len() {
        let n = input
            .read(&mut sample[filled..])
            .map_err(|e| Error::BadRequest(format!("reading the file: {e}")))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let whole = filled < sample.len();
    sample.truncate(filled);
    let encoding = detect(&sample, whole)?;
    let chained = std::io::Cursor::new(sample).chain(input);
    let decoded: Box<dyn Read + Send> = match encoding {
        Encoding::Utf8 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::UTF_8))
                .bom_override(true)
                .build(chained),
        ),
        Encoding::Gb18030 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GB18030))
                .build(chained),
        ),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(decoded);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::field("file", &csv_reason(&e)))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut record = csv::StringRecord::new();
    let rows = std::iter::from_fn(move || {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => Some(Ok((
                line,
                record.iter().map(|c| csv_unsafe(c).to_owned()).collect(),
            ))),
            Err(e) => Some(Err((line, csv_reason(&e)))),
        }
    });
    Ok(Table {
        headers,
        encoding: Some(encoding),
        rows: Box::new(rows),
    })
}

/// A cell of a spreadsheet as text: numbers as written (`12`, not `12.0`), dates as
/// `YYYY-MM-DD` (with ` HH:MM` when there is a time).
fn cell_text(v: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef as D;
    match v {
        D::Empty => String::new(),
        D::String(s) => s.clone(),
        D::SharedString(s) => (*s).to_owned(),
        D::Int(i) => i.to_string(),
        D::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (*f as i64).to_string(),
        D::Float(f) => f.to_string(),
        D::Bool(b) => b.to_string(),
        D::DateTime(d) => excel_date(d.as_f64()),
        D::DateTimeIso(s) | D::DurationIso(s) => s.clone(),
        D::Error(_) => String::new(),
    }
}

/// An Excel serial date (days since 1899-12-30) as text.
fn excel_date(serial: f64) -> String {
    let Some(epoch) = NaiveDate::from_ymd_opt(1899, 12, 30) else {
        return serial.to_string();
    };
    let days = serial.trunc() as i64;
    let secs = ((serial.fract()) * 86_400.0).round() as i64;
    let Some(date) = epoch.checked_add_signed(Duration::days(days)) else {
        return serial.to_string();
    };
    if secs == 0 {
        date.format("%Y-%m-%d").to_string()
    } else {
        let t = date
            .and_hms_opt(0, 0, 0)
            .map(|d| d + Duration::seconds(secs));
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }
}

/// The first worksheet of an XLSX workbook, read cell by cell on a thread that hands over one
/// row at a time (the channel holds a few rows; the whole sheet is never in memory).
pub fn xlsx<R: Read + Seek + Send + 'static>(mut input: R) -> Result<Table> {
    use calamine::Reader;
    check_xlsx(&mut input)?;
    let (tx, rx) = mpsc::sync_channel::<RowResult>(64);
    let (head_tx, head_rx) = mpsc::sync_channel::<std::result::Result<Vec<String>, String>>(1);
    std::thread::spawn(move || {
        let mut book: calamine::Xlsx<R> = match calamine::Xlsx::new(input) {
            Ok(b) => b,
            Err(_) => {
                let _ = head_tx.send(Err("not_xlsx".into()));
                return;
            }
        };
        let Some(sheet) = book.sheet_names().first().cloned() else {
            let _ = head_tx.send(Err("not_xlsx".into()));
            return;
        };
        let mut cells = match book.worksheet_cells_reader(&sheet) {
            Ok(c) => c,
            Err(_) => {
                let _ = head_tx.send(Err("not_xlsx".into()));
                return;
            }
        };
        let mut current: Option<(u32, Vec<String>)> = None;
        let mut header_sent = false;
        let mut send = |row: u32, cells: Vec<String>| -> bool {
            if !header_sent {
                header_sent = true;
                return head_tx.send(Ok(cells)).is_ok();
            }
            tx.send(Ok((u64::from(row) + 1, cells))).is_ok()
        };
        loop {
            match cells.next_cell() {
                Ok(Some(c)) => {
                    let (r, col) = c.get_position();
                    let text = cell_text(c.get_value());
                    if current.as_ref().is_some_and(|(cr, _)| *cr != r) {
                        if let Some((cr, row)) = current.take() {
                            if !send(cr, row) {
                                return;
                            }
                        }
                    }
                    let (_, row) = current.get_or_insert_with(|| (r, Vec::new()));
                    let col = col as usize;
                    if col > 16_384 {
                        continue;
                    }
                    if row.len() <= col {
                        row.resize(col + 1, String::new());
                    }
                    row[col] = text;
                }
                Ok(None) => break,
                Err(_) => {
                    let r = current
                        .as_ref()
                        .map(|(r, _)| u64::from(*r) + 1)
                        .unwrap_or(0);
                    let _ = tx.send(Err((r, "unreadable_row".into())));
                    break;
                }
            }
        }
        if let Some((r, row)) = current.take() {
            send(r, row);
        }
        if !header_sent {
            let _ = head_tx.send(Ok(vec![]));
        }
    });
    let headers = match head_rx.recv() {
        Ok(Ok(h)) => h,
        Ok(Err(code)) => return Err(Error::field("file", &code)),
        Err(_) => return Err(Error::field("file", "not_xlsx")),
    };
    Ok(Table {
        headers,
        encoding: None,
        rows: Box::new(rx.into_iter()),
    })
}

/// The columns a vCard becomes.
pub const VCARD_HEADERS: &[&str] = &[
    "name",
    "family_name",
    "given_name",
    "phone",
    "email",
    "account",
    "title",
    "department",
    "address",
    "city",
    "province",
    "notes",
    "birthday",
];

/// Undoes vCard text escaping (`\,` `\;` `\n` `\\`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a structured value on unescaped `;`.
fn parts(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in v.chars() {
        match (escaped, c) {
            (false, '\\') => {
                escaped = true;
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
            (false, ';') => out.push(String::new()),
            _ => {
                escaped = false;
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out.into_iter().map(|p| unescape(&p)).collect()
}

/// One card's properties as a row of [`VCARD_HEADERS`]; the first phone and email win (the
/// preferred one when marked).
pub fn card_row(lines: &[String]) -> Vec<String> {
    let mut row = vec![String::new(); VCARD_HEADERS.len()];
    let mut set = |field: &str, v: String, prefer: bool| {
        if let Some(i) = VCARD_HEADERS.iter().position(|h| *h == field) {
            if row[i].is_empty() || prefer {
                row[i] = v.trim().to_owned();
            }
        }
    };
    for line in lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut params = key.split(';');
        let name = params.next().unwrap_or("").to_uppercase();
        // `item1.TEL` (Apple) → `TEL`.
        let name = name.rsplit('.').next().unwrap_or("").to_owned();
        let prefer = params.any(|p| {
            let p = p.to_uppercase();
            p.contains("PREF")
        });
        match name.as_str() {
            "FN" => set("name", unescape(value), false),
            "N" => {
                let p = parts(value);
                set("family_name", p.first().cloned().unwrap_or_default(), false);
                set("given_name", p.get(1).cloned().unwrap_or_default(), false);
            }
            "TEL" => set("phone", unescape(value.trim_start_matches("tel:")), prefer),
            "EMAIL" => set("email", unescape(value), prefer),
            "ORG" => {
                let p = parts(value);
                set("account", p.first().cloned().unwrap_or_default(), false);
                set("department", p.get(1).cloned().unwrap_or_default(), false);
            }
            "TITLE" => set("title", unescape(value), false),
            "NOTE" => set("notes", unescape(value), false),
            "BDAY" => set("birthday", unescape(value), false),
            "ADR" => {
                // PO box; extended; street; locality; region; postal code; country
                let p = parts(value);
                set("address", p.get(2).cloned().unwrap_or_default(), false);
                set("city", p.get(3).cloned().unwrap_or_default(), false);
                set("province", p.get(4).cloned().unwrap_or_default(), false);
            }
            _ => {}
        }
    }
    // A card with only N gets its name from it, in Chinese order (family name first) when
    // the parts are Chinese.
    let (name, family, given) = (0, 1, 2);
    if row[name].is_empty() {
        let (f, g) = (row[family].clone(), row[given].clone());
        let cjk = f
            .chars()
            .chain(g.chars())
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        row[name] = if cjk {
            format!("{f}{g}")
        } else {
            format!("{g} {f}").trim().to_owned()
        };
    }
    row
}

/// vCard 2.1/3.0/4.0 (UTF-8): one row per card. Folded lines are unfolded; quoted-printable
/// and other encodings are not decoded (such values are imported as written).
pub fn vcard<R: Read + Send + 'static>(input: R) -> Result<Table> {
    let mut lines = BufReader::new(input).lines();
    let mut number = 0u64;
    let rows = std::iter::from_fn(move || {
        let mut card: Option<Vec<String>> = None;
        loop {
            let line = match lines.next() {
                None => {
                    return card.map(|c| {
                        number += 1;
                        Err::<(u64, Vec<String>), _>((
                            number,
                            format!("unterminated card ({})", c.len()),
                        ))
                    });
                }
                Some(Err(_)) => {
                    number += 1;
                    return Some(Err((number, "unknown_encoding".into())));
                }
                Some(Ok(l)) => l.trim_end_matches('\r').to_owned(),
            };
            let line = line.trim_start_matches('\u{feff}').to_owned();
            match &mut card {
                None if line.eq_ignore_ascii_case("BEGIN:VCARD") => card = Some(vec![]),
                None => {}
                Some(c) if line.eq_ignore_ascii_case("END:VCARD") => {
                    number += 1;
                    return Some(Ok((number, card_row(c))));
                }
                Some(c) if line.starts_with(' ') || line.starts_with('\t') => {
                    if let Some(last) = c.last_mut() {
                        last.push_str(&line[1..]);
                    }
                }
                Some(c) => c.push(line),
            }
        }
    });
    Ok(Table {
        headers: VCARD_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
        encoding: None,
        rows: Box::new(rows),
    })
}

/// A reader that counts the bytes read (for import progress bars).
pub struct Counted<R> {
    pub inner: R,
    pub read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cards_become_rows() {
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:张三丰\r\nN:张;三丰;;;\r\nTEL;TYPE=CELL:138 0013 8000\r\n\
                    TEL;TYPE=WORK,PREF:010-6234 5678\r\nEMAIL:zsf@wudang.cn\r\nORG:武当派\\, 总坛;掌门办公室\r\n\
                    NOTE:第一行\\n第二\r\n  行\r\nEND:VCARD\r\nBEGIN:VCARD\r\nN:Smith;Jane;;;\r\nEND:VCARD\r\n";
        let t = vcard(std::io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let rows: Vec<_> = t.rows.collect();
        assert_eq!(rows.len(), 2);
        let (n, first) = rows[0].clone().unwrap();
        assert_eq!(n, 1);
        let get = |row: &Vec<String>, f: &str| {
            row[VCARD_HEADERS.iter().position(|h| *h == f).unwrap()].clone()
        };
        assert_eq!(get(&first, "name"), "张三丰");
        assert_eq!(get(&first, "phone"), "010-6234 5678", "the preferred one");
        assert_eq!(get(&first, "account"), "武当派, 总坛");
        assert_eq!(get(&first, "department"), "掌门办公室");
        assert_eq!(get(&first, "notes"), "第一行\n第二 行");
        let (_, second) = rows[1].clone().unwrap();
        assert_eq!(get(&second, "name"), "Jane Smith");
    }

    #[test]
    fn formula_cells_are_neutralised_and_read_back() {
        for cell in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+8613800138000",
            "-5",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let safe = csv_safe(cell);
            assert!(safe.starts_with('\''), "{cell}");
            assert_eq!(csv_unsafe(&safe), cell);
        }
        for cell in ["张三", "13800138000", "'quoted", "a=b", ""] {
            assert_eq!(csv_safe(cell), cell);
            assert_eq!(csv_unsafe(cell), cell);
        }
    }

    #[test]
    fn excel_dates() {
        assert_eq!(excel_date(45_000.0), "2023-03-15");
        assert_eq!(excel_date(45_000.5), "2023-03-15 12:00");
    }

    proptest! {
        /// Any text at all: the vCard reader never panics and yields at most one row per card.
        #[test]
        fn vcard_never_panics(s in "(BEGIN:VCARD\r\n|END:VCARD\r\n|[A-Z;=,:\\\\ \u{4e00}-\u{4e10}a-z0-9\r\n]{0,40}){0,12}") {
            let cards = s.matches("BEGIN:VCARD").count();
            let t = vcard(std::io::Cursor::new(s.into_bytes())).unwrap();
            let n = t.rows.count();
            prop_assert!(n <= cards + 1);
        }

        /// A card's escaped text comes back as written.
        #[test]
        fn escaping_round_trips(v in "[a-z\u{4e00}-\u{4e20},;\\\\ ]{0,30}") {
            let escaped = v.replace('\\', "\\\\").replace(',', "\\,").replace(';', "\\;");
            let row = card_row(&[format!("TITLE:{escaped}")]);
            let title = &row[VCARD_HEADERS.iter().position(|h| *h == "title").unwrap()];
            prop_assert_eq!(title.as_str(), v.trim());
        }
    }
}
