package drop

import "context"

type skipReportKey struct{}

// WithSkipReport returns a context under which List reports every inbox
// name it leaves out because CheckName refuses it (control characters,
// bidirectional marks, invalid UTF-8, …), with CheckName's error. A run
// sets it to log such names: they are a partner's mistake or an attack,
// and either way someone should hear of the file nobody will pick up.
func WithSkipReport(ctx context.Context, report func(name string, err error)) context.Context {
	return context.WithValue(ctx, skipReportKey{}, report)
}

// nameRefused checks name with CheckName and reports a refused one to the
// context's reporter, if any.
func nameRefused(ctx context.Context, name string) bool {
	err := CheckName(name)
	if err == nil {
		return false
	}
	if report, ok := ctx.Value(skipReportKey{}).(func(string, error)); ok && report != nil {
		report(name, err)
	}
	return true
}
