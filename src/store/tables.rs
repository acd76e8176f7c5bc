//! The tables a mirror holds, as both stores hold them: each column with
//! its type, the key's columns first, in an order that keeps references
//! valid. `copy` moves them; a test holds the list against both schemas.

use crate::run_log::Figures;

/// A column's type in both stores: INTEGER/BIGINT or TEXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Text,
}

/// One value, typed even when NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Cell {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Int(v) => v.map_or(serde_json::Value::Null, Into::into),
            Cell::Text(v) => v.clone().map_or(serde_json::Value::Null, Into::into),
        }
    }

    fn from_json(ty: Ty, v: &serde_json::Value) -> Cell {
        match ty {
            Ty::Int => Cell::Int(v.as_i64()),
            Ty::Text => Cell::Text(v.as_str().map(str::to_string)),
        }
    }
}

/// A table as both stores hold it: its columns, the key's first.
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<(&'static str, Ty)>,
    /// The first `key` columns are the table's key (without `tenant_id` in PostgreSQL).
    pub key: usize,
}

impl Table {
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    }

    pub fn key_list(&self) -> String {
        self.columns[..self.key].iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    }

    pub fn key_text(&self, key: &[Cell]) -> String {
        serde_json::Value::Array(key.iter().map(Cell::to_json).collect()).to_string()
    }

    /// The key stored by [`Table::key_text`]; `None` when it does not fit this table.
    /// A key as [`Table::key_text`] wrote it; `[]` is a table copied with no row.
    pub fn parse_key(&self, text: &str) -> Option<Vec<Cell>> {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
        (values.len() == self.key || values.is_empty())
            .then(|| values.iter().zip(&self.columns).map(|(v, (_, ty))| Cell::from_json(*ty, v)).collect())
    }
}

/// Every table copied, in an order that keeps references valid.
pub fn tables() -> Vec<Table> {
    use Ty::{Int, Text};
    let t = |name, key, columns: &[(&'static str, Ty)]| Table { name, columns: columns.to_vec(), key };
    let mut runs = vec![("id", Int), ("kind", Text), ("started_at", Int), ("finished_at", Int), ("status", Text)];
    runs.extend(Figures::COLUMNS.iter().map(|c| (*c, Int)));
    runs.push(("error", Text));
    vec![
        t(
            "records",
            1,
            &[
                ("log_id", Text),
                ("tenant_id", Text),
                ("call_sor_id", Text),
                ("call_id", Text),
                ("cti_call_id", Text),
                ("calling_number", Text),
                ("called_number", Text),
                ("start_time", Int),
                ("end_time", Int),
                ("last_update_time", Int),
                ("flow_inst_id", Text),
                ("dialog_type", Text),
                ("call_data", Text),
                ("location_id", Int),
                ("flag", Text),
                ("business_info", Text),
                ("business_info_str", Text),
                ("record_file_name", Text),
                ("yugao_file_name", Text),
                ("raw_json", Text),
                ("content_hash", Text),
                ("first_seen_at", Int),
                ("synced_at", Int),
            ],
        ),
        t(
            "record_details",
            2,
            &[
                ("log_id", Text),
                ("seq", Int),
                ("inter_no", Text),
                ("user_saying", Text),
                ("intention", Text),
                ("system_reply", Text),
                ("reply_time", Int),
                ("request_time", Int),
                ("response_source", Int),
                ("involve_mode", Int),
                ("extra_json", Text),
            ],
        ),
        t(
            "qa_records",
            2,
            &[
                ("log_id", Text),
                ("seq", Int),
                ("inter_no", Text),
                ("series_id", Text),
                ("question_title", Text),
                ("question_type", Text),
                ("answer_intent", Text),
                ("original_answer", Text),
                ("create_time", Int),
                ("extra_json", Text),
            ],
        ),
        t(
            "query_keys",
            1,
            &[
                ("query_key", Text),
                ("kind", Text),
                ("source", Text),
                ("state", Text),
                ("added_at", Int),
                ("last_query_at", Int),
                ("next_query_at", Int),
                ("records_found", Int),
                ("misses", Int),
                ("failed_passes", Int),
                ("last_error", Text),
                ("call_begin", Int),
                ("call_end", Int),
            ],
        ),
        t("sync_cursors", 1, &[("query_key", Text), ("cursor_time", Int), ("updated_at", Int)]),
        Table { name: "sync_runs", columns: runs, key: 1 },
        t(
            "backfill_progress",
            3,
            &[("job", Text), ("query_key", Text), ("window_start", Int), ("window_end", Int), ("finished_at", Int)],
        ),
        t(
            "skipped_windows",
            2,
            &[("query_key", Text), ("window_start", Int), ("window_end", Int), ("reason", Text), ("skipped_at", Int)],
        ),
        t(
            "key_files",
            1,
            &[("path", Text), ("file_id", Text), ("offset", Int), ("lines", Int), ("head", Text), ("read_at", Int)],
        ),
        t(
            "cdr_legs",
            2,
            &[
                ("call_id", Text),
                ("call_id_num", Int),
                ("device_type", Int),
                ("developer", Text),
                ("account_id", Text),
                ("cc_id", Text),
                ("agent_id", Text),
                ("caller_no", Text),
                ("callee_no", Text),
                ("wait_begin", Int),
                ("wait_end", Int),
                ("ack_begin", Int),
                ("ack_end", Int),
                ("call_begin", Int),
                ("call_end", Int),
                ("device_no", Text),
                ("call_type", Text),
                ("release_cause", Text),
                ("vdn_id", Text),
                ("pre_device_type", Text),
                ("pre_device_no", Text),
                ("extra_json", Text),
            ],
        ),
        t(
            "platform_stats",
            2,
            &[
                ("access_code", Text),
                ("record_time", Int),
                ("call_count", Int),
                ("exit_no_consult_count", Int),
                ("call_staff_no_consult_count", Int),
                ("call_staff_consult_count", Int),
                ("exit_consulting_count", Int),
                ("interact_count", Int),
                ("autonomy_rate", Text),
                ("average_interact_per_call", Text),
                ("db_record_time", Int),
                ("interface_request_count", Int),
                ("interface_success_count", Int),
                ("interface_success_rate", Text),
                ("extra_json", Text),
                ("fetched_at", Int),
            ],
        ),
        t("cdr_files", 1, &[("path", Text), ("size", Int), ("modified_at", Int), ("rows", Int), ("read_at", Int)]),
        t("summary_calls_per_day", 1, &[("day", Text), ("calls", Int)]),
        t("summary_intentions_per_day", 2, &[("day", Text), ("intention", Text), ("turns", Int)]),
        t("summary_answers", 2, &[("question_title", Text), ("answer_intent", Text), ("answers", Int)]),
        t("fallback_intentions", 1, &[("intention", Text)]),
        t(
            "session_facts",
            1,
            &[
                ("log_id", Text),
                ("called_number", Text),
                ("hour_start", Int),
                ("turns", Int),
                ("transferred", Int),
                ("outcome", Text),
                ("fallback_turns", Int),
                ("silent_turns", Int),
                ("repeat_caller", Int),
                ("last_intention", Text),
            ],
        ),
        t(
            "kpi_hourly",
            2,
            &[
                ("hour_start", Int),
                ("called_number", Text),
                ("sessions", Int),
                ("exit_no_consult", Int),
                ("staff_no_consult", Int),
                ("staff_consult", Int),
                ("bot_only", Int),
                ("unknown", Int),
                ("turns", Int),
                ("fallback_turns", Int),
                ("silent_turns", Int),
                ("repeat_callers", Int),
            ],
        ),
        t("kpi_dropoff", 3, &[("day_start", Int), ("called_number", Text), ("intention", Text), ("sessions", Int)]),
    ]
}
