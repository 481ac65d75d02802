// Package faulttest is resub's fault suite: the party steps run as child
// processes of a binary built with -tags failpoints and killed at each
// named point (package processor/failpoint), the real OpenSSH server
// stopped, stalled or refusing writes under a running job, hostile and
// broken inputs at scale, and two daemons sharing one ledger. It holds
// tests only; the package itself is empty.
package faulttest
