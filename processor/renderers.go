package processor

import (
	"context"
	"fmt"

	"resub/formats/native"
	"resub/processor/ledger"
)

// rendererFor maps an output's renderer name to its renderer.
func (p *Party) rendererFor(name string) (*renderer, error) {
	switch name {
	case "imsi-list":
		return renderIMSIList, nil
	case "imsi-result":
		return renderIMSIResult, nil
	case "ota-batch":
		return renderOTABatch, nil
	case "handover":
		return renderHandover, nil
	case "key-release":
		return renderKeyRelease, nil
	case "handover-ack":
		return renderAck, nil
	case "provisioning":
		return renderProvisioning, nil
	case "key-request":
		return renderKeyRequest, nil
	case "key-response":
		return renderKeyResponse, nil
	case "refusal":
		return renderRefusal, nil
	}
	return nil, fmt.Errorf("no renderer %q", name)
}

// renderRefusal answers a refused input: a result file of the type that
// answers it, with no records, whose header names the refused file and
// says why.
var renderRefusal = &renderer{
	schema: nil, // chosen from the output's type
	count:  func(context.Context, *Party, *ledger.Output) (int, error) { return 0, nil },
	header: func(ctx context.Context, p *Party, o *ledger.Output, h *native.Header) error {
		h.Refused = o.Note
		// An input refused unread has no SHA-256: it is named by size.
		h.InReplyToSize = unreadSize(ctx, p, o)
		return nil
	},
	records: func(context.Context, *Party, *ledger.Output, func(*native.Record) error) error { return nil },
}
