package config

// DefaultMaxRecordErrors is limits.max_record_errors when the file gives
// none: a partner file with more records with problems than this is
// broken as a whole, and is refused with the reason rather than answered
// line by line.
const DefaultMaxRecordErrors = 10_000

// minLineBytes is the smallest limits.max_line_bytes: one record of every
// type fits (an ota-batch record of a few segments is the longest).
const minLineBytes = 1024

// validateLimits checks the bounds on every input (after the defaults:
// zero is the default, so only what was written can be wrong).
func (c *Config) validateLimits(ps *problems) {
	l := c.Limits
	if l.MaxFileBytes < 0 {
		ps.add("limits.max_file_bytes", "%d: must be positive", l.MaxFileBytes)
	}
	switch {
	case l.MaxLineBytes < minLineBytes:
		ps.add("limits.max_line_bytes", "%d: must be at least %d", l.MaxLineBytes, minLineBytes)
	case l.MaxFileBytes > 0 && int64(l.MaxLineBytes) > l.MaxFileBytes:
		ps.add("limits.max_line_bytes", "%d is more than limits.max_file_bytes (%d)", l.MaxLineBytes, l.MaxFileBytes)
	}
	if l.MaxRecords < 0 {
		ps.add("limits.max_records", "%d: must be positive", l.MaxRecords)
	}
	if l.MaxRecordErrors < 0 {
		ps.add("limits.max_record_errors", "%d: must be positive", l.MaxRecordErrors)
	}
}
