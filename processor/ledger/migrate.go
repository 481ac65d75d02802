package ledger

import (
	"context"
	"fmt"
	"strings"
)

// migrations are applied in order; migrations[i] brings the schema from
// version i to i+1. Never edit a released migration: add one.
var migrations = []string{
	// 1: cards, files, batches, OTA messages, IMSI allocations, jobs, audit.
	`
CREATE TABLE cards (
  iccid       TEXT PRIMARY KEY,
  imsi        TEXT NOT NULL,
  msisdn      TEXT NOT NULL DEFAULT '',
  state       TEXT NOT NULL,
  profile     TEXT NOT NULL DEFAULT '',
  algorithm   TEXT NOT NULL DEFAULT '',
  owner       TEXT NOT NULL DEFAULT '',
  source      TEXT NOT NULL DEFAULT '',
  key_index   INTEGER NOT NULL DEFAULT 0,
  list_length INTEGER NOT NULL DEFAULT 0,
  new_imsi    TEXT NOT NULL DEFAULT '',
  recipient   TEXT NOT NULL DEFAULT '',
  cutover     TEXT NOT NULL DEFAULT '',
  request_ref TEXT NOT NULL DEFAULT '',
  attempts    INTEGER NOT NULL DEFAULT 0,
  secrets_fp  TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  released_at TEXT NOT NULL DEFAULT '',
  erased_at   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cards_state ON cards(state);
CREATE INDEX cards_imsi ON cards(imsi);
CREATE TABLE card_secrets (
  iccid      TEXT NOT NULL,
  name       TEXT NOT NULL,
  key_index  INTEGER NOT NULL DEFAULT 0,
  master_key TEXT NOT NULL,
  blob       {{blob}} NOT NULL,
  PRIMARY KEY (iccid, name, key_index)
);
CREATE TABLE key_sets (
  iccid     TEXT NOT NULL,
  key_index INTEGER NOT NULL DEFAULT 0,
  kvn       INTEGER NOT NULL,
  kic_alg   TEXT NOT NULL DEFAULT '',
  kid_alg   TEXT NOT NULL DEFAULT '',
  counter   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (iccid, key_index, kvn)
);
CREATE TABLE card_events (
  id         {{id}},
  iccid      TEXT NOT NULL,
  at         TEXT NOT NULL,
  from_state TEXT NOT NULL,
  to_state   TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  ref        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX card_events_iccid ON card_events(iccid);
CREATE TABLE files (
  id         {{id}},
  partner    TEXT NOT NULL,
  direction  TEXT NOT NULL,
  name       TEXT NOT NULL,
  type       TEXT NOT NULL DEFAULT '',
  sha256     TEXT NOT NULL DEFAULT '',
  size       INTEGER NOT NULL DEFAULT 0,
  seq        INTEGER NOT NULL DEFAULT 0,
  status     TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  job        TEXT NOT NULL DEFAULT '',
  batch_id   INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (partner, direction, name, sha256)
);
CREATE INDEX files_status ON files(status);
CREATE TABLE sequences (
  sender   TEXT NOT NULL,
  receiver TEXT NOT NULL,
  format   TEXT NOT NULL,
  last     INTEGER NOT NULL,
  PRIMARY KEY (sender, receiver, format)
);
CREATE TABLE batches (
  id         {{id}},
  job        TEXT NOT NULL,
  partner    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  file_id    INTEGER NOT NULL DEFAULT 0,
  status     TEXT NOT NULL,
  records    INTEGER NOT NULL DEFAULT 0,
  accepted   INTEGER NOT NULL DEFAULT 0,
  rejected   INTEGER NOT NULL DEFAULT 0,
  reason     TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE batch_records (
  batch_id INTEGER NOT NULL,
  line     INTEGER NOT NULL,
  iccid    TEXT NOT NULL DEFAULT '',
  imsi     TEXT NOT NULL DEFAULT '',
  status   TEXT NOT NULL,
  reason   TEXT NOT NULL DEFAULT '',
  detail   TEXT NOT NULL DEFAULT '',
  partner  TEXT NOT NULL DEFAULT '',
  data     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (batch_id, line)
);
CREATE INDEX batch_records_iccid ON batch_records(iccid);
CREATE TABLE ota_messages (
  id         {{id}},
  iccid      TEXT NOT NULL,
  batch_id   INTEGER NOT NULL DEFAULT 0,
  kind       TEXT NOT NULL,
  key_index  INTEGER NOT NULL DEFAULT 0,
  kvn        INTEGER NOT NULL,
  counter    INTEGER NOT NULL,
  tar        TEXT NOT NULL,
  msisdn     TEXT NOT NULL DEFAULT '',
  concat_ref INTEGER NOT NULL DEFAULT 0,
  attempt    INTEGER NOT NULL DEFAULT 1,
  state      TEXT NOT NULL,
  deadline   TEXT NOT NULL DEFAULT '',
  por_status TEXT NOT NULL DEFAULT '',
  detail     TEXT NOT NULL DEFAULT '',
  file_id    INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (iccid, key_index, kvn, counter)
);
CREATE INDEX ota_messages_state ON ota_messages(state);
CREATE INDEX ota_messages_match ON ota_messages(msisdn, tar, counter);
CREATE TABLE imsi_allocations (
  imsi       TEXT PRIMARY KEY,
  iccid      TEXT NOT NULL,
  state      TEXT NOT NULL,
  ref        TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX imsi_allocations_iccid ON imsi_allocations(iccid);
CREATE TABLE alloc_cursors (
  range_name TEXT PRIMARY KEY,
  next       TEXT NOT NULL
);
CREATE TABLE authorisations (
  iccid     TEXT NOT NULL,
  recipient TEXT NOT NULL,
  from_date TEXT NOT NULL,
  owner     TEXT NOT NULL DEFAULT '',
  file_id   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (iccid, recipient)
);
CREATE TABLE job_runs (
  id          {{id}},
  job         TEXT NOT NULL,
  owner       TEXT NOT NULL,
  manual      INTEGER NOT NULL DEFAULT 0,
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL,
  summary     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_runs_job ON job_runs(job, started_at);
CREATE TABLE leases (
  job        TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  expires_ms INTEGER NOT NULL
);
CREATE TABLE audit (
  id      {{id}},
  at      TEXT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  detail  TEXT NOT NULL DEFAULT ''
);
`,
	// 2: the manufacturer's view of 3b cards: who holds which index, the
	// releases from each holder, and the key requests it answered.
	`
CREATE TABLE mf_cards (
  iccid        TEXT PRIMARY KEY,
  list_length  INTEGER NOT NULL,
  holder_index INTEGER NOT NULL,
  holder       TEXT NOT NULL,
  algorithm    TEXT NOT NULL DEFAULT '',
  profile      TEXT NOT NULL DEFAULT '',
  batch        TEXT NOT NULL DEFAULT '',
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE TABLE mf_releases (
  iccid      TEXT NOT NULL,
  key_index  INTEGER NOT NULL,
  released_by TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  file_id    INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  PRIMARY KEY (iccid, key_index)
);
CREATE TABLE mf_requests (
  request_id TEXT NOT NULL,
  requester  TEXT NOT NULL,
  iccid      TEXT NOT NULL,
  key_index  INTEGER NOT NULL,
  outcome    TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  PRIMARY KEY (requester, request_id)
);
`,
	// 3: outputs produced by a run, so that a rerun delivers the same file
	// once instead of making a second one.
	`
CREATE TABLE outputs (
  id           {{id}},
  job          TEXT NOT NULL,
  source       TEXT NOT NULL,
  renderer     TEXT NOT NULL,
  partner      TEXT NOT NULL,
  type         TEXT NOT NULL,
  batch_id     INTEGER NOT NULL DEFAULT 0,
  name         TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  in_reply_to  TEXT NOT NULL DEFAULT '',
  in_reply_sha TEXT NOT NULL DEFAULT '',
  note         TEXT NOT NULL DEFAULT '',
  state        TEXT NOT NULL,
  path         TEXT NOT NULL DEFAULT '',
  sha256       TEXT NOT NULL DEFAULT '',
  size         INTEGER NOT NULL DEFAULT 0,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  UNIQUE (source, renderer, partner)
);
CREATE INDEX outputs_state ON outputs(state);
`,
	// 4: OTA key rotations: a card whose key set came from a donor gets a
	// fresh one over the air; one row per card and key index, so that a
	// card is rotated once and its pending keys are known until the PoR.
	`
CREATE TABLE key_rotations (
  iccid       TEXT NOT NULL,
  key_index   INTEGER NOT NULL DEFAULT 0,
  old_kvn     INTEGER NOT NULL,
  new_kvn     INTEGER NOT NULL,
  replace_old INTEGER NOT NULL DEFAULT 1,
  state       TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  message_id  INTEGER NOT NULL DEFAULT 0,
  reason      TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (iccid, key_index)
);
CREATE INDEX key_rotations_state ON key_rotations(state);
`,
	// 5: indexes for fleet-scale steps: the new-IMSI check of every
	// imsi-list record, and the messages of a batch (OTA batch rendering,
	// its count, marking it sent).
	`
CREATE INDEX cards_new_imsi ON cards(new_imsi);
CREATE INDEX ota_messages_batch ON ota_messages(batch_id, id);
`,
	// 6: cards of a state in ICCID order (sweeps page through them):
	// with cards_state alone every page sorted all cards of the state.
	`
CREATE INDEX cards_state_iccid ON cards(state, iccid);
`,
	// 7: cards_state is a prefix of cards_state_iccid: every query it
	// served the longer index serves, and each card update paid for both.
	`
DROP INDEX cards_state;
`,

	// ---- status page (jobs/status) ----
	// 8: the status page's aggregates from narrow indexes instead of the
	// tables: cards by recipient, source and state; messages by state and
	// kind with their deadlines (the PoRs overdue). ota_messages_state is
	// a prefix of the new index and goes.
	`
CREATE INDEX cards_tally ON cards(recipient, source, state);
CREATE INDEX ota_messages_tally ON ota_messages(state, kind, deadline);
DROP INDEX ota_messages_state;
`,
	// ---- end of status page ----
	// ---- SMPP submission (keep this block whole: its number may move
	// when migrations from parallel work are merged) ----
	// 9: OTA messages submitted over SMPP: each message's submission
	// state, each segment's submit_sm outcome and receipt, and a journal
	// of every deliver_sm recorded before it was answered.
	`
CREATE TABLE smpp_messages (
  message_id INTEGER PRIMARY KEY,
  partner    TEXT NOT NULL,
  state      TEXT NOT NULL,
  night      INTEGER NOT NULL DEFAULT 0,
  segments   INTEGER NOT NULL DEFAULT 0,
  detail     TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX smpp_messages_state ON smpp_messages(partner, state, message_id);
CREATE TABLE smpp_segments (
  message_id INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  state      TEXT NOT NULL,
  smsc_id    TEXT NOT NULL DEFAULT '',
  status     INTEGER NOT NULL DEFAULT 0,
  receipt    TEXT NOT NULL DEFAULT '',
  updated_at TEXT NOT NULL,
  PRIMARY KEY (message_id, seq)
);
CREATE INDEX smpp_segments_smsc ON smpp_segments(smsc_id);
CREATE TABLE smpp_events (
  id         {{id}},
  partner    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  msisdn     TEXT NOT NULL DEFAULT '',
  smsc_id    TEXT NOT NULL DEFAULT '',
  state      TEXT NOT NULL DEFAULT '',
  data       TEXT NOT NULL DEFAULT '',
  message_id INTEGER NOT NULL DEFAULT 0,
  outcome    TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX smpp_events_smsc ON smpp_events(smsc_id);
`,
	// ---- end of the SMPP block ----
}

// SchemaVersion is the version the code expects.
func SchemaVersion() int { return len(migrations) }

// Version is the schema version of the database.
func (d *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := d.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// Migrate brings the schema to version target, one transaction per
// migration. It refuses a database newer than the code.
func (d *DB) Migrate(ctx context.Context, target int) error {
	// Under the write lock: two processes creating it at once on a
	// server would collide on its catalogue entry.
	err := d.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: schema table: %w", err)
	}
	for {
		cur, err := d.Version(ctx)
		if err != nil {
			return fmt.Errorf("ledger: schema version: %w", err)
		}
		if cur > len(migrations) {
			return fmt.Errorf("ledger: database schema version %d is newer than this resub (%d)", cur, len(migrations))
		}
		if cur >= target {
			return nil
		}
		stmt := d.expand(migrations[cur])
		err = d.InTx(ctx, func(tx *Tx) error {
			// Re-check inside the transaction: another process may have
			// migrated meanwhile.
			var v int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return err
			}
			if v != cur {
				return nil
			}
			for _, s := range splitStatements(stmt) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("migration %d: %w", cur+1, err)
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, cur+1, ts(d.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
}

func (d *DB) expand(s string) string {
	if d.dialect.Integer != "" {
		s = strings.ReplaceAll(s, "INTEGER", d.dialect.Integer)
	}
	return strings.NewReplacer("{{id}}", d.dialect.AutoID, "{{blob}}", d.dialect.Blob).Replace(s)
}

func splitStatements(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}
