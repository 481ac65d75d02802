package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"resub/processor/ledger/sqlite"
)

// rowidShape is one child table of the ledger written by the set-based
// steps: its columns, its key and secondary indexes, how a step fills it
// from a staged table and how the steps read it back.
type rowidShape struct {
	table   string
	cols    string // column definitions, without the key
	key     string
	indexes []string
	// fill inserts the rows of the staged cards (stage: line, iccid).
	fill string
	// join reads the rows of the staged cards back by the steps' path.
	join string
	// page reads a page in key order after a cursor (the ledger's pages).
	page string
}

var rowidShapes = []rowidShape{
	{
		table: "card_secrets",
		cols:  "iccid TEXT NOT NULL, name TEXT NOT NULL, key_index INTEGER NOT NULL DEFAULT 0, master_key TEXT NOT NULL, blob BLOB NOT NULL",
		key:   "PRIMARY KEY (iccid, name, key_index)",
		fill: `INSERT INTO card_secrets (iccid, name, key_index, master_key, blob)
			SELECT s.iccid, n.name, 0, 'mk-2026', randomblob(60) FROM stage s CROSS JOIN
			(SELECT 0 AS i, 'ki' AS name UNION ALL SELECT 1, 'opc' UNION ALL SELECT 2, 'kic' UNION ALL SELECT 3, 'kid' UNION ALL SELECT 4, 'kik') AS n
			ORDER BY s.line
			ON CONFLICT (iccid, name, key_index) DO UPDATE SET master_key = excluded.master_key, blob = excluded.blob`,
		join: `SELECT COUNT(*), SUM(LENGTH(c.blob)) FROM stage s JOIN card_secrets c ON c.iccid = s.iccid AND c.key_index = 0`,
		page: `SELECT iccid, name, key_index, blob FROM card_secrets WHERE iccid > ? ORDER BY iccid, name, key_index LIMIT 1000`,
	},
	{
		table: "key_sets",
		cols:  "iccid TEXT NOT NULL, key_index INTEGER NOT NULL DEFAULT 0, kvn INTEGER NOT NULL, kic_alg TEXT NOT NULL DEFAULT '', kid_alg TEXT NOT NULL DEFAULT '', counter INTEGER NOT NULL DEFAULT 0",
		key:   "PRIMARY KEY (iccid, key_index, kvn)",
		fill: `INSERT INTO key_sets (iccid, key_index, kvn, kic_alg, kid_alg, counter)
			SELECT iccid, 0, 1, 'aes', 'aes', line FROM stage ORDER BY line
			ON CONFLICT (iccid, key_index, kvn) DO UPDATE SET kic_alg = excluded.kic_alg, kid_alg = excluded.kid_alg,
			counter = CASE WHEN excluded.counter > key_sets.counter THEN excluded.counter ELSE key_sets.counter END`,
		join: `SELECT COUNT(*), SUM(k.counter) FROM stage s JOIN key_sets k ON k.iccid = s.iccid AND k.key_index = 0`,
		page: `SELECT iccid, key_index, kvn, counter FROM key_sets WHERE iccid > ? ORDER BY iccid, key_index, kvn LIMIT 1000`,
	},
	{
		table:   "batch_records",
		cols:    "batch_id INTEGER NOT NULL, line INTEGER NOT NULL, iccid TEXT NOT NULL DEFAULT '', imsi TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', partner TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT ''",
		key:     "PRIMARY KEY (batch_id, line)",
		indexes: []string{"CREATE INDEX batch_records_iccid ON batch_records(iccid)"},
		fill: `INSERT INTO batch_records (batch_id, line, iccid, imsi, status, reason, detail, partner, data)
			SELECT 7, line, iccid, '00101' || substr(iccid, -10), 'accepted', '', '', 'MNO-B', '' FROM stage ORDER BY line
			ON CONFLICT (batch_id, line) DO UPDATE SET iccid = excluded.iccid, imsi = excluded.imsi, status = excluded.status,
			reason = excluded.reason, detail = excluded.detail, partner = excluded.partner, data = excluded.data`,
		join: `SELECT COUNT(*), SUM(LENGTH(r.imsi)) FROM stage s JOIN batch_records r ON r.iccid = s.iccid`,
		page: `SELECT line, iccid, imsi, status FROM batch_records WHERE batch_id = 7 AND line > ? ORDER BY line LIMIT 1000`,
	},
	{
		table:   "imsi_allocations",
		cols:    "imsi TEXT NOT NULL, iccid TEXT NOT NULL, state TEXT NOT NULL, ref TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL",
		key:     "PRIMARY KEY (imsi)",
		indexes: []string{"CREATE INDEX imsi_allocations_iccid ON imsi_allocations(iccid)"},
		fill: `INSERT INTO imsi_allocations (imsi, iccid, state, ref, created_at, updated_at)
			SELECT '00102' || printf('%010d', line), iccid, 'allocated', 'REQ-1', '2026-12-07T19:00:00Z', '2026-12-07T19:00:00Z' FROM stage ORDER BY line`,
		join: `SELECT COUNT(*), SUM(LENGTH(a.imsi)) FROM stage s JOIN imsi_allocations a ON a.iccid = s.iccid`,
		page: `SELECT imsi, iccid, state FROM imsi_allocations WHERE imsi > ? ORDER BY imsi LIMIT 1000`,
	},
}

// rowidCards is the number of cards of BenchmarkWithoutRowid
// (RESUB_ROWID_CARDS; 100,000 is the figure the choice was made on).
func rowidCards(b *testing.B) int {
	if s := os.Getenv("RESUB_ROWID_CARDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("RESUB_ROWID_CARDS=%q: not a positive number", s)
		}
		return n
	}
	return 20000
}

// BenchmarkWithoutRowid measures each child table the set-based steps
// write once or more per card, as a rowid table with its primary key's
// index and as a WITHOUT ROWID table: the write (INSERT … SELECT from a
// staged table of N cards, in one transaction, on a real file with the
// ledger's pragmas), the join of those cards back, the ordered page reads
// of the whole table, and the file's size.
//
//	RESUB_ROWID_CARDS=100000 go test ./processor/ledger/sqlite -run '^$' -bench WithoutRowid -benchtime 1x
func BenchmarkWithoutRowid(b *testing.B) {
	n := rowidCards(b)
	for _, sh := range rowidShapes {
		for _, without := range []bool{false, true} {
			name := sh.table + "/rowid"
			if without {
				name = sh.table + "/without-rowid"
			}
			b.Run(name, func(b *testing.B) {
				var write, join, pages time.Duration
				var size int64
				for i := 0; i < b.N; i++ {
					w, j, p, sz := rowidRun(b, sh, without, n)
					write, join, pages, size = write+w, join+j, pages+p, sz
				}
				b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
				b.ReportMetric(join.Seconds()/float64(b.N), "join-s")
				b.ReportMetric(pages.Seconds()/float64(b.N), "pages-s")
				b.ReportMetric(float64(size)/(1<<20), "file-MB")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

func rowidRun(b *testing.B, sh rowidShape, without bool, n int) (write, join, pages time.Duration, size int64) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// One connection: the steps' temp table lives on the transaction's.
	db.SetMaxOpenConns(1)
	ddl := "CREATE TABLE " + sh.table + " (" + sh.cols + ", " + sh.key + ")"
	if without {
		ddl += " WITHOUT ROWID"
	}
	for _, q := range append([]string{ddl, `CREATE TEMP TABLE stage (line INTEGER PRIMARY KEY, iccid TEXT NOT NULL)`}, sh.indexes...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	// The staged cards, as a step's stage holds them: ICCIDs in line order.
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE c(line) AS (SELECT 1 UNION ALL SELECT line + 1 FROM c WHERE line < ?)
		INSERT INTO stage (line, iccid) SELECT line, '898821' || printf('%013d', line) FROM c`, n); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, sh.fill); err != nil {
		b.Fatalf("%s: fill: %v", sh.table, err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	write = time.Since(start)

	start = time.Now()
	var rows, sum int64
	if err := db.QueryRowContext(ctx, sh.join).Scan(&rows, &sum); err != nil {
		b.Fatalf("%s: join: %v", sh.table, err)
	}
	join = time.Since(start)
	if rows < int64(n) {
		b.Fatalf("%s: join read %d rows of %d cards", sh.table, rows, n)
	}

	start = time.Now()
	var after any = ""
	if sh.table == "batch_records" {
		after = 0
	}
	read := int64(0)
	for {
		rs, err := db.QueryContext(ctx, sh.page, after)
		if err != nil {
			b.Fatalf("%s: page: %v", sh.table, err)
		}
		cols, _ := rs.Columns()
		got := 0
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			after = vals[0]
			got++
		}
		if err := rs.Err(); err != nil {
			b.Fatal(err)
		}
		rs.Close()
		read += int64(got)
		if got == 0 {
			break
		}
	}
	pages = time.Since(start)
	if read != rows {
		b.Fatalf("%s: pages read %d rows, the table holds %d", sh.table, read, rows)
	}
	b.StopTimer()
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return write, join, pages, fi.Size()
}
