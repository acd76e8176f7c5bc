//! Retention: `prune --before` and `store.keep` remove the sessions older
//! than the cut with everything that hangs on them, keep the summary tables
//! and the measures exact, survive a kill, and give the space back to the
//! next writes.

use std::process::Stdio;
use std::time::Duration;

use oifde_sync::simulator::SimOptions;

use crate::cli::{run, text};
use crate::helpers::*;
use crate::kpis::{assert_kept_exact, reference_views};

per_store!(
    prune_removes_what_started_before_the_cut_and_keeps_every_sum_exact,
    a_prune_killed_midway_leaves_a_whole_store_and_finishes_when_run_again,
    the_daemon_prunes_what_is_older_than_store_keep
);

/// The middle of the simulated tenant's two days.
const CUT: &str = "2026-11-03 00:00:00";
const CUT_MS: i64 = (FROM + 86_400) * 1000;

/// What must hold whenever no prune is in flight: no turn, Q&A row or
/// full-text row without its session, the summary tables equal to the
/// GROUP BY over the rows, and (`measures`, slow on PostgreSQL) the
/// measures equal to theirs.
fn assert_whole(store: &TestStore, step: &str, measures: bool) {
    // SQLite keeps turns, Q&A rows and a session's figures in tables keyed by
    // the record's rowid; PostgreSQL turns and Q&A rows by the record's number.
    let children: &[(&str, &str)] = match store.kind {
        Kind::Sqlite => &[
            ("turn_rows", "r.rowid = c.record_id"),
            ("qa_rows", "r.rowid = c.record_id"),
            ("session_figures", "r.rowid = c.record_id"),
        ],
        Kind::Postgres => &[
            ("turn_rows", "r.id = c.record_id"),
            ("qa_rows", "r.id = c.record_id"),
            ("session_facts", "r.log_id = c.log_id"),
        ],
    };
    for (child, meets) in children {
        let orphans = store
            .count(&format!("SELECT count(*) FROM {child} c WHERE NOT EXISTS (SELECT 1 FROM records r WHERE {meets})"));
        assert_eq!(orphans, 0, "{step}: {child} rows without their session");
    }
    let day = |column: &str| match store.kind {
        Kind::Sqlite => format!("coalesce(date({column} / 1000, 'unixepoch'), '')"),
        Kind::Postgres => format!("coalesce(oifde_utc({column}, 'YYYY-MM-DD'), '')"),
    };
    let pairs = [
        (
            "SELECT day, calls FROM summary_calls_per_day ORDER BY 1".to_string(),
            format!("SELECT {} AS d, count(*) FROM records GROUP BY 1 ORDER BY 1", day("start_time")),
        ),
        (
            "SELECT day, intention, turns FROM summary_intentions_per_day ORDER BY 1, 2".to_string(),
            format!(
                "SELECT {} AS d, intention, count(*) FROM record_details WHERE intention IS NOT NULL \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                day("request_time")
            ),
        ),
        (
            "SELECT question_title, answer_intent, answers FROM summary_answers ORDER BY 1, 2".to_string(),
            "SELECT coalesce(question_title, ''), coalesce(answer_intent, ''), count(*) FROM qa_records \
             GROUP BY 1, 2 ORDER BY 1, 2"
                .to_string(),
        ),
    ];
    for (kept, computed) in pairs {
        assert_eq!(store.rows(&kept), store.rows(&computed), "{step}: {kept}");
    }
    if measures {
        assert_kept_exact(store, step);
    }
    if store.kind == Kind::Sqlite {
        let conn = rusqlite::Connection::open(&store.db).unwrap();
        conn.execute("INSERT INTO record_details_fts (record_details_fts, rank) VALUES ('integrity-check', 1)", [])
            .unwrap_or_else(|e| panic!("{step}: the full-text index against its rows: {e}"));
        let indexed: i64 = conn.query_row("SELECT count(*) FROM record_details_fts", [], |r| r.get(0)).unwrap();
        let turns: i64 = conn.query_row("SELECT count(*) FROM record_details", [], |r| r.get(0)).unwrap();
        assert_eq!(indexed, turns, "{step}: full-text rows");
    }
}

fn ids(store: &TestStore, filter: &str) -> Vec<String> {
    store.column(&format!("SELECT log_id FROM records WHERE {filter} ORDER BY log_id"))
}

/// A mirror with CDR legs and the platform's count, pruned in the middle:
/// the sessions before the cut are gone with their rows and the legs of
/// their calls; every session after it is there as it was; every sum and
/// measure is exact; SQLite's next writes reuse the space.
async fn prune_removes_what_started_before_the_cut_and_keeps_every_sum_exact(kind: Kind) {
    let sim = simulator(options(400)).await;
    let store = TestStore::new(kind);
    mirror_with_ledgers(&store, &sim, "").await;
    reference_views(&store);
    let before = ids(&store, &format!("start_time < {CUT_MS}"));
    let after = ids(&store, &format!("start_time >= {CUT_MS}"));
    assert!(before.len() > 100 && after.len() > 100, "{} before, {} after", before.len(), after.len());
    let kept_turns = store.count(&format!(
        "SELECT count(*) FROM record_details d JOIN records r ON r.log_id = d.log_id WHERE r.start_time >= {CUT_MS}"
    ));
    let known = |s: &TestStore| {
        s.count(&format!(
            "SELECT count(*) FROM v_session_outcomes WHERE transferred IS NOT NULL AND start_time >= {CUT_MS}"
        ))
    };
    let known_after = known(&store);
    let size = || std::fs::metadata(&store.db).map(|m| m.len()).unwrap_or(0);
    let full = size();

    let out = run(store.dir.path(), &["prune", "--before", CUT], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pruned {} sessions that started before {CUT}", before.len())),
        "{}",
        text(&out)
    );
    assert_eq!(ids(&store, "true"), after, "exactly the sessions after the cut are left");
    assert_eq!(
        store.count("SELECT count(*) FROM record_details"),
        kept_turns,
        "the turns of the sessions kept are all there"
    );
    assert_eq!(known(&store), known_after, "the sessions kept still meet their CDR legs");
    let orphan_legs = store.count(&format!(
        "SELECT count(*) FROM cdr_legs l WHERE l.call_end < {CUT_MS} AND NOT EXISTS \
         (SELECT 1 FROM records r WHERE r.cti_call_id = l.call_id OR r.call_id = l.call_id)"
    ));
    assert_eq!(orphan_legs, 0, "no leg of an old call that no session meets");
    assert_eq!(store.count(&format!("SELECT count(*) FROM v_daily_kpis WHERE day < '{}'", &CUT[..10])), 0);
    assert_whole(&store, "pruned", true);

    // Nothing left to prune: a second run removes nothing.
    let out = run(store.dir.path(), &["prune", "--before", CUT], &[]).await;
    assert!(text(&out).contains("pruned 0 sessions"), "{}", text(&out));

    if kind == Kind::Sqlite {
        // The freed pages take the next writes: the same sessions read again
        // grow the file by less than half of what the prune freed.
        let conn = rusqlite::Connection::open(&store.db).unwrap();
        let pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        drop(conn);
        let freed = (pages * page) as u64;
        // Half the sessions go; with the summary tables, the CDR legs and
        // the file's fixed pages, that is a fifth of the file or more.
        assert!(freed > full / 5, "the prune freed {freed} of {full} bytes");
        let out = run(store.dir.path(), &["backfill", "--from", "2026-11-02 00:00:00", "--to", CUT], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(ids(&store, &format!("start_time < {CUT_MS}")), before, "read again");
        let grown = size().saturating_sub(full);
        assert!(grown < freed / 2, "the file grew by {grown} bytes after {freed} were freed");
    }
}

/// `prune` killed at random moments on a larger mirror: after each kill the
/// store is whole (a batch is one transaction), and the next run finishes.
async fn a_prune_killed_midway_leaves_a_whole_store_and_finishes_when_run_again(kind: Kind) {
    let sim = simulator(SimOptions { users: 40, ..options(1_200) }).await;
    let store = TestStore::new(kind);
    mirror_with_ledgers(&store, &sim, "").await;
    reference_views(&store);
    let after = ids(&store, &format!("start_time >= {CUT_MS}"));
    let old = || store.count(&format!("SELECT count(*) FROM records WHERE start_time < {CUT_MS}"));
    let at_first = old();
    assert!(at_first > 400, "{at_first} sessions before the cut: several batches of 50");
    let mut rng = fastrand::Rng::with_seed(23);
    let mut cut_short = 0;
    for kill in 0..4 {
        let mut child = spawn(store.dir.path(), &["prune", "--before", CUT, "--batch", "50"], &[], Stdio::null());
        let wait = Duration::from_millis(rng.u64(100..600));
        tokio::time::sleep(wait).await;
        let _ = child.0.kill();
        let status = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
        let left = old();
        eprintln!("kill {kill} after {wait:?}: {status}, {left} old sessions left");
        cut_short += i64::from(left > 0 && !status.success());
        assert_whole(&store, &format!("kill {kill}"), false);
    }
    assert!(cut_short >= 1, "a kill landed in the middle of a prune");
    let out = run(store.dir.path(), &["prune", "--before", CUT], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(old(), 0);
    assert_eq!(ids(&store, "true"), after);
    assert_whole(&store, "finished", true);
}

/// `store.keep` makes the daemon prune at start (and daily); a keep shorter
/// than a day is refused naming the key.
async fn the_daemon_prunes_what_is_older_than_store_keep(kind: Kind) {
    let sim = simulator(options(300)).await;
    let store = TestStore::new(kind);
    mirror_with_ledgers(&store, &sim, "").await;
    // A cut in a quiet stretch of the tenant's day, so that the seconds the
    // daemon takes to start move it past no session.
    let starts: Vec<i64> =
        store.column("SELECT start_time FROM records ORDER BY start_time").iter().map(|t| t.parse().unwrap()).collect();
    let middle = starts.len() / 2;
    let (quiet, _) = starts[middle..].windows(2).map(|w| (w[0], w[1])).find(|(a, b)| b - a > 200_000).unwrap();
    let target = quiet + 50_000;
    let after = ids(&store, &format!("start_time >= {target}"));
    let config = store.dir.path().join("oifde-sync.toml");
    let text_now = std::fs::read_to_string(&config).unwrap();

    std::fs::write(&config, text_now.replace("[store]\n", "[store]\nkeep = \"3h\"\n")).unwrap();
    let out = run(store.dir.path(), &["sync"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("store.keep"), "{}", text(&out));

    let keep_s = (oifde_sync::tz::now_ms() - target) / 1000;
    std::fs::write(
        &config,
        text_now
            .replace("[store]\n", &format!("[store]\nkeep = \"{keep_s}s\"\n"))
            .replace("[sync]\n", "[sync]\nschedule = \"0 0 0 1 1 *\"\n"),
    )
    .unwrap();
    let daemon = spawn(store.dir.path(), &["run"], &[], Stdio::null());
    let mut left = usize::MAX;
    for _ in 0..300 {
        left = ids(&store, &format!("start_time < {target}")).len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(daemon);
    assert_eq!(left, 0, "the daemon pruned the sessions older than store.keep");
    assert_eq!(ids(&store, "true"), after);
}
