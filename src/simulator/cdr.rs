//! The simulated tenant's call detail records, consistent with its calls:
//! each call (its records' `ctiCallId`, else `callId`) has an IVR leg over the sessions'
//! span; some go on to a skill queue and an agent; some calls never reach
//! the IVR (agent only). Written as CC-FS delivers them: a
//! `yyyyMMdd_<responseId>.zip` a day holding `…_call_1.csv` (with a header)
//! and `…_record_1.csv`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::SimRecord;
use crate::cdr::COLUMNS;
use crate::tz::ServerZone;

/// One leg, as the simulator knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLeg {
    pub call_id: String,
    pub call_id_num: i64,
    /// 1 skill queue, 2 agent, 3 IVR.
    pub device_type: i64,
    pub caller_no: String,
    pub callee_no: String,
    /// Epoch ms.
    pub call_begin: i64,
    pub call_end: i64,
    pub device_no: String,
}

/// The call ID of `r`'s call in the CDR files: its `ctiCallId`, else (the
/// API left it out) its `callId`.
pub fn cdr_call_id(r: &SimRecord) -> &str {
    r.cti_call_id.as_deref().unwrap_or(&r.call_id)
}

/// The legs of the tenant's calls: per call, an IVR leg
/// from its first session's start to its last one's end; one call in three
/// then a queue leg and an agent leg; and one agent-only call for every ten.
pub fn legs(records: &[SimRecord], seed: u64) -> Vec<SimLeg> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xcd2);
    let mut calls: BTreeMap<&str, (i64, i64, &SimRecord)> = BTreeMap::new();
    for r in records {
        let cti = cdr_call_id(r);
        let end = r.end_time.unwrap_or(r.start_time);
        let entry = calls.entry(cti).or_insert((r.start_time, end, r));
        entry.0 = entry.0.min(r.start_time);
        entry.1 = entry.1.max(end);
    }
    let mut out = Vec::new();
    for (n, (cti, (begin, end, r))) in calls.into_iter().enumerate() {
        let caller = r.calling_number.clone().unwrap_or_default();
        let callee = r.called_number.clone().unwrap_or_default();
        let leg = |num, device_type, call_begin, call_end, device_no: String| SimLeg {
            call_id: cti.to_string(),
            call_id_num: num,
            device_type,
            caller_no: caller.clone(),
            callee_no: callee.clone(),
            call_begin,
            call_end,
            device_no,
        };
        if rng.u32(0..3) == 0 {
            let queued = end + rng.i64(5_000..60_000);
            let talked = queued + rng.i64(60_000..600_000);
            out.push(leg(1, 3, begin, end, r.flow_inst_id.clone().unwrap_or_else(|| "flow-1".into())));
            out.push(leg(2, 1, end, queued, "skill-7".into()));
            out.push(leg(-1, 2, queued, talked, format!("agent-{}", 100 + n % 50)));
        } else {
            out.push(leg(-1, 3, begin, end, r.flow_inst_id.clone().unwrap_or_else(|| "flow-1".into())));
        }
        if n % 10 == 5 {
            let at = begin + rng.i64(1_000..3_600_000);
            out.push(SimLeg {
                call_id: format!("agent-only-{cti}"),
                call_id_num: -1,
                device_type: 2,
                caller_no: caller.clone(),
                callee_no: "95555".into(),
                call_begin: at,
                call_end: at + rng.i64(60_000..600_000),
                device_no: format!("agent-{}", 100 + n % 50),
            });
        }
    }
    out
}

/// A CDR row in the documented column order, times in `zone`.
pub fn row(l: &SimLeg, zone: &ServerZone) -> Vec<String> {
    let time = |ms: i64| zone.format(ms.div_euclid(1000));
    COLUMNS
        .iter()
        .map(|c| match *c {
            "developer" => "dev-1".to_string(),
            "account_id" => "acc-1".to_string(),
            "cc_id" => "1".to_string(),
            "agent_id" => l.device_no.strip_prefix("agent-").unwrap_or("").to_string(),
            "call_id" => l.call_id.clone(),
            "caller_no" => l.caller_no.clone(),
            "callee_no" => l.callee_no.clone(),
            "wait_begin" | "call_begin" => time(l.call_begin),
            "ack_begin" => time(l.call_begin),
            "wait_end" | "ack_end" | "call_end" => time(l.call_end),
            "device_type" => l.device_type.to_string(),
            "device_no" => l.device_no.clone(),
            "call_type" => "0".to_string(),
            "release_cause" => {
                if l.call_id_num == -1 {
                    "0".into()
                } else {
                    String::new()
                }
            }
            "call_id_num" => l.call_id_num.to_string(),
            "vdn_id" => "1".to_string(),
            _ => String::new(),
        })
        .collect()
}

/// CSV text of `legs`, with the header row or without.
pub fn csv_text(legs: &[SimLeg], zone: &ServerZone, header: bool) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    if header {
        w.write_record(COLUMNS).expect("in memory");
    }
    for l in legs {
        w.write_record(row(l, zone)).expect("in memory");
    }
    String::from_utf8(w.into_inner().expect("in memory")).expect("the rows are text")
}

/// Writes `legs` into `dir` as CC-FS bundles: a zip a day (by the legs'
/// begin in `zone`). Returns the files written.
pub fn write_dir(dir: &Path, legs: &[SimLeg], zone: &ServerZone) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut days: BTreeMap<String, Vec<SimLeg>> = BTreeMap::new();
    for l in legs {
        let day: String =
            zone.format(l.call_begin.div_euclid(1000)).chars().take(10).filter(char::is_ascii_digit).collect();
        days.entry(day).or_default().push(l.clone());
    }
    let mut written = Vec::new();
    for (i, (day, legs)) in days.iter().enumerate() {
        let response = 4000 + i;
        let path = dir.join(format!("{day}_{response}.zip"));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path)?);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(format!("{day}_{response}_call_1.csv"), options).map_err(std::io::Error::other)?;
        zip.write_all(csv_text(legs, zone, true).as_bytes())?;
        zip.start_file(format!("{day}_{response}_record_1.csv"), options).map_err(std::io::Error::other)?;
        zip.write_all(b"call_id,call_begin,call_end,file_name\r\n")?;
        zip.finish().map_err(std::io::Error::other)?;
        written.push(path);
    }
    Ok(written)
}
