package smsc

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"resub/formats/ota/simcard"
)

// SMPPServer is the simulated SMSC as an SMPP 3.4 server on 127.0.0.1:
// it binds ESMEs with one system_id and password, hands each complete
// message (its concatenated segments gathered) to the simulated UICC
// behind the destination MSISDN, answers with a delivery receipt and
// sends the card's PoR back as a mobile-originated deliver_sm to the
// submitter's source address (PoR via SMS-SUBMIT).
type SMPPServer struct {
	s                  *SMSC
	ln                 net.Listener
	systemID, password string
	wg                 sync.WaitGroup
	mu                 sync.Mutex
	conns              map[net.Conn]bool
	nextID             atomic.Int64
	// Sink, set before the first bind, accepts every submit_sm without
	// delivering it (no card, no receipt): submission benchmarks.
	Sink bool
	// HoldMO keeps the cards' PoRs instead of sending them; once it is
	// off, the next session bound to receive gets every one held
	// (benchmarks measure PoR intake alone this way).
	HoldMO atomic.Bool
	heldMu sync.Mutex
	held   []pdu.PDU
	// Stats. Spoofed counts the forged PoRs sent (see SMSC.SetSpoofed).
	Submits, Receipts, PoRs, Spoofed atomic.Int64
	seenMu                           sync.Mutex
	seen                             map[string]int // submit_sm user data (hex) → times
}

// Seen counts how often each user data (hex) was submitted.
func (srv *SMPPServer) Seen() map[string]int {
	srv.seenMu.Lock()
	defer srv.seenMu.Unlock()
	out := make(map[string]int, len(srv.seen))
	for k, v := range srv.seen {
		out[k] = v
	}
	return out
}

// ServeSMPP starts the SMPP server on 127.0.0.1 (a free port).
func (s *SMSC) ServeSMPP(systemID, password string) (*SMPPServer, error) {
	return s.ServeSMPPAt("127.0.0.1:0", systemID, password)
}

// ServeSMPPAt starts the SMPP server on addr.
func (s *SMSC) ServeSMPPAt(addr, systemID, password string) (*SMPPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &SMPPServer{s: s, ln: ln, systemID: systemID, password: password, conns: map[net.Conn]bool{}}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

// Port is the port it listens on.
func (srv *SMPPServer) Port() int { return srv.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and drops every session.
func (srv *SMPPServer) Close() error {
	err := srv.ln.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
	return err
}

func (srv *SMPPServer) accept() {
	defer srv.wg.Done()
	for {
		c, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		srv.conns[c] = true
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() {
				srv.mu.Lock()
				delete(srv.conns, c)
				srv.mu.Unlock()
				c.Close()
			}()
			(&smppConn{srv: srv, c: c, bw: bufio.NewWriter(c), parts: map[string][][]byte{}}).serve()
		}()
	}
}

// smppConn is one ESME's session.
type smppConn struct {
	srv   *SMPPServer
	c     net.Conn
	wmu   sync.Mutex
	bw    *bufio.Writer
	seq   atomic.Int32
	bound bool
	// parts gathers concatenated segments by destination and reference.
	parts map[string][][]byte
	// unacked are the deliver_sm sent and not yet answered, by sequence
	// number: an SMSC stores and forwards, so those the ESME never
	// answered go to the next session bound to receive.
	ackMu   sync.Mutex
	unacked map[int32]pdu.PDU
}

func (sc *smppConn) serve() {
	defer sc.requeueUnacked()
	br := bufio.NewReaderSize(sc.c, 64<<10)
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		if n < 16 || n > data.MAX_PDU_LEN {
			return
		}
		buf := make([]byte, n)
		copy(buf, hdr[:])
		if _, err := io.ReadFull(br, buf[16:]); err != nil {
			return
		}
		id := data.CommandIDType(binary.BigEndian.Uint32(hdr[4:8]))
		seq := int32(binary.BigEndian.Uint32(hdr[12:16]))
		p, err := pdu.CreatePDUFromCmdID(id)
		if err == nil {
			err = p.Unmarshal(pdu.NewBuffer(buf))
		}
		if err != nil {
			if uint32(id)&0x80000000 == 0 {
				sc.respond(data.GENERIC_NACK, seq, uint32(data.ESME_RINVCMDLEN), nil)
			}
			continue
		}
		if !sc.handle(p, seq) {
			sc.flush()
			return
		}
		if br.Buffered() == 0 {
			sc.flush()
		}
	}
}

func (sc *smppConn) handle(p pdu.PDU, seq int32) bool {
	switch q := p.(type) {
	case *pdu.BindRequest:
		resp := map[pdu.BindingType]data.CommandIDType{pdu.Transceiver: data.BIND_TRANSCEIVER_RESP, pdu.Transmitter: data.BIND_TRANSMITTER_RESP, pdu.Receiver: data.BIND_RECEIVER_RESP}[q.BindingType]
		if q.SystemID != sc.srv.systemID || q.Password != sc.srv.password {
			sc.respond(resp, seq, uint32(data.ESME_RINVPASWD), []byte{0})
			return true
		}
		sc.bound = true
		sc.respond(resp, seq, 0, append([]byte("SIM-SMSC"), 0))
		if q.BindingType != pdu.Transmitter && !sc.srv.HoldMO.Load() {
			sc.srv.heldMu.Lock()
			held := sc.srv.held
			sc.srv.held = nil
			sc.srv.heldMu.Unlock()
			for _, p := range held {
				sc.send(p)
			}
		}
	case *pdu.EnquireLink:
		sc.respond(data.ENQUIRE_LINK_RESP, seq, 0, nil)
	case *pdu.Unbind:
		sc.respond(data.UNBIND_RESP, seq, 0, nil)
		return false
	case *pdu.SubmitSM:
		if !sc.bound {
			sc.respond(data.SUBMIT_SM_RESP, seq, uint32(data.ESME_RINVBNDSTS), []byte{0})
			return true
		}
		sc.submit(q, seq)
	case *pdu.DeliverSMResp:
		sc.ackMu.Lock()
		delete(sc.unacked, seq)
		sc.ackMu.Unlock()
	case *pdu.EnquireLinkResp, *pdu.GenericNack:
	default:
		if uint32(p.GetHeader().CommandID)&0x80000000 == 0 {
			sc.respond(data.GENERIC_NACK, seq, uint32(data.ESME_RINVCMDID), nil)
		}
	}
	return true
}

// submit takes one segment: the message goes to the card once complete.
func (sc *smppConn) submit(q *pdu.SubmitSM, seq int32) {
	srv := sc.srv
	srv.Submits.Add(1)
	dest := q.DestAddr.Address()
	ud, _ := q.Message.GetMessageData()
	if h := q.Message.UDH(); len(h) > 0 {
		hb, _ := h.MarshalBinary()
		ud = append(hb, ud...)
	}
	srv.seenMu.Lock()
	if srv.seen == nil {
		srv.seen = map[string]int{}
	}
	srv.seen[hex.EncodeToString(ud)]++
	srv.seenMu.Unlock()
	if srv.Sink {
		sc.respond(data.SUBMIT_SM_RESP, seq, 0, append([]byte(strconv.FormatInt(srv.nextID.Add(1), 10)), 0))
		return
	}
	srv.s.mu.Lock()
	card, unreachable, spoofed := srv.s.cards[dest], srv.s.unreachable[dest], srv.s.spoofed[dest]
	srv.s.mu.Unlock()
	if card == nil {
		sc.respond(data.SUBMIT_SM_RESP, seq, uint32(data.ESME_RINVDSTADR), []byte{0})
		return
	}
	id := strconv.FormatInt(srv.nextID.Add(1), 10)
	sc.respond(data.SUBMIT_SM_RESP, seq, 0, append([]byte(id), 0))
	ref, total, _ := concat(ud)
	key := dest + "/" + strconv.Itoa(ref)
	var segs [][]byte
	if total > 1 {
		sc.parts[key] = append(sc.parts[key], ud)
		if len(sc.parts[key]) != total {
			sc.receipt(q, id, "DELIVRD")
			return
		}
		// In the order of the concatenation IE, as a handset reassembles
		// (a throttled segment may come after the next one).
		segs = sc.parts[key]
		sort.Slice(segs, func(i, j int) bool { _, _, a := concat(segs[i]); _, _, b := concat(segs[j]); return a < b })
		delete(sc.parts, key)
	} else {
		segs = [][]byte{ud}
	}
	if unreachable {
		sc.receipt(q, id, "EXPIRED")
		return
	}
	por, err := card.Receive(segs)
	sc.receipt(q, id, "DELIVRD")
	if errors.Is(err, simcard.ErrNoAnswer) || err != nil {
		return
	}
	srv.PoRs.Add(1)
	if spoofed && len(por) > 0 {
		// Before the card's own PoR, a forged one (the card's with its
		// last octet changed), as an SMS from anyone to the OTA short
		// code would come.
		forged := append([]byte(nil), por...)
		forged[len(forged)-1] ^= 0xa5
		srv.Spoofed.Add(1)
		srv.mo(sc, q, dest, forged)
	}
	srv.mo(sc, q, dest, por)
}

// mo sends a PoR from dest to the submitter of q as a mobile-originated
// deliver_sm (or holds it, see HoldMO).
func (srv *SMPPServer) mo(sc *smppConn, q *pdu.SubmitSM, dest string, por []byte) {
	mo := pdu.NewDeliverSM().(*pdu.DeliverSM)
	mo.SourceAddr, _ = pdu.NewAddressWithTonNpiAddr(q.DestAddr.Ton(), q.DestAddr.Npi(), dest)
	mo.DestAddr, _ = pdu.NewAddressWithTonNpiAddr(q.SourceAddr.Ton(), q.SourceAddr.Npi(), q.SourceAddr.Address())
	mo.EsmClass, mo.ProtocolID = 0x40, 0x7F
	_ = mo.Message.SetMessageDataWithEncoding(por, simCoding{})
	if srv.HoldMO.Load() {
		srv.heldMu.Lock()
		srv.held = append(srv.held, mo)
		srv.heldMu.Unlock()
		return
	}
	sc.send(mo)
}

// receipt sends a delivery receipt (message_state and receipted_message_id
// TLVs and the appendix B text).
func (sc *smppConn) receipt(q *pdu.SubmitSM, id, stat string) {
	if q.RegisteredDelivery&0x03 == 0 {
		return
	}
	sc.srv.Receipts.Add(1)
	r := pdu.NewDeliverSM().(*pdu.DeliverSM)
	r.SourceAddr = q.DestAddr
	r.DestAddr = q.SourceAddr
	r.EsmClass = 0x04
	now := time.Now().UTC().Format("0601021504")
	dl := "001"
	if stat != "DELIVRD" {
		dl = "000"
	}
	_ = r.Message.SetMessageWithEncoding(fmt.Sprintf("id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:000 text:", id, dl, now, now, stat), data.ASCII)
	states := map[string]byte{"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5}
	r.RegisterOptionalParam(pdu.Field{Tag: pdu.TagReceiptedMessageID, Data: append([]byte(id), 0)})
	r.RegisterOptionalParam(pdu.Field{Tag: pdu.TagMessageStateOption, Data: []byte{states[stat]}})
	sc.send(r)
}

// concat reads the concatenation IE (8-bit reference) of a UDH.
func concat(ud []byte) (ref, total, part int) {
	if len(ud) == 0 || int(ud[0])+1 > len(ud) {
		return 0, 1, 1
	}
	h := ud[1 : 1+int(ud[0])]
	for len(h) >= 2 {
		n := 2 + int(h[1])
		if n > len(h) {
			break
		}
		if h[0] == 0x00 && h[1] == 3 {
			return int(h[2]), int(h[3]), int(h[4])
		}
		h = h[n:]
	}
	return 0, 1, 1
}

type simCoding struct{}

func (simCoding) Encode(s string) ([]byte, error) { return []byte(s), nil }
func (simCoding) Decode(b []byte) (string, error) { return string(b), nil }
func (simCoding) DataCoding() byte                { return 0xF6 }

func (sc *smppConn) send(p pdu.PDU) {
	s := sc.seq.Add(1)
	p.SetSequenceNumber(s)
	if _, ok := p.(*pdu.DeliverSM); ok {
		sc.ackMu.Lock()
		if sc.unacked == nil {
			sc.unacked = map[int32]pdu.PDU{}
		}
		sc.unacked[s] = p
		sc.ackMu.Unlock()
	}
	b := pdu.NewBuffer(make([]byte, 0, 256))
	p.Marshal(b)
	sc.write(b.Bytes())
}

func (sc *smppConn) respond(id data.CommandIDType, seq int32, status uint32, body []byte) {
	b := make([]byte, 16+len(body))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], status)
	binary.BigEndian.PutUint32(b[12:16], uint32(seq))
	copy(b[16:], body)
	sc.write(b)
}

// requeueUnacked keeps the deliver_sm this session never had answered
// (in the order they were sent) for the next session bound to receive.
func (sc *smppConn) requeueUnacked() {
	sc.ackMu.Lock()
	seqs := make([]int32, 0, len(sc.unacked))
	for q := range sc.unacked {
		seqs = append(seqs, q)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	ps := make([]pdu.PDU, len(seqs))
	for i, q := range seqs {
		ps[i] = sc.unacked[q]
	}
	sc.unacked = nil
	sc.ackMu.Unlock()
	if len(ps) == 0 {
		return
	}
	sc.srv.heldMu.Lock()
	sc.srv.held = append(sc.srv.held, ps...)
	sc.srv.heldMu.Unlock()
}

// write buffers b; serve flushes once the ESME's pipelined PDUs are
// all handled.
func (sc *smppConn) write(b []byte) {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_, _ = sc.bw.Write(b)
}

func (sc *smppConn) flush() {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_ = sc.bw.Flush()
}
