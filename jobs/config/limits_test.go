package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLimits: the input bounds default (max_record_errors included) and
// are validated, each problem with its path.
func TestLimits(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.MaxRecords != 20_000_000 || l.MaxRecordErrors != DefaultMaxRecordErrors || l.MaxLineBytes != 64<<10 {
		t.Errorf("defaults %+v", l)
	}
	set := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nlimits: {max_records: 500, max_record_errors: 20}", 1)
	if cfg, err = Load(writeConfig(t, dir, set)); err != nil || cfg.Limits.MaxRecords != 500 || cfg.Limits.MaxRecordErrors != 20 {
		t.Fatalf("limits set: %+v, %v", cfg, err)
	}
	bad := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nlimits: {max_file_bytes: 4096, max_line_bytes: 8192, max_records: -1, max_record_errors: -5}", 1)
	_, err = Load(writeConfig(t, dir, bad))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	for _, w := range []string{
		"limits.max_line_bytes: 8192 is more than limits.max_file_bytes",
		"limits.max_records: -1: must be positive",
		"limits.max_record_errors: -5: must be positive",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing problem %q in:\n%s", w, err)
		}
	}
	small := strings.Replace(validYAML, "data_dir: data", "data_dir: data\nlimits: {max_line_bytes: 100}", 1)
	if _, err := Load(writeConfig(t, dir, small)); err == nil || !strings.Contains(err.Error(), "limits.max_line_bytes: 100: must be at least 1024") {
		t.Errorf("a tiny max_line_bytes: %v", err)
	}
}
