package processor_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"resub/formats/native"
	"resub/processor"
	"resub/processor/ledger"
	"resub/samples/fleet"
)

// TestRefusedUnreadAnswer: A refuses B's imsi-list unread (as when it is
// larger than A's bound on ciphertext): it is recorded as refused by name
// and size with no SHA-256, and the refusal names it by in-reply-to-size.
// B takes the refusal as the answer to its own file, and the refusal of a
// run that stopped before the move is resumed, never answered twice.
func TestRefusedUnreadAnswer(t *testing.T) {
	ctx := context.Background()
	w, f, a, b := setup3aFrom(t, 1, false)
	cut := w.now.AddDate(0, 0, 1)
	res := w.process(b, "m2m", &processor.SwitchRequest{Donor: b.Partners["mno-a"]}, w.send("M2M", "MNOB", native.SwitchRequest, 1, false, "", fleet.SwitchRequestRecords(f.Cards, "MNOA", cut)))
	list := output(t, res.Outputs, "imsi-list")
	st, err := os.Stat(list.Path)
	if err != nil {
		t.Fatal(err)
	}
	in := processor.Input{Partner: a.Partners["mno-b"], Name: list.Name, Job: "imsi-list"}
	step := &processor.IMSIList{SMSC: a.Partners["smsc"]}
	const reason = "too large to read"
	var refused *processor.RefusedError
	res, err = a.RefuseUnread(ctx, step, in, st.Size(), reason)
	if !errors.As(err, &refused) || refused.Reason != reason || len(res.Outputs) != 1 {
		t.Fatalf("refuse: %+v %v", res, err)
	}
	answer := res.Outputs[0]
	// The run stops before the move: the rerun resumes the refusal, and
	// once the answer is delivered there is nothing more to send.
	again, err := a.RefuseUnread(ctx, step, in, st.Size(), reason)
	if !errors.As(err, &refused) || len(again.Outputs) != 1 || again.Outputs[0].ID != answer.ID || again.FileID != res.FileID {
		t.Fatalf("resumed: %+v %v; want the same answer", again, err)
	}
	w.deliverAll(a, again.Outputs)
	again, err = a.RefuseUnread(ctx, step, in, st.Size(), reason)
	if !errors.As(err, &refused) || len(again.Outputs) != 0 {
		t.Fatalf("resumed after delivery: %+v %v; want nothing more to send", again, err)
	}
	if err := a.Quarantined(ctx, res.FileID); err != nil {
		t.Fatal(err)
	}
	row, err := a.Ledger.FileByID(ctx, res.FileID)
	if err != nil || row.Status != ledger.FileQuarantined || row.SHA256 != "" || row.Size != st.Size() || row.Reason != reason {
		t.Fatalf("ledger: %+v %v", row, err)
	}
	h, recs := w.readOutput(a, answer)
	if h.InReplyTo != list.Name || h.InReplyToSize != st.Size() || h.InReplyToSHA256 != [32]byte{} || h.Refused != reason || len(recs) != 0 {
		t.Fatalf("answer header: %+v, %d records", h, len(recs))
	}
	// B reads it as the refusal of its own file.
	res = w.process(b, "mno-a", processor.IMSIResultIntake{}, answer.Path)
	var n int
	if err := b.Ledger.QueryRow(ctx, `SELECT COUNT(*) FROM audit WHERE action = 'file-refused' AND subject = ?`, list.Name).Scan(&n); err != nil || n != 1 {
		t.Errorf("B's audit of the refusal: %d %v", n, err)
	}
}
