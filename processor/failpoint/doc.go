// Package failpoint marks the places where a crash test kills resub.
//
// Production code calls Hit(name) at each point where a crash would leave
// state worth testing: between a ledger commit and the file it promises,
// halfway through an output file, between an upload and the ledger row
// that records it, and so on. In the default build Hit is an empty inline
// function: the binary carries no test logic. Built with
//
//	go build -tags failpoints ./cmd/resub
//
// the process reads RESUB_FAILPOINT (names separated by commas) once at
// start and, when it reaches a named point, kills itself with SIGKILL —
// no deferred function, no buffered write, no rollback runs, exactly as
// if the machine lost power there (apart from the page cache).
//
// A name may carry a count, "name@N", to crash at the Nth hit of that
// point (counted from 1) instead of the first, and ":stop" ("name:stop",
// "name@N:stop") to stop the process with SIGSTOP there instead of killing
// it: it goes on from that point when it receives SIGCONT.
//
// The points:
//
//	work-before-commit   a file step's transaction (batch, records, counters
//	                     reserved, outputs planned) is about to commit
//	after-commit         the work committed, no output rendered yet
//	mid-render           an output's temporary file is half written
//	after-render         an output is written and recorded, not delivered
//	mid-upload           an output is being put on the partner's drop
//	after-upload         an output is on the partner's drop, not yet
//	                     recorded as delivered
//	after-delivered      an output is recorded as delivered
//	before-complete      the input's outputs are delivered, the input is
//	                     neither complete in the ledger nor archived
//	before-archive       the input is complete, not yet archived on the drop
//	after-archive        the input is archived, the run not finished
//	sweep-before-commit  a sweep's transaction is about to commit
//	sweep-after-commit   a sweep committed, no output rendered yet
//	refusal-after-commit a refused input is recorded as quarantined and
//	                     its refusal planned, nothing rendered
//	before-quarantine    a refused input's answer is delivered, the input
//	                     is not yet moved to quarantine on the drop
package failpoint

// Names lists every point, for tests that crash at each in turn.
var Names = []string{
	WorkBeforeCommit, AfterCommit, MidRender, AfterRender, MidUpload, AfterUpload, AfterDelivered,
	BeforeComplete, BeforeArchive, AfterArchive, SweepBeforeCommit, SweepAfterCommit, RefusalAfterCommit, BeforeQuarantine,
}

// The names of the points.
const (
	WorkBeforeCommit   = "work-before-commit"
	AfterCommit        = "after-commit"
	MidRender          = "mid-render"
	AfterRender        = "after-render"
	MidUpload          = "mid-upload"
	AfterUpload        = "after-upload"
	AfterDelivered     = "after-delivered"
	BeforeComplete     = "before-complete"
	BeforeArchive      = "before-archive"
	AfterArchive       = "after-archive"
	SweepBeforeCommit  = "sweep-before-commit"
	SweepAfterCommit   = "sweep-after-commit"
	RefusalAfterCommit = "refusal-after-commit"
	BeforeQuarantine   = "before-quarantine"
)

// Env is the environment variable a failpoints build reads.
const Env = "RESUB_FAILPOINT"
