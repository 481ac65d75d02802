package vendor

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Writer writes a vendor output file in the common layout: header block,
// optional input variables, var_Out, one space-separated line a card, hex
// in upper case. For samples, tests and synthetic fleets.
type Writer struct {
	w     *bufio.Writer
	cols  []column
	err   error
	count int
	quant int
}

// NewWriter returns a writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w), quant: -1} }

// WriteHeader writes the header block and the var_Out line naming columns.
func (w *Writer) WriteHeader(h *Header, columns []string) error {
	if w.err != nil {
		return w.err
	}
	for _, n := range columns {
		c, err := parseColumn(n)
		if err != nil {
			w.err = err
			return err
		}
		w.cols = append(w.cols, c)
	}
	b := w.w
	b.WriteString("*HEADER DESCRIPTION\n***************************************\n")
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "%-16s: %s\n", k, v)
		}
	}
	kv("Customer", h.Customer)
	if h.Quantity >= 0 {
		kv("Quantity", strconv.Itoa(h.Quantity))
		w.quant = h.Quantity
	}
	kv("Type", h.Type)
	kv("Profile", h.Profile)
	kv("Batch", h.Batch)
	if h.TransportKey != "" {
		kv("Transport_key", h.TransportKey)
	} else {
		kv("Transport_key", "clear")
	}
	kv("Algorithm", strings.ToUpper(h.Algorithm))
	if h.KeyListLength > 0 {
		kv("Key_list", strconv.Itoa(h.KeyListLength))
	}
	if len(h.Inputs) > 0 {
		b.WriteString("*INPUT VARIABLES\n***************************************\nvar_In:\n")
		keys := make([]string, 0, len(h.Inputs))
		for k := range h.Inputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(b, " %s: %s\n", strings.ToUpper(k), h.Inputs[k])
		}
	}
	b.WriteString("*OUTPUT VARIABLES\n***************************************\nvar_Out: ")
	for i, c := range w.cols {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c.name)
	}
	b.WriteByte('\n')
	return nil
}

// Write writes one card.
func (w *Writer) Write(c *Card) error {
	if w.err != nil {
		return w.err
	}
	for i, col := range w.cols {
		if i > 0 {
			w.w.WriteByte(' ')
		}
		var v string
		switch col.base {
		case "ICCID":
			v = c.ICCID
		case "IMSI":
			v = c.IMSI
		case "KI":
			v = upperHex(c.Ki)
		case "OPC":
			v = upperHex(c.OPc)
		case "KIC", "KID", "KIK":
			for _, ks := range c.KeySets {
				if ks.KVN == max(col.num, 1) {
					v = upperHex(map[string][]byte{"KIC": ks.KIc, "KID": ks.KID, "KIK": ks.KIK}[col.base])
				}
			}
		case "CNTR":
			v = strconv.FormatInt(max(c.Counter, 0), 10)
		case "ALG":
			v = strings.ToUpper(c.Algorithm)
		case "LIST_LEN":
			v = strconv.Itoa(c.KeyListLength)
		default:
			v = c.Other[col.name]
		}
		if v == "" {
			v = "-"
		}
		w.w.WriteString(v)
	}
	w.w.WriteByte('\n')
	w.count++
	return nil
}

// Flush writes buffered data; it fails when the header's quantity was not met.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
		return err
	}
	if w.quant >= 0 && w.quant != w.count {
		w.err = fmt.Errorf("vendor: header says %d cards, %d written", w.quant, w.count)
	}
	return w.err
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
