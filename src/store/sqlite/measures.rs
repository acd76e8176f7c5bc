//! The analyst measures of a period, from the SQLite store's summary tables.

use rusqlite::params;

use super::Sqlite;
use crate::kpi::{DayKpi, Kpis};
use crate::store::StoreError;
use crate::store::contract::Measures;

impl Measures for Sqlite {
    fn kpis(&self, from_ms: i64, to_ms: i64) -> Result<Kpis, StoreError> {
        let sql = |e| self.sql(e);
        let mut kpis = Kpis::default();
        let mut days = self
            .conn
            .prepare(
                "SELECT strftime('%Y-%m-%d', hour_start / 1000, 'unixepoch') AS day, sum(sessions), \
                 sum(exit_no_consult), sum(staff_no_consult), sum(staff_consult), sum(bot_only), sum(unknown), \
                 sum(turns), sum(fallback_turns), sum(repeat_callers) \
                 FROM kpi_hourly WHERE hour_start >= ?1 AND hour_start < ?2 AND sessions > 0 GROUP BY day ORDER BY day",
            )
            .map_err(sql)?;
        kpis.days = days
            .query_map(params![from_ms, to_ms], |r| {
                Ok(DayKpi {
                    day: r.get(0)?,
                    sessions: r.get(1)?,
                    exit_no_consult: r.get(2)?,
                    staff_no_consult: r.get(3)?,
                    staff_consult: r.get(4)?,
                    bot_only: r.get(5)?,
                    unknown: r.get(6)?,
                    turns: r.get(7)?,
                    fallback_turns: r.get(8)?,
                    repeat_callers: r.get(9)?,
                    ..DayKpi::default()
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        let mut platform = self
            .conn
            .prepare(
                "SELECT strftime('%Y-%m-%d', record_time / 1000, 'unixepoch'), sum(call_count), \
                 sum(exit_consulting_count), \
                 sum(call_staff_no_consult_count + call_staff_consult_count + exit_consulting_count) \
                 FROM platform_stats WHERE record_time >= ?1 AND record_time < ?2 GROUP BY 1",
            )
            .map_err(sql)?;
        let rows = platform
            .query_map(params![from_ms, to_ms], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        for (day, sessions, bot, used) in rows {
            if let Some(d) = kpis.days.iter_mut().find(|d| d.day == day) {
                (d.platform_sessions, d.platform_bot_only, d.platform_bot_use) =
                    (Some(sessions), Some(bot), Some(used));
            }
        }
        let mut reported = self
            .conn
            .prepare(
                "SELECT strftime('%Y-%m-%d', k.hour_start / 1000, 'unixepoch'), sum(k.bot_only), \
                 sum(k.staff_no_consult + k.staff_consult + k.bot_only) FROM kpi_hourly k \
                 WHERE k.hour_start >= ?1 AND k.hour_start < ?2 AND EXISTS (SELECT 1 FROM platform_stats p \
                 WHERE p.access_code = k.called_number AND p.record_time >= k.hour_start - k.hour_start % 86400000 \
                 AND p.record_time < k.hour_start - k.hour_start % 86400000 + 86400000) GROUP BY 1",
            )
            .map_err(sql)?;
        let rows = reported
            .query_map(params![from_ms, to_ms], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        for (day, bot, used) in rows {
            if let Some(d) = kpis.days.iter_mut().find(|d| d.day == day) {
                (d.reported_bot_only, d.reported_bot_use) = (Some(bot), Some(used));
            }
        }
        let mut hours = self
            .conn
            .prepare(
                "SELECT hour_start % 86400000 / 3600000, sum(sessions) FROM kpi_hourly \
                 WHERE hour_start >= ?1 AND hour_start < ?2 GROUP BY 1",
            )
            .map_err(sql)?;
        for row in
            hours.query_map(params![from_ms, to_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(sql)?
        {
            let (hour, n) = row.map_err(sql)?;
            kpis.by_hour[hour.clamp(0, 23) as usize] = n;
        }
        let counted = |query: &str| -> Result<Vec<(String, i64)>, StoreError> {
            let mut stmt = self.conn.prepare(query).map_err(sql)?;
            stmt.query_map(params![from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(sql)
        };
        kpis.top_intentions = counted(
            "SELECT intention, sum(turns) FROM summary_intentions_per_day \
             WHERE day >= date(?1 / 1000, 'unixepoch') AND day < date(?2 / 1000, 'unixepoch') AND intention <> '' \
             GROUP BY intention ORDER BY 2 DESC, 1 LIMIT 10",
        )?;
        kpis.dropoff = counted(
            "SELECT intention, sum(sessions) FROM kpi_dropoff \
             WHERE day_start >= ?1 AND day_start < ?2 GROUP BY 1 HAVING sum(sessions) > 0 ORDER BY 2 DESC, 1 LIMIT 10",
        )?;
        Ok(kpis)
    }
}
