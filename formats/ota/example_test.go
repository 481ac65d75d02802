package ota_test

import (
	"encoding/hex"
	"fmt"

	"resub/formats/ota"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The IMSI change of a USIM over the air: build the script from the card
// profile, secure it under the card's key set and counter, cut it into
// SMS, then judge the PoR the card sends back.
func Example() {
	profile := ota.Profile{
		Name: "usim", TAR: ota.TAR{0xb0, 0x00, 0x11}, SPI: 0x1639, KIc: 0x15, KID: 0x15,
		InvalidateLOCI: true,
	}
	if err := profile.Validate(); err != nil {
		panic(err)
	}
	script, efIMSI := must2(profile.UpdateScript(ota.Change{NewIMSI: "262420123456789", NewMNCLen: 2, OldMNCLen: 2}))
	keys := ota.Keys{
		KIc: must(hex.DecodeString("300102030405060708090a0b0c0d0e0f")),
		KID: must(hex.DecodeString("301102030405060708090a0b0c0d0e0f")),
	}
	codec := must(ota.NewCodec(profile.Params(profile.TAR), keys))
	msg := must(codec.BuildMessage(ota.FormatCompact, 42, script, 1))
	fmt.Printf("%d APDUs, %d-octet packet, %d SMS, first UDH %x\n", len(script), len(msg.Packet), len(msg.Segments), msg.Segments[0][:3])

	// What the card answers: PoR OK, all commands, 9000, the new EF_IMSI.
	card := must(ota.NewCodec(profile.Params(profile.TAR), keys))
	por := must(card.EncodeResponse(nil, 42, ota.StatusOK, ota.AppendCompactResponse(nil, len(script), 0x9000, efIMSI[:])))

	r, err := codec.DecodeResponse(por)
	v := ota.CheckUpdate(ota.Expectation{TAR: profile.TAR, Counter: 42, Commands: len(script), EFIMSI: efIMSI}, r, err)
	fmt.Println(r.Status.Meaning(), r.Checksum, v.Outcome)
	// Output:
	// 6 APDUs, 82-octet packet, 1 SMS, first UDH 027000
	// PoR OK verified confirmed
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func ExampleEncodeIMSI() {
	ef, _ := ota.EncodeIMSI("262420123456789")
	fmt.Printf("%x\n", ef)
	// Output: 082926241032547698
}

func ExampleSPI_Describe() {
	fmt.Println(ota.SPI(0x1639).Describe())
	// Output: command: CC, ciphered=true, counter must be higher; PoR: PoR required, CC, ciphered=true, via SMS-SUBMIT=true
}
