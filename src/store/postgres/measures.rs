//! The analyst measures of a period, from one tenant's views in PostgreSQL.

use super::Postgres;
use crate::kpi::{DayKpi, Kpis};
use crate::store::StoreError;
use crate::store::contract::Measures;

impl Measures for Postgres {
    fn kpis(&self, from_ms: i64, to_ms: i64) -> Result<Kpis, StoreError> {
        self.run(async {
            let c = &self.client;
            let p: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&self.tenant, &from_ms, &to_ms];
            let range = "tenant_id = $1 AND start_time >= $2 AND start_time < $3";
            let mut kpis = Kpis::default();
            let sum = |outcome: &str| format!("sum(CASE WHEN outcome = '{outcome}' THEN 1 ELSE 0 END)::BIGINT");
            let days = c
                .query(
                    &format!(
                        "SELECT day, count(*), {}, {}, {}, {}, {}, sum(turns)::BIGINT, sum(fallback_turns)::BIGINT, \
                         sum(repeat_caller)::BIGINT FROM v_session_outcomes WHERE {range} GROUP BY day ORDER BY day",
                        sum("exit_no_consult"),
                        sum("staff_no_consult"),
                        sum("staff_consult"),
                        sum("bot_only"),
                        sum("unknown")
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
            let hours = c
                .query(&format!("SELECT hour::INT, count(*) FROM v_session_outcomes WHERE {range} GROUP BY hour"), &p)
                .await?;
            for r in hours {
                kpis.by_hour[r.get::<_, i32>(0).clamp(0, 23) as usize] = r.get(1);
            }
            let counted = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            kpis.top_intentions = counted(
                c.query(
                    "SELECT d.intention, count(*) FROM record_details d JOIN records r \
                     ON r.tenant_id = d.tenant_id AND r.log_id = d.log_id \
                     WHERE r.tenant_id = $1 AND r.start_time >= $2 AND r.start_time < $3 \
                     AND coalesce(d.intention, '') <> '' GROUP BY d.intention ORDER BY 2 DESC, 1 LIMIT 10",
                    &p,
                )
                .await?,
            );
            kpis.dropoff = counted(
                c.query(
                    &format!(
                        "SELECT coalesce(last_intention, ''), count(*) FROM v_session_outcomes \
                         WHERE transferred = 0 AND {range} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
                    ),
                    &p,
                )
                .await?,
            );
            Ok(kpis)
        })
    }
}
