package ledger

// ReportPoRsPage is the statement and arguments of the report stage's
// page of PoRs after line after.
func ReportPoRsPage(kic, kid string, after int) (string, []any) {
	return porsQuery, []any{kic, kid, after}
}

// ReportRestPage is the statement and arguments of the report stage's
// page of lines left to take one at a time, after line after.
func ReportRestPage(after int) (string, []any) {
	return restQuery, []any{after}
}
