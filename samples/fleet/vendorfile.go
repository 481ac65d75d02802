package fleet

import (
	"io"
	"iter"
	"slices"
	"strconv"

	"resub/formats/native"
	"resub/formats/vendor"
)

// WriteVendor writes the SIM vendor's output file for cards: the header
// block, var_Out and one line a card with pair 1 (a 3b file also carries
// the list length, never a later pair).
func (f *Fleet) WriteVendor(w io.Writer, cards []*Card, customer, profile, batch string) error {
	return f.WriteVendorSeq(w, len(cards), slices.Values(cards), customer, profile, batch)
}

// WriteVendorSeq is WriteVendor over a sequence of n cards.
func (f *Fleet) WriteVendorSeq(w io.Writer, n int, cards iter.Seq[*Card], customer, profile, batch string) error {
	vw := vendor.NewWriter(w)
	h := &vendor.Header{Customer: customer, Quantity: n, Type: "USIM", Profile: profile, Batch: batch, Algorithm: "MILENAGE"}
	if f.Opts.ListLength > 0 {
		h.KeyListLength = f.Opts.ListLength
	}
	cols := []string{"ICCID", "IMSI", "KI", "OPC", "KIC" + strconv.Itoa(f.Opts.KVN), "KID" + strconv.Itoa(f.Opts.KVN), "KIK" + strconv.Itoa(f.Opts.KVN), "CNTR" + strconv.Itoa(f.Opts.KVN)}
	if err := vw.WriteHeader(h, cols); err != nil {
		return err
	}
	for c := range cards {
		ks := c.Keys(1)
		vc := &vendor.Card{ICCID: c.ICCID, IMSI: c.IMSI, Ki: c.Ki(1), OPc: c.OPc, Counter: int64(f.Opts.Counter),
			KeySets: []vendor.KeySet{{KVN: c.KVN, KIc: ks.KIc, KID: ks.KID, KIK: ks.KIK}}}
		if err := vw.Write(vc); err != nil {
			return err
		}
	}
	return vw.Flush()
}

// FactoryRecords emits the manufacturer's own data of one key index: the
// pair at index i of every card (one file per index, since a native file
// names a card once).
func (f *Fleet) FactoryRecords(w Wrapper, profile string, cards []*Card, i int) func(emit func(*native.Record) error) error {
	return func(emit func(*native.Record) error) error {
		rec := native.NewRecord(native.Inventory)
		for _, c := range cards {
			{
				ks := c.Keys(i)
				rec.Set(native.FieldICCID, c.ICCID)
				rec.Set(native.FieldIMSI, c.IMSI)
				for _, kv := range []struct {
					f string
					v []byte
				}{{native.FieldKi, c.Ki(i)}, {native.FieldOPc, c.OPc}, {native.FieldKIc, ks.KIc}, {native.FieldKID, ks.KID}, {native.FieldKIK, ks.KIK}} {
					s, err := w.Wrap(kv.v)
					if err != nil {
						return err
					}
					rec.Set(kv.f, s)
				}
				rec.Set(native.FieldAlgorithm, "milenage")
				rec.Set(native.FieldKVN, strconv.Itoa(c.KVN))
				rec.Set(native.FieldOTAAlg, otaAlgName(f.Opts.OTAAlg))
				rec.Set(native.FieldCounter, "0")
				rec.Set(native.FieldProfile, profile)
				rec.Set(native.FieldKeyIndex, strconv.Itoa(i))
				rec.Set(native.FieldKeyListLength, strconv.Itoa(len(c.Pairs)))
				if err := emit(rec); err != nil {
					return err
				}
			}
		}
		return nil
	}
}
