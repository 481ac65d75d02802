package status

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"resub/jobs/config"
	"resub/processor/ledger"
	"resub/processor/ledger/sqlite"
)

// fleetStart is when the synthetic cut-over began.
var fleetStart = time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)

// syntheticLedger makes a ledger of n cards at a donor (MNOA) moving to
// MNOB, written with a few set-based statements: every card imported, most
// of them moved, with their events, OTA messages, batches, records and
// files, spread over 48 hours. Per 100 cards: 20 active, 5 moving, 1
// failed, 5 confirmed, 4 handed-over, 1 provisioned, 60 released, 3
// unknown, 1 manual.
func syntheticLedger(tb testing.TB, dir string, n int) *ledger.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	t0 := fleetStart.Unix()
	stmts := []string{
		`CREATE TEMP TABLE seq AS WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1) SELECT i,
			CASE WHEN i % 100 < 20 THEN 'active' WHEN i % 100 < 25 THEN 'moving' WHEN i % 100 < 26 THEN 'failed'
			     WHEN i % 100 < 31 THEN 'confirmed' WHEN i % 100 < 35 THEN 'handed-over' WHEN i % 100 < 36 THEN 'provisioned'
			     WHEN i % 100 < 96 THEN 'released' WHEN i % 100 < 99 THEN 'unknown' ELSE 'manual' END AS state,
			strftime('%Y-%m-%dT%H:%M:%SZ', ? + (i % 48) * 3600, 'unixepoch') AS at1,
			strftime('%Y-%m-%dT%H:%M:%SZ', ? + (i % 48) * 3600 + 7200, 'unixepoch') AS at2,
			strftime('%Y-%m-%dT%H:%M:%SZ', ? + (i % 48) * 3600 + 10800, 'unixepoch') AS at3
			FROM s`,
		`INSERT INTO cards (iccid, imsi, msisdn, state, profile, owner, source, new_imsi, recipient, cutover, attempts, created_at, updated_at)
			SELECT printf('89999010%011d', i), printf('99901%010d', i), printf('4917%08d', i), state, 'usim-aes', 'M2M', 'VENDOR_VB-1.out.pgp',
			       CASE WHEN state = 'active' THEN '' ELSE printf('99999%010d', i) END,
			       CASE WHEN state = 'active' THEN '' ELSE 'MNOB' END,
			       CASE WHEN state = 'active' THEN '' ELSE '2026-11-03' END,
			       CASE WHEN state = 'active' THEN 0 ELSE 1 END, at1, at3 FROM seq`,
		`INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT printf('89999010%011d', i), at1, '', 'active', 'imported', 'VENDOR_VB-1.out.pgp' FROM seq`,
		`INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT printf('89999010%011d', i), at2, 'active', 'moving', 'imsi-list accepted', 'file:' || (2 + i / 10000) FROM seq WHERE state <> 'active'`,
		`INSERT INTO card_events (iccid, at, from_state, to_state, reason, ref)
			SELECT printf('89999010%011d', i), at3, 'moving', state, 'ota-report', 'file:1' FROM seq WHERE state NOT IN ('active', 'moving')`,
		`INSERT INTO ota_messages (iccid, batch_id, kind, key_index, kvn, counter, tar, msisdn, attempt, state, deadline, por_status, detail, file_id, created_at, updated_at)
			SELECT printf('89999010%011d', i), 2 + i / 10000, 'update', 0, 1, 1, 'b00010', printf('4917%08d', i), 1,
			       CASE WHEN state = 'moving' THEN 'sent' WHEN state = 'failed' THEN 'failed' WHEN state IN ('unknown', 'manual') THEN 'unknown' ELSE 'confirmed' END,
			       at3, '', CASE WHEN state = 'failed' THEN 'status 02 (CNTR low)' WHEN state IN ('unknown', 'manual') THEN 'no PoR by the deadline' ELSE 'EF_IMSI confirmed' END,
			       1, at2, at3 FROM seq WHERE state <> 'active'`,
		`INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner)
			SELECT 2 + i / 10000, 1 + i % 10000, printf('89999010%011d', i), printf('99999%010d', i),
			       CASE WHEN state = 'active' THEN 'rejected' ELSE 'accepted' END,
			       CASE WHEN state = 'active' THEN 'not-authorised' ELSE '' END,
			       CASE WHEN state = 'active' THEN 'the M2M operator did not authorise the move' ELSE '' END, 'MNOB' FROM seq`,
		`INSERT INTO batches (id, job, partner, kind, file_id, status, records, accepted, rejected, reason, created_at, updated_at)
			SELECT 2 + b, 'imsi-list', 'mno-b', 'imsi-list', 2 + b, 'done', COUNT(*), SUM(state <> 'active'), SUM(state = 'active'), '', MIN(at2), MIN(at2)
			FROM (SELECT i / 10000 AS b, state, at2 FROM seq) GROUP BY b`,
		`INSERT INTO files (id, partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at)
			SELECT id, 'mno-b', 'in', printf('MNOB_MNOA_imsi-list_20261102_%06d.txt.pgp', id - 1), 'imsi-list', printf('%064d', id), 1000, id - 1, 'done', '', 'imsi-list', id, created_at, created_at
			FROM batches`,
		`INSERT INTO files (id, partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at)
			VALUES (1, 'smsc', 'in', 'SMSC_MNOA_ota-report_20261102_000001.txt', 'ota-report', '', 10, 1, 'done', '', 'ota-report', 0, ?, ?)`,
		`INSERT INTO files (partner, direction, name, type, sha256, size, seq, status, reason, job, batch_id, created_at, updated_at)
			VALUES ('mno-b', 'in', 'MNOB_MNOA_imsi-list_20261104_000099.txt.pgp', 'imsi-list', 'ab', 10, 99, 'quarantined', 'pgp: bad signature or tampered message: integrity check (MDC) failed', 'imsi-list', 0, ?, ?)`,
		`INSERT INTO job_runs (job, owner, manual, started_at, finished_at, status, summary) VALUES ('imsi-list', 'host:1', 0, ?, ?, 'ok', 'job imsi-list: 1 files')`,
		`DROP TABLE seq`,
	}
	args := [][]any{{n, t0, t0, t0}, nil, nil, nil, nil, nil, nil, nil, nil,
		{ledger.Stamp(fleetStart), ledger.Stamp(fleetStart)},
		{ledger.Stamp(fleetStart.Add(48 * time.Hour)), ledger.Stamp(fleetStart.Add(48 * time.Hour))},
		{ledger.Stamp(fleetStart.Add(49 * time.Hour)), ledger.Stamp(fleetStart.Add(49*time.Hour + time.Minute))},
		nil}
	conn, err := db.SQL().Conn(ctx) // the temporary table lives on one connection
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	for i, s := range stmts {
		if _, err := conn.ExecContext(ctx, s, args[i]...); err != nil {
			tb.Fatalf("synthetic ledger, statement %d: %v", i, err)
		}
	}
	return db
}

// testConfig is a donor's configuration with MNOB as recipient.
func testConfig() *config.Config {
	return &config.Config{
		Party: config.Party{Name: "MNOA", Role: "operator"},
		Partners: config.Partners{
			"mno-b": &config.Partner{Kind: "operator", Code: "MNOB"},
			"smsc":  &config.Partner{Kind: "smsc", Code: "SMSC"},
		},
		Jobs: []config.Job{{Name: "imsi-list", Kind: "a-imsi-list", Partner: "mno-b", Schedule: "15 22 * * *", Zone: "UTC"}},
	}
}
