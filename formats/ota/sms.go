package ota

import (
	"fmt"
	"slices"
)

// SMS-PP sizes (TS 31.115 §4.2, §4.3; 140-octet TP-UD).
const (
	MaxTPUD         = 140
	MaxSinglePacket = MaxTPUD - 3 // after UDH 02 70 00
	firstCapacity   = MaxTPUD - 8 // after 07 00 03 ref n 01 70 00
	laterCapacity   = MaxTPUD - 6 // after 05 00 03 ref n i
	maxSegments     = 255
)

// Information element identifiers of the user data header.
const (
	ieiConcat8  = 0x00
	ieiConcat16 = 0x08
	ieiCPI      = 0x70 // command packet identifier
	ieiRPI      = 0x71 // response packet identifier
)

// SegmentCount returns the number of SMS needed for a packet of n octets.
func SegmentCount(n int) int {
	if n <= MaxSinglePacket {
		return 1
	}
	n -= firstCapacity
	return 1 + (n+laterCapacity-1)/laterCapacity
}

// Segment cuts a command packet (CPL to the end) into the TP-UD of one or
// more SMS-PP messages. ref is the 8-bit concatenation reference; it must
// differ between consecutive concatenated messages to the same card. The
// segments share one backing array.
func Segment(pkt []byte, ref byte) ([][]byte, error) {
	n := SegmentCount(len(pkt))
	_, segs, err := AppendSegments(make([]byte, 0, segmentedLen(len(pkt), n)), make([][]byte, 0, n), pkt, ref)
	return segs, err
}

// segmentedLen is the length of the TP-UD of n segments carrying a packet
// of pktLen octets.
func segmentedLen(pktLen, n int) int {
	if n == 1 {
		return 3 + pktLen
	}
	return pktLen + 8 + 6*(n-1)
}

// AppendSegments is Segment into the caller's buffers: it appends the
// TP-UD of every SMS to dst and each one's slice of it to segs, and
// returns both. With buffers of enough capacity it does not allocate.
func AppendSegments(dst []byte, segs [][]byte, pkt []byte, ref byte) ([]byte, [][]byte, error) {
	n := SegmentCount(len(pkt))
	if n > maxSegments {
		return dst, segs, fmt.Errorf("%w: %d octets need %d SMS", ErrTooLong, len(pkt), n)
	}
	// Grown once, so that every segment's slice stays in one array.
	dst = slices.Grow(dst, segmentedLen(len(pkt), n))
	if n == 1 {
		s := len(dst)
		dst = append(dst, 0x02, ieiCPI, 0x00)
		dst = append(dst, pkt...)
		return dst, append(segs, dst[s:len(dst):len(dst)]), nil
	}
	for i := range n {
		s := len(dst)
		var chunk []byte
		if i == 0 {
			dst = append(dst, 0x07, ieiConcat8, 0x03, ref, byte(n), 1, ieiCPI, 0x00)
			chunk = pkt[:firstCapacity]
			pkt = pkt[firstCapacity:]
		} else {
			dst = append(dst, 0x05, ieiConcat8, 0x03, ref, byte(n), byte(i+1))
			k := min(len(pkt), laterCapacity)
			chunk = pkt[:k]
			pkt = pkt[k:]
		}
		dst = append(dst, chunk...)
		segs = append(segs, dst[s:len(dst):len(dst)])
	}
	return dst, segs, nil
}

// udh is the part of a user data header this package cares about.
type udh struct {
	concat   bool
	ref      int
	total    int
	seq      int
	cpi, rpi bool
	dataOff  int // offset of the data after the UDH
}

func parseUDH(ud []byte) (udh, error) {
	var h udh
	if len(ud) < 1 || int(ud[0])+1 > len(ud) {
		return h, fmt.Errorf("%w: user data header length", ErrFormat)
	}
	hdr := ud[1 : 1+int(ud[0])]
	h.dataOff = 1 + int(ud[0])
	for len(hdr) > 0 {
		if len(hdr) < 2 || int(hdr[1])+2 > len(hdr) {
			return h, fmt.Errorf("%w: user data header element", ErrFormat)
		}
		iei, v := hdr[0], hdr[2:2+int(hdr[1])]
		switch iei {
		case ieiConcat8:
			if len(v) != 3 || h.concat {
				return h, fmt.Errorf("%w: concatenation element", ErrFormat)
			}
			h.concat, h.ref, h.total, h.seq = true, int(v[0]), int(v[1]), int(v[2])
		case ieiConcat16:
			if len(v) != 4 || h.concat {
				return h, fmt.Errorf("%w: concatenation element", ErrFormat)
			}
			h.concat, h.ref, h.total, h.seq = true, int(v[0])<<8|int(v[1]), int(v[2]), int(v[3])
		case ieiCPI:
			h.cpi = true
		case ieiRPI:
			h.rpi = true
		}
		hdr = hdr[2+int(hdr[1]):]
	}
	if h.concat && (h.total == 0 || h.seq == 0 || h.seq > h.total) {
		return h, fmt.Errorf("%w: concatenation %d of %d", ErrFormat, h.seq, h.total)
	}
	return h, nil
}

// Reassemble joins the TP-UD of the SMS that carry one command packet, in
// any order, and returns the packet (CPL to the end). Either order of the
// elements in the first segment's header is accepted, and 16-bit
// references too. It checks that the command packet identifier is present
// (in the only or the first segment), that all segments share one
// reference and count, and that none is missing or repeated.
func Reassemble(segments [][]byte) ([]byte, error) {
	if len(segments) == 0 {
		return nil, fmt.Errorf("%w: no segments", ErrFormat)
	}
	hs := make([]udh, len(segments))
	for i, s := range segments {
		h, err := parseUDH(s)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	if len(segments) == 1 && !hs[0].concat {
		if !hs[0].cpi {
			return nil, fmt.Errorf("%w: no command packet identifier", ErrFormat)
		}
		return slices.Clone(segments[0][hs[0].dataOff:]), nil
	}
	n := hs[0].total
	if !hs[0].concat || n != len(segments) {
		return nil, fmt.Errorf("%w: %d segments for a message of %d", ErrFormat, len(segments), n)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = -1
	}
	size := 0
	for i, h := range hs {
		if !h.concat || h.ref != hs[0].ref || h.total != n {
			return nil, fmt.Errorf("%w: segment %d belongs to another message", ErrFormat, i)
		}
		if order[h.seq-1] >= 0 {
			return nil, fmt.Errorf("%w: segment %d repeated", ErrFormat, h.seq)
		}
		if h.cpi != (h.seq == 1) {
			return nil, fmt.Errorf("%w: command packet identifier in segment %d", ErrFormat, h.seq)
		}
		order[h.seq-1] = i
		size += len(segments[i]) - h.dataOff
	}
	pkt := make([]byte, 0, size)
	for _, i := range order {
		pkt = append(pkt, segments[i][hs[i].dataOff:]...)
	}
	return pkt, nil
}
