#!/usr/bin/env python3
"""The script an analyst would write instead of installing oifde-sync:
standard library only, one page at a time, INSERT OR REPLACE of records,
turns and Q&A rows, a commit per page. The benchmark runs it against the same
simulator as the daemon, over the same windows."""
import argparse, json, sqlite3, urllib.request
from datetime import datetime, timedelta, timezone

def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--tenant", default="tenant001")
    ap.add_argument("--secret", default="demo-secret")
    ap.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD HH:MM:SS, UTC")
    ap.add_argument("--to", dest="end", required=True)
    ap.add_argument("--db", required=True)
    a = ap.parse_args()
    db = sqlite3.connect(a.db)
    db.executescript("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS records (log_id TEXT PRIMARY KEY, call_id TEXT, calling_number TEXT,
            start_time INTEGER, end_time INTEGER, last_update_time INTEGER, raw_json TEXT);
        CREATE TABLE IF NOT EXISTS record_details (log_id TEXT, seq INTEGER, user_saying TEXT, intention TEXT,
            system_reply TEXT, PRIMARY KEY (log_id, seq));
        CREATE TABLE IF NOT EXISTS qa_records (log_id TEXT, seq INTEGER, question_title TEXT, answer_intent TEXT,
            PRIMARY KEY (log_id, seq));
    """)
    token = post(a.base_url + "/oifde/rest/api/gettoken", {"appKey": a.tenant, "appSecret": a.secret})["authToken"]
    fmt = "%Y-%m-%d %H:%M:%S"
    t = datetime.strptime(a.start, fmt)
    end = datetime.strptime(a.end, fmt)
    n = 0
    while t <= end:
        w_end = min(t + timedelta(hours=1) - timedelta(seconds=1), end)
        page = 1
        while True:
            body = {"tenantId": a.tenant, "authToken": token, "beginTime": t.strftime(fmt),
                    "endTime": w_end.strftime(fmt), "pageNum": str(page), "pageSize": "100"}
            resp = post(a.base_url + "/oifde/rest/api/queryRecordHistory", body)
            recs = resp.get("recordList") or []
            for r in recs:
                db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?)",
                           (r["logId"], r.get("callId"), r.get("callingNumber"), r.get("startTime"),
                            r.get("endTime"), r.get("lastUpdateTime"), json.dumps(r)))
                for i, d in enumerate(r.get("recordDetials") or r.get("recordDetails") or []):
                    db.execute("INSERT OR REPLACE INTO record_details VALUES (?,?,?,?,?)",
                               (r["logId"], i, d.get("userSaying"), d.get("intention"), d.get("systemReply")))
                for i, q in enumerate(r.get("qaRecords") or []):
                    db.execute("INSERT OR REPLACE INTO qa_records VALUES (?,?,?,?)",
                               (r["logId"], i, q.get("questionTitle"), q.get("answerIntent")))
            db.commit()
            n += len(recs)
            if len(recs) < 100:
                break
            page += 1
        t = w_end + timedelta(seconds=1)
    print(n)

if __name__ == "__main__":
    main()
