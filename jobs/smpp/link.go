package smpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"
)

// TLSConfig names what TLS to the SMSC needs.
type TLSConfig struct {
	On         bool
	CAFile     string
	ServerName string
}

func (t TLSConfig) config(host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if c.ServerName == "" {
		c.ServerName = host
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// frame is one PDU as read: its header and the decoded PDU (nil when the
// body could not be decoded; err says why).
type frame struct {
	id     data.CommandIDType
	status uint32
	seq    int32
	p      pdu.PDU
	err    error
}

// link is one bound SMPP connection.
type link struct {
	c    net.Conn
	wmu  sync.Mutex
	bw   *bufio.Writer
	seq  atomic.Int32
	last atomic.Int64 // unix nanos of the last PDU read
	// frames gets every PDU read; done closes when reading ends.
	frames chan frame
	done   chan struct{}
	err    error
}

func dial(ctx context.Context, cfg Config) (*link, error) {
	d := net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var c net.Conn
	var err error
	if cfg.TLS.On {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		tc, terr := cfg.TLS.config(host)
		if terr != nil {
			return nil, terr
		}
		td := tls.Dialer{NetDialer: &d, Config: tc}
		c, err = td.DialContext(dctx, "tcp", cfg.Addr)
	} else {
		c, err = d.DialContext(dctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, &UnreachableError{Err: err}
	}
	l := &link{c: c, bw: bufio.NewWriterSize(c, 32<<10), frames: make(chan frame, 1024), done: make(chan struct{})}
	l.last.Store(time.Now().UnixNano())
	go l.read()
	return l, nil
}

// read decodes PDUs until the connection ends. A body that does not
// decode still yields its header, so that it can be answered.
func (l *link) read() {
	defer close(l.done)
	br := bufio.NewReaderSize(l.c, 64<<10)
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			l.err = err
			return
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		if n < 16 || n > data.MAX_PDU_LEN {
			l.err = fmt.Errorf("PDU length %d out of bounds", n)
			return
		}
		buf := make([]byte, n)
		copy(buf, hdr[:])
		if _, err := io.ReadFull(br, buf[16:]); err != nil {
			l.err = err
			return
		}
		l.last.Store(time.Now().UnixNano())
		f := frame{id: data.CommandIDType(binary.BigEndian.Uint32(hdr[4:8])), status: binary.BigEndian.Uint32(hdr[8:12]), seq: int32(binary.BigEndian.Uint32(hdr[12:16]))}
		p, err := pdu.CreatePDUFromCmdID(f.id)
		if err == nil {
			err = p.Unmarshal(pdu.NewBuffer(buf))
		}
		if err != nil {
			f.err = err
		} else {
			f.p = p
		}
		l.frames <- f
	}
}

// send writes one PDU under a fresh sequence number (or seq when not
// zero) and returns the number used.
func (l *link) send(p pdu.PDU, seq int32) (int32, error) {
	if seq == 0 {
		seq = l.next()
	}
	p.SetSequenceNumber(seq)
	b := pdu.NewBuffer(make([]byte, 0, 256))
	p.Marshal(b)
	return seq, l.write(b.Bytes())
}

func (l *link) next() int32 {
	for {
		s := l.seq.Add(1)
		if s > 0 && s <= 0x7FFFFFFF {
			return s
		}
		l.seq.Store(0)
	}
}

// write writes raw PDU bytes and flushes.
func (l *link) write(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := l.bw.Write(b); err != nil {
		return err
	}
	return l.bw.Flush()
}

// writeBuffered writes without flushing (the caller flushes once a burst
// is written).
func (l *link) writeBuffered(b []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := l.bw.Write(b)
	return err
}

func (l *link) flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.bw.Flush()
}

func (l *link) close() {
	_ = l.c.Close()
}

// respond answers a request by sequence number with a bare response
// (header only, or a body of one empty C-string where SMPP wants one).
func (l *link) respond(id data.CommandIDType, seq int32, status uint32, body []byte) error {
	b := make([]byte, 16+len(body))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.BigEndian.PutUint32(b[4:8], uint32(id))
	binary.BigEndian.PutUint32(b[8:12], status)
	binary.BigEndian.PutUint32(b[12:16], uint32(seq))
	copy(b[16:], body)
	return l.write(b)
}

// bind binds the link and waits for the answer.
func (l *link) bind(ctx context.Context, cfg Config, t pdu.BindingType) error {
	req := pdu.NewBindRequest(t)
	req.SystemID = cfg.SystemID
	req.Password = string(cfg.Password)
	req.SystemType = cfg.SystemType
	req.InterfaceVersion = data.SMPP_V34
	req.AddressRange = pdu.AddressRange{}
	seq, err := l.send(req, 0)
	if err != nil {
		return &UnreachableError{Err: err}
	}
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	for {
		select {
		case f := <-l.frames:
			if f.seq != seq {
				continue // nothing else may come before the bind answer
			}
			if f.status != StatusOK {
				return &BindError{Status: f.status}
			}
			return nil
		case <-l.done:
			return &UnreachableError{Err: fmt.Errorf("connection closed during bind: %w", errOr(l.err))}
		case <-timer.C:
			return &UnreachableError{Err: errors.New("no bind response within the timeout")}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func errOr(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}
