package ota

// Encoder builds the messages of a batch in which every message goes to
// another card with its own keys. It keeps one codec and the buffers of
// the secured data, the packet and the segments, and reuses them for the
// next message: a message costs the key schedules of its keys and the
// cipher work, nothing else. Give each worker its own Encoder; it is not
// safe for concurrent use.
type Encoder struct {
	codec Codec
	data  []byte
	pkt   []byte
	ud    []byte
	segs  [][]byte
}

// Message secures the secured data (the script, already joined in its
// command format; see SecuredData) under p and k with counter and cuts the
// packet into SMS-PP segments with concatenation reference ref, exactly as
// BuildMessage does. The message shares the encoder's buffers: it is valid
// until the next call. The keys are expanded into the encoder's cipher
// state; the caller may zero k afterwards.
func (e *Encoder) Message(p Params, k Keys, counter uint64, data []byte, ref byte) (Message, error) {
	if err := e.codec.Rekey(p, k); err != nil {
		return Message{}, err
	}
	var err error
	if e.pkt, err = e.codec.EncodeCommand(e.pkt[:0], counter, data); err != nil {
		return Message{}, err
	}
	if e.ud, e.segs, err = AppendSegments(e.ud[:0], e.segs[:0], e.pkt, ref); err != nil {
		return Message{}, err
	}
	return Message{Packet: e.pkt, Segments: e.segs}, nil
}

// ScriptMessage is Message for a script of APDUs joined in format f into
// the encoder's own buffer.
func (e *Encoder) ScriptMessage(p Params, k Keys, f CommandFormat, counter uint64, apdus []APDU, ref byte) (Message, error) {
	e.data = SecuredData(e.data[:0], f, apdus)
	return e.Message(p, k, counter, e.data, ref)
}
