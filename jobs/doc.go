// Package jobs runs a party's configured jobs: it turns the configuration
// into the processor's party (keys resolved, partners, profiles), opens each
// partner's drop, and runs one pass of a job — deliver what an earlier run
// left undelivered, pick up the partner's complete files, hand each to the
// processor step of the job's kind, deliver the outputs, archive or
// quarantine the input — under the job's lease, recorded in the ledger.
package jobs
