package failpoint

// SMPPAfterSend is the point where an SMPP session has written submit_sm
// and recorded nothing of their responses: a crash there leaves their
// outcome unknown. It is not in Names: only the SMPP crash test hits it.
const SMPPAfterSend = "smpp-after-send"
