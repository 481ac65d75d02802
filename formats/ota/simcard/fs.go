package simcard

import (
	"encoding/binary"
)

// node is a file of the simulated card: a DF (children) or a transparent
// EF (data).
type node struct {
	fid      uint16
	parent   *node
	children map[uint16]*node
	data     []byte
	// resp is the answer to a SELECT that asks for one (FCP for CLA 00,
	// GSM 11.11 response for CLA A0); nil means generated.
	resp []byte
}

func (n *node) isDF() bool { return n.children != nil }

func newDF(parent *node, fid uint16) *node {
	d := &node{fid: fid, parent: parent, children: map[uint16]*node{}}
	if parent != nil {
		parent.children[fid] = d
	}
	return d
}

func newEF(parent *node, fid uint16, data []byte) *node {
	e := &node{fid: fid, parent: parent, data: data}
	parent.children[fid] = e
	return e
}

// fcp builds a minimal FCP template (TS 102 221 §11.1.1.3).
func (n *node) fcp() []byte {
	desc := []byte{0x82, 0x02, 0x41, 0x21}
	if n.isDF() {
		desc = []byte{0x82, 0x02, 0x78, 0x21}
	}
	b := append([]byte{0x62, 0x00}, desc...)
	b = append(b, 0x83, 0x02, byte(n.fid>>8), byte(n.fid))
	if !n.isDF() {
		b = append(b, 0x80, 0x02, byte(len(n.data)>>8), byte(len(n.data)))
	}
	b = append(b, 0x8a, 0x01, 0x05)
	b[1] = byte(len(b) - 2)
	return b
}

// gsmResponse builds the GSM 11.11 §9.2.1 SELECT response.
func (n *node) gsmResponse() []byte {
	b := make([]byte, 15)
	binary.BigEndian.PutUint16(b[4:], n.fid)
	if n.isDF() {
		b[6] = 0x02
		b[12] = 0x09
		b = append(b[:13], 0xb1, 0, 0, 0x04, 0x00, 0x83, 0x8a, 0x83, 0x8a)
		for _, c := range n.children {
			if c.isDF() {
				b[14]++
			} else {
				b[15]++
			}
		}
		return b
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(n.data)))
	b[6] = 0x04
	b[12] = 0x02
	return b
}

// fileSystem is the tree and the current selection of one RFM session.
type fileSystem struct {
	mf, adf *node
}

type session struct {
	fs     *fileSystem
	cla    byte
	curDF  *node
	curEF  *node
	lastRs []byte // response data waiting for GET RESPONSE
}

// find resolves a FID from the current DF as TS 102 221 §8.4.1 allows:
// MF, the current application (7FFF), the current DF itself, its
// children, its parent, and the DFs beside it.
func (s *session) find(fid uint16) *node {
	switch fid {
	case 0x3f00:
		return s.fs.mf
	case 0x7fff:
		return s.fs.adf
	}
	d := s.curDF
	if d.fid == fid {
		return d
	}
	if c, ok := d.children[fid]; ok {
		return c
	}
	if p := d.parent; p != nil {
		if p.fid == fid {
			return p
		}
		if c, ok := p.children[fid]; ok && c.isDF() {
			return c
		}
	}
	return nil
}
