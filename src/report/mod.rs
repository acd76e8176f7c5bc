//! `report`: one self-contained HTML page of a period's IVR measures — no
//! script, no font, no network — that a manager can open or mail. Every
//! number on it comes from the views ([`crate::store::Measures`]) and the
//! last verification; the charts are inline SVG ([`svg`]).

pub mod svg;

use std::fmt::Write;

use crate::kpi::Kpis;
use crate::platform::Verified;
use svg::escape;

const BLUE: &str = "#2f6db5";
const ORANGE: &str = "#e08a1e";
const GREEN: &str = "#2e9b57";
const OUTCOMES: [(&str, &str); 5] = [
    ("bot alone (more than one turn)", GREEN),
    ("to an agent after 2–3 turns", "#e08a1e"),
    ("to an agent after more than 3 turns", "#c4452c"),
    ("one turn or none", "#8a8f98"),
    ("unknown (no CDR legs)", "#c9ccd1"),
];

/// A fraction as a percentage with one decimal; "–" for none.
pub fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{:.1} %", v * 100.0))
}

/// What the page shows: the period, the measures, the last verification.
pub struct Page<'a> {
    pub title: &'a str,
    pub from_day: &'a str,
    pub to_day: &'a str,
    pub generated_utc: &'a str,
    pub kpis: &'a Kpis,
    pub verified: Option<&'a Verified>,
}

impl Page<'_> {
    /// The whole HTML document.
    pub fn html(&self) -> String {
        let k = self.kpis;
        let days: Vec<String> = k.days.iter().map(|d| d.day[5..].to_string()).collect();
        let total = |f: fn(&crate::kpi::DayKpi) -> i64| k.days.iter().map(f).sum::<i64>();
        let (sessions, bot, used) = (
            total(|d| d.sessions),
            total(|d| d.bot_only),
            total(|d| d.staff_no_consult + d.staff_consult + d.bot_only),
        );
        let (turns, fallback, repeats) = (total(|d| d.turns), total(|d| d.fallback_turns), total(|d| d.repeat_callers));
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        // Over the period, or none when a day lacks the figures.
        let summed = |pair: fn(&crate::kpi::DayKpi) -> Option<(i64, i64)>| -> Option<(i64, i64)> {
            k.days.iter().map(pair).try_fold((0, 0), |acc, p| p.map(|(b, u)| (acc.0 + b, acc.1 + u)))
        };
        let platform = summed(|d| d.platform_bot_only.zip(d.platform_bot_use));
        let reported = summed(|d| d.reported_bot_only.zip(d.reported_bot_use));
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><style>{css}</style></head><body><main>"#,
            title = escape(self.title),
            css = CSS
        );
        let _ = write!(
            s,
            "<h1>{}</h1><p class=\"sub\">{} to {} (UTC days) · generated {} UTC by oifde-sync</p>",
            escape(self.title),
            self.from_day,
            self.to_day,
            self.generated_utc
        );
        s.push_str("<section class=\"figures\">");
        let figure = |id: &str, value: String, label: &str| {
            format!(
                "<div class=\"figure\"><span class=\"value\" id=\"{id}\">{value}</span><span class=\"label\">{label}</span></div>"
            )
        };
        s.push_str(&figure("sessions", sessions.to_string(), "sessions"));
        s.push_str(&figure("autonomy", percent(ratio(bot, used)), "handled by the bot alone"));
        s.push_str(&figure(
            "platform-autonomy",
            percent(platform.and_then(|(b, u)| ratio(b, u))),
            "the platform's autonomy rate",
        ));
        s.push_str(&figure(
            "reported-autonomy",
            percent(reported.and_then(|(b, u)| ratio(b, u))),
            "the mirror's, over the access codes the platform reports",
        ));
        s.push_str(&figure(
            "avg-turns",
            ratio(turns, sessions).map_or("–".into(), |v| format!("{v:.2}")),
            "turns a session",
        ));
        s.push_str(&figure("fallback", percent(ratio(fallback, turns)), "turns not understood"));
        s.push_str(&figure("repeat-callers", repeats.to_string(), "repeat callers (24 h)"));
        s.push_str("</section>");
        s.push_str("<section class=\"charts\">");
        let chart =
            |title: &str, svg: String| format!("<figure><figcaption>{}</figcaption>{svg}</figure>", escape(title));
        s.push_str(&chart(
            "Sessions per day",
            svg::bars("Sessions per day", &days, &k.days.iter().map(|d| d.sessions as f64).collect::<Vec<_>>(), BLUE),
        ));
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        s.push_str(&chart(
            "Sessions by hour of the day (UTC)",
            svg::bars("Sessions by hour", &hours, &k.by_hour.map(|n| n as f64), BLUE),
        ));
        let series: Vec<(&str, &str, Vec<f64>)> = OUTCOMES
            .iter()
            .enumerate()
            .map(|(i, (name, colour))| {
                let values = k
                    .days
                    .iter()
                    .map(|d| [d.bot_only, d.staff_no_consult, d.staff_consult, d.exit_no_consult, d.unknown][i] as f64)
                    .collect();
                (*name, *colour, values)
            })
            .collect();
        let legend: String = OUTCOMES
            .iter()
            .map(|(n, c)| format!("<span><i style=\"background:{c}\"></i>{}</span>", escape(n)))
            .collect();
        s.push_str(&format!(
            "<figure><figcaption>How sessions ended, per day</figcaption>{}<p class=\"legend\">{legend}</p></figure>",
            svg::stacked("Outcomes per day", &days, &series)
        ));
        s.push_str(&format!(
            "<figure><figcaption>Autonomy rate: the mirror's and the platform's</figcaption>{}<p class=\"legend\"><span><i style=\"background:{BLUE}\"></i>mirror, every session</span><span><i style=\"background:{GREEN}\"></i>mirror, the access codes the platform reports</span><span><i style=\"background:{ORANGE}\"></i>platform</span></p></figure>",
            svg::lines(
                "Autonomy rate",
                &days,
                &[
                    ("mirror, every session", BLUE, k.days.iter().map(|d| d.autonomy_rate()).collect()),
                    (
                        "mirror, the access codes the platform reports",
                        GREEN,
                        k.days.iter().map(|d| d.reported_autonomy_rate()).collect(),
                    ),
                    ("platform", ORANGE, k.days.iter().map(|d| d.platform_autonomy_rate()).collect()),
                ],
                true
            )
        ));
        s.push_str(&chart(
            "Average turns a session",
            svg::lines(
                "Average turns",
                &days,
                &[("turns", BLUE, k.days.iter().map(|d| d.avg_turns()).collect())],
                false,
            ),
        ));
        s.push_str(&chart(
            "Fallback rate (turns not understood)",
            svg::lines(
                "Fallback rate",
                &days,
                &[("fallback", ORANGE, k.days.iter().map(|d| d.fallback_rate()).collect())],
                true,
            ),
        ));
        s.push_str(&chart("Top intentions", svg::hbars("Top intentions", &k.top_intentions, BLUE)));
        s.push_str(&chart(
            "Where callers gave up (last intention, call ended in the IVR)",
            svg::hbars("Drop-off", &k.dropoff, ORANGE),
        ));
        s.push_str(&chart(
            "Repeat callers per day",
            svg::bars(
                "Repeat callers",
                &days,
                &k.days.iter().map(|d| d.repeat_callers as f64).collect::<Vec<_>>(),
                ORANGE,
            ),
        ));
        s.push_str("</section>");
        s.push_str("<section><h2>Completeness of the mirror</h2>");
        match self.verified {
            Some(v) => {
                let _ = write!(
                    s,
                    "<p id=\"completeness\">Verified {} UTC against the platform's own call statistics: the platform counted \
                     <b id=\"platform-calls\">{}</b> calls, the mirror holds <b id=\"mirrored\">{}</b> sessions; \
                     <b id=\"missing\">{}</b> calls missing in {} settled hours.</p>",
                    crate::tz::utc_text(v.at),
                    v.platform_calls,
                    v.mirrored,
                    v.missing,
                    v.missing_hours
                );
            }
            None => s.push_str("<p id=\"completeness\">Not verified yet: set [reconcile] access_codes and run <code>oifde-sync verify</code>.</p>"),
        }
        s.push_str("</section><section><h2>Day by day</h2><div class=\"table\"><table><thead><tr><th>day</th><th>sessions</th><th>bot alone</th><th>to an agent</th><th>one turn</th><th>unknown</th><th>autonomy</th><th>same codes</th><th>platform</th><th>avg turns</th><th>fallback</th><th>repeat callers</th></tr></thead><tbody>");
        for d in &k.days {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.day,
                d.sessions,
                d.bot_only,
                d.staff_no_consult + d.staff_consult,
                d.exit_no_consult,
                d.unknown,
                percent(d.autonomy_rate()),
                percent(d.reported_autonomy_rate()),
                percent(d.platform_autonomy_rate()),
                d.avg_turns().map_or("–".into(), |v| format!("{v:.2}")),
                percent(d.fallback_rate()),
                d.repeat_callers
            );
        }
        s.push_str("</tbody></table></div></section></main></body></html>\n");
        s
    }
}

const CSS: &str = "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2430;background:#f6f7f9}\
main{max-width:1180px;margin:0 auto;padding:16px}h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em}\
.sub{color:#5b6473;margin-top:0}.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:10px}\
.figure{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px #0001}.value{display:block;font-size:1.6em;font-weight:600}\
.label{color:#5b6473;font-size:.9em}.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:12px;margin-top:14px}\
figure{margin:0;background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 2px #0001}figcaption{font-weight:600;margin-bottom:6px}\
svg{width:100%;height:auto;display:block}.legend{font-size:.85em;color:#5b6473;display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 0}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}.table{overflow-x:auto}\
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9em}th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:right}\
th:first-child,td:first-child{text-align:left}";
