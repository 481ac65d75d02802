package native_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"resub/formats/native"
)

func ExampleWriter() {
	h := &native.Header{
		Sender: "MNOA", Receiver: "MNOB",
		BusinessDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Sequence:     4,
		Created:      time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC),
		Batch:        "B-4",
		InReplyTo:    "MNOB_MNOA_imsi-list_20261130_000001.txt.pgp",
		Quantity:     1,
	}
	h.InReplyToSHA256 = sha256.Sum256([]byte("the imsi-list file as sent"))
	w := native.NewWriter(os.Stdout, native.IMSIResult)
	w.WriteHeader(h, []string{native.FieldICCID, native.FieldStatus, native.FieldReason})
	r := native.NewRecord(native.IMSIResult)
	r.Set(native.FieldICCID, "8999901000000000013")
	r.Set(native.FieldStatus, native.StatusRejected)
	r.Set(native.FieldReason, "not_authorised")
	w.Write(r)
	if err := w.Flush(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(native.NameOf(h, "txt", true))
	// Output:
	// #format: imsi-result
	// #version: 1
	// #sender: MNOA
	// #receiver: MNOB
	// #business-date: 2026-11-30
	// #sequence: 4
	// #created: 2026-11-30T06:00:00Z
	// #batch: B-4
	// #in-reply-to: MNOB_MNOA_imsi-list_20261130_000001.txt.pgp
	// #in-reply-to-sha256: e6390a1738c49d96eb212c8c1c79cfb2f42b7bf8712ea424f71b9d7904bbfe81
	// #quantity: 1
	// iccid|status|reason
	// 8999901000000000013|rejected|NOT_AUTHORISED
	// MNOA_MNOB_imsi-result_20261130_000004.txt.pgp
}
