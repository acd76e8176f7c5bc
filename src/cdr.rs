//! Huawei CEC call detail records (CDRs): the `…_call_N.csv` files that
//! CC-FS `queryBillData` delivers in `yyyyMMdd_<responseId>.zip` bundles, or
//! the same CSV on its own. A row is one leg of a call. Read as Huawei writes
//! them: a header row when there is one (else the documented column order),
//! UTF-8 with or without a BOM, quoted fields, CRLF; times in the zone the
//! caller gives. Rows are streamed in batches: a day of a large tenant's
//! CDRs is never held whole.

use std::io::Read;
use std::path::Path;

use crate::tz::ServerZone;

/// The documented columns, in their documented order.
pub const COLUMNS: [&str; 21] = [
    "developer",
    "account_id",
    "cc_id",
    "agent_id",
    "call_id",
    "caller_no",
    "callee_no",
    "wait_begin",
    "wait_end",
    "ack_begin",
    "ack_end",
    "call_begin",
    "call_end",
    "device_type",
    "device_no",
    "call_type",
    "release_cause",
    "call_id_num",
    "vdn_id",
    "pre_device_type",
    "pre_device_no",
];

/// The time columns, stored as epoch ms.
pub const TIME_COLUMNS: [&str; 6] = ["wait_begin", "wait_end", "ack_begin", "ack_end", "call_begin", "call_end"];

/// The columns stored as text, exactly as in the file.
pub const TEXT_COLUMNS: [&str; 12] = [
    "developer",
    "account_id",
    "cc_id",
    "agent_id",
    "caller_no",
    "callee_no",
    "device_no",
    "call_type",
    "release_cause",
    "vdn_id",
    "pre_device_type",
    "pre_device_no",
];

/// The columns of a stored leg (`cdr_legs`), in the order of [`Leg::values`].
pub fn stored_columns() -> Vec<&'static str> {
    let mut columns = vec!["call_id", "call_id_num", "device_type"];
    columns.extend(TIME_COLUMNS);
    columns.extend(TEXT_COLUMNS);
    columns.push("extra_json");
    columns
}

/// `device_type` of a leg in the IVR (its `device_no` is the flow).
pub const IVR: i64 = 3;

/// Legs handed to the caller at a time.
pub const BATCH: usize = 2_000;

/// Bad lines named in a report; the rest are counted.
const NAMED: usize = 5;

/// One leg of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub call_id: String,
    /// 1, 2, 3 … and −1 on the call's last leg.
    pub call_id_num: i64,
    /// 1 skill queue, 2 agent, 3 IVR flow.
    pub device_type: Option<i64>,
    /// [`TIME_COLUMNS`], epoch ms.
    pub times: [Option<i64>; 6],
    /// [`TEXT_COLUMNS`].
    pub texts: [Option<String>; 12],
    /// Columns beyond the documented ones, as a JSON object; `None` when none.
    pub extra_json: Option<String>,
}

impl Leg {
    pub fn call_begin(&self) -> Option<i64> {
        self.times[4]
    }

    pub fn call_end(&self) -> Option<i64> {
        self.times[5]
    }

    /// The leg's values in the order of [`stored_columns`]: integers, then text.
    pub fn values(&self) -> (Vec<Option<i64>>, Vec<Option<&str>>) {
        let mut ints = vec![Some(self.call_id_num), self.device_type];
        ints.extend(self.times);
        let mut texts: Vec<Option<&str>> = self.texts.iter().map(Option::as_deref).collect();
        texts.push(self.extra_json.as_deref());
        (ints, texts)
    }
}

/// What reading one file (or one archive) found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileRead {
    /// CDR rows read (legs).
    pub rows: u64,
    /// Lines that are not CDR rows.
    pub bad_count: u64,
    /// The first few of them, as `file:line: why`.
    pub bad: Vec<String>,
}

impl FileRead {
    fn bad_line(&mut self, file: &str, line: u64, why: String) {
        self.bad_count += 1;
        if self.bad.len() < NAMED {
            self.bad.push(format!("{file}:{line}: {why}"));
        }
    }

    /// Adds what another file read found; the first few bad lines stay named.
    pub fn add(&mut self, other: FileRead) {
        self.rows += other.rows;
        for line in other.bad {
            if self.bad.len() < NAMED {
                self.bad.push(line);
            }
        }
        self.bad_count += other.bad_count;
    }
}

/// Why a whole file is refused (tried again at the next pass).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{file}: {msg}")]
    Refused { file: String, msg: String },
    /// The caller's sink failed (the store): the file stays unread.
    #[error("{0}")]
    Sink(String),
}

/// Whether `path` is a file the CDR readers take: `*.csv` or `*.zip`.
pub fn is_cdr_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("zip"))
}

/// Reads a `.csv` or `.zip` file, handing legs to `sink` [`BATCH`] at a time.
pub fn read_file(
    path: &Path,
    zone: &ServerZone,
    sink: &mut dyn FnMut(&[Leg]) -> Result<(), String>,
) -> Result<FileRead, FileError> {
    let name = path.display().to_string();
    let refused = |msg: String| FileError::Refused { file: name.clone(), msg };
    let file = std::fs::File::open(path).map_err(|e| refused(format!("cannot be read: {e}")))?;
    let zipped = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !zipped {
        return read_csv(std::io::BufReader::new(file), &name, zone, sink);
    }
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| refused(format!("is not a readable zip: {e}")))?;
    let mut total = FileRead::default();
    for i in 0..archive.len() {
        let member = archive.by_index(i).map_err(|e| refused(format!("member {i} cannot be read: {e}")))?;
        let member_name = member.name().map(|n| n.to_string()).unwrap_or_else(|_| format!("member {i}"));
        // The bundle's recording indexes (`…_record_N.csv`) are not CDRs.
        if !member_name.to_ascii_lowercase().ends_with(".csv") || member_name.contains("_record_") {
            continue;
        }
        let shown = format!("{name}!{member_name}");
        total.add(read_csv(std::io::BufReader::new(member), &shown, zone, sink)?);
    }
    Ok(total)
}

/// Reads CDR rows from CSV text. A header row is taken when its fields name
/// `call_id`; a file whose header lacks it is refused; a file without one
/// is read in the documented order.
pub fn read_csv(
    input: impl Read,
    name: &str,
    zone: &ServerZone,
    sink: &mut dyn FnMut(&[Leg]) -> Result<(), String>,
) -> Result<FileRead, FileError> {
    let refused = |msg: String| FileError::Refused { file: name.to_string(), msg };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
    let mut read = FileRead::default();
    let mut columns: Option<Vec<String>> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A line the CSV reader cannot take (bad UTF-8 is read below): named, skipped.
                read.bad_line(name, line, e.to_string());
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let fields: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        if first {
            first = false;
            let names: Vec<String> =
                fields.iter().map(|f| f.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()).collect();
            let is_header = names.iter().any(|n| COLUMNS.contains(&n.as_str()));
            if is_header {
                if !names.iter().any(|n| n == "call_id") {
                    return Err(refused(format!(
                        "its header has no call_id column (found {}); is it a CDR file?",
                        names.join(",")
                    )));
                }
                columns = Some(names);
                continue;
            }
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match leg(&fields, columns.as_deref(), zone) {
            Ok(leg) => {
                read.rows += 1;
                batch.push(leg);
                if batch.len() == BATCH {
                    sink(&batch).map_err(FileError::Sink)?;
                    batch.clear();
                }
            }
            Err(why) => read.bad_line(name, line, why),
        }
    }
    if !batch.is_empty() {
        sink(&batch).map_err(FileError::Sink)?;
    }
    Ok(read)
}

/// One row as a leg; `columns` are the header's names (else the documented order).
fn leg(fields: &[String], columns: Option<&[String]>, zone: &ServerZone) -> Result<Leg, String> {
    let documented: Vec<String>;
    let names: &[String] = match columns {
        Some(c) => c,
        None => {
            if fields.len() < COLUMNS.len() {
                return Err(format!("{} fields, a CDR row has {} or more", fields.len(), COLUMNS.len()));
            }
            documented = COLUMNS.iter().map(|c| c.to_string()).collect();
            &documented
        }
    };
    let get = |column: &str| -> Option<&str> {
        names.iter().position(|n| n == column).and_then(|i| fields.get(i)).map(|v| v.trim()).filter(|v| !v.is_empty())
    };
    let call_id = get("call_id").ok_or("no call_id")?.to_string();
    let int = |column: &str| -> Result<Option<i64>, String> {
        get(column).map(|v| v.parse::<i64>().map_err(|_| format!("{column} {v:?} is not a whole number"))).transpose()
    };
    let call_id_num = int("call_id_num")?.unwrap_or(-1);
    let device_type = int("device_type")?;
    let mut times = [None; 6];
    for (slot, column) in times.iter_mut().zip(TIME_COLUMNS) {
        *slot = get(column)
            .map(|v| {
                zone.parse_time(v)
                    .map(|s| s * 1000)
                    .map_err(|_| format!("{column} {v:?} is not a time like 2026-11-02 08:00:00"))
            })
            .transpose()?;
    }
    let texts = TEXT_COLUMNS.map(|c| get(c).map(str::to_string));
    let mut extra = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        if !COLUMNS.contains(&name.as_str())
            && let Some(v) = fields.get(i).filter(|v| !v.is_empty())
        {
            let key = if name.is_empty() { format!("column_{}", i + 1) } else { name.clone() };
            extra.insert(key, serde_json::Value::String(v.clone()));
        }
    }
    if columns.is_none() {
        for (i, v) in fields.iter().enumerate().skip(COLUMNS.len()).filter(|(_, v)| !v.is_empty()) {
            extra.insert(format!("column_{}", i + 1), serde_json::Value::String(v.clone()));
        }
    }
    let extra_json = (!extra.is_empty()).then(|| serde_json::Value::Object(extra).to_string());
    Ok(Leg { call_id, call_id_num, device_type, times, texts, extra_json })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Leg>, Result<FileRead, FileError>) {
        let zone = ServerZone::parse("+08:00").unwrap();
        let mut legs = Vec::new();
        let result = read_csv(text.as_bytes(), "t.csv", &zone, &mut |b| {
            legs.extend_from_slice(b);
            Ok(())
        });
        (legs, result)
    }

    const ROW: &str =
        "dev,acc,cc1,,c-1,13800000000,95555,,,,,2026-11-02 08:00:00,2026-11-02 08:03:00,3,flow-9,0,,-1,vdn1,,";

    #[test]
    fn a_row_without_a_header_is_read_in_the_documented_order() {
        let (legs, read) = read(&format!("{ROW}\r\n"));
        assert_eq!(read.unwrap().rows, 1);
        let leg = &legs[0];
        assert_eq!((leg.call_id.as_str(), leg.call_id_num, leg.device_type), ("c-1", -1, Some(3)));
        // 08:00 at +08:00 is 00:00 UTC.
        assert_eq!(leg.call_begin(), Some(1_793_577_600_000));
        assert_eq!(leg.texts[6].as_deref(), Some("flow-9"));
        assert_eq!(leg.extra_json, None);
    }

    #[test]
    fn a_header_with_a_bom_quoted_fields_and_extra_columns() {
        let text = "\u{feff}call_id,call_id_num,device_type,call_begin,caller_no,note\r\n\
                    \"c,2\",1,3,2026-11-02 08:00:00,\"138\",\"said \"\"hi\"\"\"\r\n";
        let (legs, read) = read(text);
        assert_eq!(read.unwrap().rows, 1);
        assert_eq!(legs[0].call_id, "c,2");
        assert_eq!(legs[0].texts[4].as_deref(), Some("138"));
        assert_eq!(legs[0].extra_json.as_deref(), Some(r#"{"note":"said \"hi\""}"#));
    }

    #[test]
    fn garbage_lines_are_named_and_the_rest_read() {
        let text = format!("{ROW}\nnot a cdr line\n{}\n{ROW}\n", ROW.replace("2026-11-02 08:00:00", "yesterday"));
        let (legs, read) = read(&text);
        let read = read.unwrap();
        assert_eq!((legs.len(), read.rows, read.bad_count), (2, 2, 2));
        assert!(read.bad[0].starts_with("t.csv:2:"), "{:?}", read.bad);
        assert!(read.bad[1].starts_with("t.csv:3:") && read.bad[1].contains("call_begin"), "{:?}", read.bad);
    }

    #[test]
    fn a_header_without_call_id_refuses_the_file() {
        let (_, read) = read("developer,account_id,caller_no\nx,y,z\n");
        assert!(matches!(read, Err(FileError::Refused { .. })), "{read:?}");
    }
}
