package processor

// SetHandoverPageSize sets how many records of a handover batch are read
// at a time, for a test that needs several pages of a few cards; the
// function it returns restores the size.
func SetHandoverPageSize(n int) (restore func()) {
	old := handoverPageSize
	handoverPageSize = n
	return func() { handoverPageSize = old }
}
