package simcard

import (
	"bytes"

	"resub/formats/ota"
)

// Status words.
const (
	swOK            = 0x9000
	swWrongLength   = 0x6700
	swNoCurrentEF   = 0x6986
	swNotFound      = 0x6a82
	swWrongP1P2     = 0x6b00
	swBadINS        = 0x6d00
	swBadData       = 0x6a80
	swWrongParamsP1 = 0x6a86
)

// leOnly lists the instructions whose P3 is Le (no command data): READ
// BINARY, READ RECORD, GET RESPONSE, STATUS, GET DATA.
func leOnly(ins byte) bool {
	switch ins {
	case 0xb0, 0xb2, 0xc0, 0xf2, 0xca:
		return true
	}
	return false
}

// splitCompact cuts compact-format secured data into APDUs by their P3.
func splitCompact(data []byte) ([]ota.APDU, bool) {
	var out []ota.APDU
	for len(data) > 0 {
		if len(data) < 5 {
			if len(data) == 4 { // case 1
				out = append(out, data)
				return out, true
			}
			return out, false
		}
		n := 5
		if !leOnly(data[1]) {
			n += int(data[4])
		}
		if n > len(data) {
			return out, false
		}
		out = append(out, data[:n:n])
		data = data[n:]
	}
	return out, true
}

// splitExpanded reads the C-APDU TLVs of a command scripting template.
func splitExpanded(data []byte) ([]ota.APDU, bool) {
	if len(data) < 2 || (data[0] != 0xaa && data[0] != 0xae) {
		return nil, false
	}
	body := data[2:]
	if data[0] == 0xaa {
		n, off, ok := ber(data[1:])
		if !ok || 1+off+n != len(data) {
			return nil, false
		}
		body = data[1+off:]
	} else if len(data) < 4 || !bytes.HasSuffix(data, []byte{0, 0}) {
		return nil, false
	} else {
		body = data[2 : len(data)-2]
	}
	var out []ota.APDU
	for len(body) > 0 {
		n, off, ok := ber(body[1:])
		if !ok || 1+off+n > len(body) {
			return nil, false
		}
		if body[0] == 0x22 {
			out = append(out, body[1+off:1+off+n])
		}
		body = body[1+off+n:]
	}
	return out, true
}

func ber(b []byte) (int, int, bool) {
	switch {
	case len(b) == 0:
		return 0, 0, false
	case b[0] < 0x80:
		return int(b[0]), 1, true
	case b[0] == 0x81 && len(b) > 1:
		return int(b[1]), 2, true
	case b[0] == 0x82 && len(b) > 2:
		return int(b[1])<<8 | int(b[2]), 3, true
	}
	return 0, 0, false
}

// run executes the secured data for the application behind the TAR and
// builds the PoR's additional data.
func (c *Card) run(app appKind, h ota.CommandHeader, data []byte) runResult {
	expanded := len(data) > 0 && (data[0] == 0xaa || data[0] == 0xae)
	var apdus []ota.APDU
	var ok bool
	if expanded {
		apdus, ok = splitExpanded(data)
	} else {
		apdus, ok = splitCompact(data)
	}
	if !ok {
		if expanded {
			return runResult{data: []byte{0xab, 0x03, 0x90, 0x01, 0x01}}
		}
		return runResult{data: ota.AppendCompactResponse(nil, 0, swWrongLength, nil)}
	}
	s := &session{fs: &c.fs, curDF: c.fs.mf}
	if app == appRFM {
		s.curDF = c.fs.adf
	}
	executed, lastSW := 0, uint16(swOK)
	var lastData []byte
	var rapdus []byte
	for _, a := range apdus {
		executed++
		lastData, lastSW = c.exec(app, s, a)
		if expanded {
			r := append(bytes.Clone(lastData), byte(lastSW>>8), byte(lastSW))
			rapdus = append(append(rapdus, 0x23, byte(len(r))), r...)
		}
		if !continues(lastSW) {
			break
		}
	}
	res := runResult{ok: continues(lastSW)}
	if expanded {
		body := append([]byte{0x80, 0x01, byte(executed)}, rapdus...)
		res.data = append([]byte{0xab, byte(len(body))}, body...)
		if len(body) > 0x7f {
			res.data = append([]byte{0xab, 0x81, byte(len(body))}, body...)
		}
		return res
	}
	res.data = ota.AppendCompactResponse(nil, executed, lastSW, lastData)
	return res
}

// continues reports whether a script goes on after sw: normal processing
// (9000, 61xx, 9Fxx, 91xx) does; warnings (62xx, 63xx) and errors stop it.
func continues(sw uint16) bool {
	switch sw >> 8 {
	case 0x90, 0x61, 0x9f, 0x91:
		return true
	}
	return false
}

// exec runs one APDU.
func (c *Card) exec(app appKind, s *session, a ota.APDU) ([]byte, uint16) {
	if len(a) < 4 {
		return nil, swWrongLength
	}
	s.cla = a[0]
	if t := c.cfg.KeyIndexTemplate; app != appReset && len(t) > c.cfg.KeyIndexOffset &&
		len(a) == len(t) && bytes.Equal(a[:c.cfg.KeyIndexOffset], t[:c.cfg.KeyIndexOffset]) &&
		bytes.Equal(a[c.cfg.KeyIndexOffset+1:], t[c.cfg.KeyIndexOffset+1:]) {
		return nil, c.selectKeyIndex(int(a[c.cfg.KeyIndexOffset]))
	}
	switch app {
	case appReset:
		if !bytes.Equal(a, c.cfg.ResetAPDU) {
			return nil, swBadINS
		}
		c.reset() // REFRESH with UICC reset
		return nil, swOK
	case appKeyIndex:
		return nil, swBadINS
	case appISD:
		return c.execISD(a)
	}
	ins, p1, p2 := a[1], a[2], a[3]
	var p3 int
	var body []byte
	if len(a) >= 5 {
		p3 = int(a[4])
		body = a[5:]
	}
	switch ins {
	case 0xa4: // SELECT by FID, or by DF name (an application's AID)
		var n *node
		switch {
		case p1 == 0x04 && s.cla != 0xa0:
			if len(body) < 5 || len(body) > len(c.cfg.USIMAID) || !bytes.Equal(body, c.cfg.USIMAID[:len(body)]) {
				return nil, swNotFound
			}
			n = s.fs.adf
		case len(body) != 2 || p1 != 0x00:
			return nil, swWrongParamsP1
		default:
			n = s.find(uint16(body[0])<<8 | uint16(body[1]))
		}
		if n == nil {
			return nil, swNotFound
		}
		if n.isDF() {
			s.curDF, s.curEF = n, nil
		} else {
			s.curEF = n
			s.curDF = n.parent
		}
		if s.cla == 0xa0 {
			s.lastRs = n.resp
			if s.lastRs == nil {
				s.lastRs = n.gsmResponse()
			}
			return nil, 0x9f00 | uint16(len(s.lastRs))
		}
		if p2 == 0x0c {
			return nil, swOK
		}
		s.lastRs = n.resp
		if s.lastRs == nil {
			s.lastRs = n.fcp()
		}
		return nil, 0x6100 | uint16(len(s.lastRs))
	case 0xc0: // GET RESPONSE
		if s.lastRs == nil {
			return nil, 0x6985
		}
		r := s.lastRs
		if p3 != 0 && p3 < len(r) {
			r = r[:p3]
		}
		s.lastRs = nil
		return bytes.Clone(r), swOK
	case 0xd6, 0xb0: // UPDATE BINARY, READ BINARY
		if p1&0x80 != 0 {
			return nil, swWrongParamsP1 // SFI addressing is not simulated
		}
		if s.curEF == nil {
			return nil, swNoCurrentEF
		}
		off := int(p1)<<8 | int(p2)
		ef := s.curEF.data
		if ins == 0xb0 {
			n := p3
			if n == 0 {
				n = len(ef) - off
			}
			if off > len(ef) || off+n > len(ef) {
				return nil, swWrongP1P2
			}
			return bytes.Clone(ef[off : off+n]), swOK
		}
		if len(body) != p3 {
			return nil, swWrongLength
		}
		if off+len(body) > len(ef) {
			return nil, swWrongP1P2
		}
		copy(ef[off:], body)
		return nil, swOK
	}
	return nil, swBadINS
}

// selectKeyIndex switches a 3b card to an absolute index, now or at the
// next reset as the card is built.
func (c *Card) selectKeyIndex(i int) uint16 {
	if c.index == 0 || i < 1 || i > len(c.pairs) {
		return swBadData
	}
	if c.cfg.KeyIndexTiming == ota.KeyIndexImmediately {
		c.index, c.pending = i, 0
	} else {
		c.pending = i
	}
	return swOK
}
