package jobs

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"resub/processor/ledger"
)

// maxLoggedStatement is how much of a slow statement's SQL is logged: the
// statement stays recognisable, a generated one does not flood the log.
const maxLoggedStatement = 240

// SlowStatementLog is a ledger statement observer that logs, at warning
// level, each statement that ran for threshold or longer: its SQL (as
// ledger.StatementKey writes it: whitespace collapsed, the rows of a
// multi-row INSERT as one and "…"), cut to maxLoggedStatement characters,
// its duration, the rows it wrote where the driver says, and the job whose
// lease fenced it. Never its arguments: the ledger does not hand them over.
func SlowStatementLog(threshold time.Duration, log *slog.Logger) func(ledger.Statement) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(s ledger.Statement) {
		if s.Duration < threshold {
			return
		}
		attrs := make([]slog.Attr, 0, 6)
		attrs = append(attrs, slog.String("statement", cut(ledger.StatementKey(s.Text), maxLoggedStatement)),
			slog.Duration("duration", s.Duration), slog.Bool("in_tx", s.InTx))
		if s.Rows >= 0 {
			attrs = append(attrs, slog.Int64("rows", s.Rows))
		}
		if s.Job != "" {
			attrs = append(attrs, slog.String("job", s.Job))
		}
		if s.Failed {
			attrs = append(attrs, slog.Bool("failed", true))
		}
		log.LogAttrs(context.Background(), slog.LevelWarn, "slow ledger statement", attrs...)
	}
}

// cut shortens s to at most n bytes on a character boundary, marking the
// cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
