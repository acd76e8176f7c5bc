//! The analyst measures of a period, from one tenant's summary tables in PostgreSQL.

use super::Postgres;
use crate::kpi::{DayKpi, Kpis};
use crate::store::StoreError;
use crate::store::contract::Measures;

impl Measures for Postgres {
    fn kpis(&self, from_ms: i64, to_ms: i64) -> Result<Kpis, StoreError> {
        self.run(async {
            let c = &self.client;
            let p: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&self.tenant, &from_ms, &to_ms];
            let range = "tenant_id = $1 AND hour_start >= $2 AND hour_start < $3 AND sessions > 0";
            let mut kpis = Kpis::default();
            let days = c
                .query(
                    &format!(
                        "SELECT oifde_utc(hour_start, 'YYYY-MM-DD') AS day, sum(sessions)::BIGINT, \
                         sum(exit_no_consult)::BIGINT, sum(staff_no_consult)::BIGINT, sum(staff_consult)::BIGINT, \
                         sum(bot_only)::BIGINT, sum(unknown)::BIGINT, sum(turns)::BIGINT, sum(fallback_turns)::BIGINT, \
                         sum(repeat_callers)::BIGINT FROM kpi_hourly WHERE {range} GROUP BY day ORDER BY day"
                    ),
                    &p,
                )
                .await?;
            kpis.days = days
                .iter()
                .map(|r| DayKpi {
                    day: r.get(0),
                    sessions: r.get(1),
                    exit_no_consult: r.get(2),
                    staff_no_consult: r.get(3),
                    staff_consult: r.get(4),
                    bot_only: r.get(5),
                    unknown: r.get(6),
                    turns: r.get(7),
                    fallback_turns: r.get(8),
                    repeat_callers: r.get(9),
                    ..DayKpi::default()
                })
                .collect();
            let platform = c
                .query(
                    "SELECT oifde_utc(record_time, 'YYYY-MM-DD'), sum(call_count)::BIGINT, \
                     sum(exit_consulting_count)::BIGINT, \
                     sum(call_staff_no_consult_count + call_staff_consult_count + exit_consulting_count)::BIGINT \
                     FROM platform_stats WHERE tenant_id = $1 AND record_time >= $2 AND record_time < $3 GROUP BY 1",
                    &p,
                )
                .await?;
            for r in platform {
                let day: String = r.get(0);
                if let Some(d) = kpis.days.iter_mut().find(|d| d.day == day) {
                    (d.platform_sessions, d.platform_bot_only, d.platform_bot_use) =
                        (Some(r.get(1)), Some(r.get(2)), Some(r.get(3)));
                }
            }
            let reported = c
                .query(
                    "SELECT oifde_utc(k.hour_start, 'YYYY-MM-DD'), sum(k.bot_only)::BIGINT, \
                     sum(k.staff_no_consult + k.staff_consult + k.bot_only)::BIGINT FROM kpi_hourly k \
                     WHERE k.tenant_id = $1 AND k.hour_start >= $2 AND k.hour_start < $3 \
                     AND EXISTS (SELECT 1 FROM platform_stats p WHERE p.tenant_id = k.tenant_id \
                     AND p.access_code = k.called_number AND p.record_time >= k.hour_start - k.hour_start % 86400000 \
                     AND p.record_time < k.hour_start - k.hour_start % 86400000 + 86400000) GROUP BY 1",
                    &p,
                )
                .await?;
            for r in reported {
                let day: String = r.get(0);
                if let Some(d) = kpis.days.iter_mut().find(|d| d.day == day) {
                    (d.reported_bot_only, d.reported_bot_use) = (Some(r.get(1)), Some(r.get(2)));
                }
            }
            let hours = c
                .query(
                    &format!(
                        "SELECT (hour_start % 86400000 / 3600000)::INT, sum(sessions)::BIGINT FROM kpi_hourly \
                         WHERE {range} GROUP BY 1"
                    ),
                    &p,
                )
                .await?;
            for r in hours {
                kpis.by_hour[r.get::<_, i32>(0).clamp(0, 23) as usize] = r.get(1);
            }
            let counted = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            kpis.top_intentions = counted(
                c.query(
                    "SELECT intention, sum(turns)::BIGINT FROM summary_intentions_per_day \
                     WHERE tenant_id = $1 AND day >= oifde_utc($2, 'YYYY-MM-DD') AND day < oifde_utc($3, 'YYYY-MM-DD') \
                     AND intention <> '' GROUP BY intention ORDER BY 2 DESC, 1 LIMIT 10",
                    &p,
                )
                .await?,
            );
            kpis.dropoff = counted(
                c.query(
                    "SELECT intention, sum(sessions)::BIGINT FROM kpi_dropoff \
                     WHERE tenant_id = $1 AND day_start >= $2 AND day_start < $3 \
                     GROUP BY 1 HAVING sum(sessions) > 0 ORDER BY 2 DESC, 1 LIMIT 10",
                    &p,
                )
                .await?,
            );
            Ok(kpis)
        })
    }
}
