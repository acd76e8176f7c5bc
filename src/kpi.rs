//! The analyst measures of a period, as the views compute them, for the
//! report: a row a day, sessions by hour of the day, the intentions.

use serde::Serialize;

/// One UTC day, over every access code.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayKpi {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub sessions: i64,
    pub exit_no_consult: i64,
    pub staff_no_consult: i64,
    pub staff_consult: i64,
    pub bot_only: i64,
    pub unknown: i64,
    pub turns: i64,
    pub fallback_turns: i64,
    pub repeat_callers: i64,
    /// The platform's own figures for the day, where fetched.
    pub platform_sessions: Option<i64>,
    pub platform_bot_only: Option<i64>,
    /// The platform's sessions that used the bot (more than one turn).
    pub platform_bot_use: Option<i64>,
    /// The mirror's `bot_only` and sessions that used the bot, over the
    /// access codes the platform reported that day: the like-for-like
    /// comparison (the day's totals also hold sessions of other numbers).
    pub reported_bot_only: Option<i64>,
    pub reported_bot_use: Option<i64>,
}

impl DayKpi {
    /// bot_only over the sessions that used the bot; `None` when none did.
    pub fn autonomy_rate(&self) -> Option<f64> {
        let used = self.staff_no_consult + self.staff_consult + self.bot_only;
        (used > 0).then(|| self.bot_only as f64 / used as f64)
    }

    pub fn platform_autonomy_rate(&self) -> Option<f64> {
        rate(self.platform_bot_only, self.platform_bot_use)
    }

    /// The mirror's autonomy rate over the access codes the platform
    /// reported: what [`Self::platform_autonomy_rate`] is to be compared with.
    pub fn reported_autonomy_rate(&self) -> Option<f64> {
        rate(self.reported_bot_only, self.reported_bot_use)
    }

    pub fn avg_turns(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.turns as f64 / self.sessions as f64)
    }

    pub fn fallback_rate(&self) -> Option<f64> {
        (self.turns > 0).then(|| self.fallback_turns as f64 / self.turns as f64)
    }
}

fn rate(part: Option<i64>, whole: Option<i64>) -> Option<f64> {
    match (part, whole) {
        (Some(part), Some(whole)) if whole > 0 => Some(part as f64 / whole as f64),
        _ => None,
    }
}

/// What the report draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Kpis {
    pub days: Vec<DayKpi>,
    /// Sessions by UTC hour of the day, 0–23.
    pub by_hour: [i64; 24],
    /// The most frequent intentions of the turns, with their counts.
    pub top_intentions: Vec<(String, i64)>,
    /// The last intentions of sessions whose call ended in the IVR.
    pub dropoff: Vec<(String, i64)>,
}
