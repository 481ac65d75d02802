package ledger

// ReportPage is how many rows a page of the report stage holds.
const ReportPage = reportPage

// ReportPoRsPage is the statement and arguments of the report stage's
// page of PoRs after line after.
func ReportPoRsPage(kic, kid string, after int) (string, []any) {
	return porsQuery, []any{after, kic, kid}
}

// ReportRestPage is the statement and arguments of the report stage's
// page of lines left to take one at a time, after line after.
func ReportRestPage(after int) (string, []any) {
	return restQuery, []any{after}
}

// BatchRecordsPage is the statement and arguments of a page of
// BatchRecords after line after.
func BatchRecordsPage(batchID int64, partner, status string, after int) (string, []any) {
	return batchRecordsPage(batchID, partner, status, after)
}

// RequestedPage is the statement and arguments of the switch stage's page
// of partner's accepted lines after line after.
func (s *SwitchStage) RequestedPage(partner string, after, size int) (string, []any) {
	q, ids := s.requestedQuery(partner)
	return q, append(ids, after, size)
}
