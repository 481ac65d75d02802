// An SMSC for resub's SMPP interop tests, built on node-smpp (an SMPP
// implementation resub did not write). It listens on 127.0.0.1, prints
// one JSON line per event on stdout (every PDU as the server decoded it),
// and behaves as the scenario in argv[2] (JSON) says:
//
//   system_id, password   the only credentials it binds
//   throttle              answer the first N submit_sm with ESME_RTHROTTLED
//   queue_full            answer the next N submit_sm with ESME_RMSGQFUL
//   reject                {destination: command_status} permanent errors
//   hold_ms               answer each submit_sm after this delay
//   drop_after            destroy the connection on the Nth submit_sm
//                         (unanswered; only the first connection)
//   receipt               stat of the receipt sent after each accepted
//                         segment (DELIVRD, UNDELIV, …; none when absent)
//   receipt_text_only     send the receipt as appendix B text, no TLVs
//   por                   {destination: hex} a mobile-originated PoR from
//                         the destination once its last segment (by UDH)
//                         was accepted
//   garbage_mo            send one deliver_sm whose UDH cannot be parsed
//
// stdin takes JSON lines: {"op":"drop"} destroys every connection;
// {"op":"mo","source":MSISDN,"dest":ADDR,"ud":HEX} sends a
// mobile-originated deliver_sm; {"op":"stats"} prints counts.
'use strict';
const smpp = require('smpp');
const readline = require('readline');

const sc = JSON.parse(process.argv[2] || '{}');
// receivers are the sessions bound to receive (receiver or transceiver):
// receipts and MO messages go to the latest one.
let receiver = null;
let submits = 0, throttled = 0, queueFull = 0, nextId = 1, outstanding = 0, maxOutstanding = 0, connections = 0;
const sessions = new Set();

function out(ev) {
	ev.t = Date.now();
	process.stdout.write(JSON.stringify(ev) + '\n');
}

function hex(b) {
	return Buffer.isBuffer(b) ? b.toString('hex') : '';
}

function raw(pdu) {
	// short_message as the octets on the wire (node-smpp splits the UDH).
	const m = pdu.short_message;
	if (Buffer.isBuffer(m)) return m;
	if (m && m.udh) {
		const ies = Buffer.concat(m.udh);
		const rest = Buffer.isBuffer(m.message) ? m.message : Buffer.from(m.message || '', 'binary');
		return Buffer.concat([Buffer.from([ies.length]), ies, rest]);
	}
	if (m && Buffer.isBuffer(m.message)) return m.message;
	return Buffer.alloc(0);
}

// lastSegment says whether the UD is a single SM or the last of a
// concatenated one (IEI 00: ref, total, seq).
function lastSegment(ud) {
	if (ud.length === 0) return true;
	const udhl = ud[0];
	let i = 1;
	while (i < 1 + udhl) {
		const iei = ud[i], len = ud[i + 1];
		if (iei === 0x00 && len === 3) return ud[i + 3] === ud[i + 4];
		i += 2 + len;
	}
	return true;
}

const server = smpp.createServer({}, function(session) {
	connections++;
	const conn = connections;
	sessions.add(session);
	let bound = false;
	session.on('close', () => { sessions.delete(session); if (receiver === session) receiver = null; out({event: 'close', conn}); });
	session.on('error', (e) => out({event: 'error', conn, error: String(e)}));
	const bind = (pdu) => {
		out({event: 'pdu', conn, command: pdu.command, sequence: pdu.sequence_number, system_id: pdu.system_id, system_type: pdu.system_type, interface_version: pdu.interface_version});
		if (pdu.system_id !== sc.system_id || pdu.password !== sc.password) {
			session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
			return;
		}
		bound = true;
		if (pdu.command !== 'bind_transmitter') receiver = session;
		session.send(pdu.response({system_id: 'node-smsc'}));
	};
	session.on('bind_transceiver', bind);
	session.on('bind_transmitter', bind);
	session.on('bind_receiver', bind);
	session.on('enquire_link', (pdu) => {
		out({event: 'pdu', conn, command: pdu.command, sequence: pdu.sequence_number});
		session.send(pdu.response());
	});
	session.on('unbind', (pdu) => {
		out({event: 'pdu', conn, command: pdu.command, sequence: pdu.sequence_number});
		session.send(pdu.response());
		session.close();
	});
	session.on('deliver_sm_resp', (pdu) => {
		out({event: 'pdu', conn, command: pdu.command, sequence: pdu.sequence_number, command_status: pdu.command_status});
	});
	session.on('submit_sm', (pdu) => {
		submits++;
		const ud = raw(pdu);
		out({event: 'pdu', conn, command: 'submit_sm', sequence: pdu.sequence_number, bound,
			service_type: pdu.service_type,
			source_addr_ton: pdu.source_addr_ton, source_addr_npi: pdu.source_addr_npi, source_addr: pdu.source_addr,
			dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi, destination_addr: pdu.destination_addr,
			esm_class: pdu.esm_class, protocol_id: pdu.protocol_id, priority_flag: pdu.priority_flag,
			validity_seconds: pdu.validity_period instanceof Date ? Math.round((pdu.validity_period.getTime() - Date.now()) / 1000) : null,
			registered_delivery: pdu.registered_delivery, data_coding: pdu.data_coding, short_message: hex(ud)});
		if (sc.drop_after && submits === sc.drop_after && conn === 1) {
			out({event: 'dropping', conn});
			session.socket.destroy();
			return;
		}
		outstanding++;
		maxOutstanding = Math.max(maxOutstanding, outstanding);
		const answer = () => {
			outstanding--;
			if (!session.socket.writable) return;
			const send = session.send.bind(session);
			const respond = (r) => {
				out({event: 'resp', conn, sequence: pdu.sequence_number, command_status: r.command_status || 0});
				send(r);
			};
			if (sc.throttle && throttled < sc.throttle) {
				throttled++;
				respond(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
				return;
			}
			if (sc.queue_full && queueFull < sc.queue_full) {
				queueFull++;
				respond(pdu.response({command_status: smpp.ESME_RMSGQFUL}));
				return;
			}
			const rej = sc.reject && sc.reject[pdu.destination_addr];
			if (rej) {
				respond(pdu.response({command_status: rej}));
				return;
			}
			const id = 'n' + (nextId++);
			respond(pdu.response({message_id: id}));
			if (sc.receipt) {
				const stat = sc.receipt;
				const text = 'id:' + id + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') + ' submit date:2612071200 done date:2612071200 stat:' + stat + ' err:000 text:';
				const opts = {source_addr: pdu.destination_addr, source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
					destination_addr: pdu.source_addr, dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi,
					esm_class: 0x04, short_message: Buffer.from(text, 'ascii')};
				if (!sc.receipt_text_only) {
					const states = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};
					opts.receipted_message_id = id;
					opts.message_state = states[stat];
				}
				(receiver || session).deliver_sm(opts);
			}
			const por = sc.por && sc.por[pdu.destination_addr];
			if (por && lastSegment(ud)) {
				(receiver || session).deliver_sm({source_addr: pdu.destination_addr, source_addr_ton: 1, source_addr_npi: 1,
					destination_addr: pdu.source_addr, dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi,
					esm_class: 0x40, protocol_id: 0x7f, data_coding: 0xf6, short_message: Buffer.from(por, 'hex')});
			}
			if (sc.garbage_mo) {
				sc.garbage_mo = false;
				session.deliver_sm({source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
					esm_class: 0x40, data_coding: 0xf6, short_message: Buffer.from('09ffff', 'hex')});
			}
		};
		if (sc.hold_ms) setTimeout(answer, sc.hold_ms); else answer();
	});
});

server.listen(0, '127.0.0.1', () => out({event: 'listening', port: server.address().port}));

readline.createInterface({input: process.stdin}).on('line', (line) => {
	const cmd = JSON.parse(line);
	if (cmd.op === 'drop') {
		for (const s of sessions) s.socket.destroy();
	}
	if (cmd.op === 'mo') {
		// A mobile-originated message (a card's PoR) on every bound session.
		for (const sess of (receiver ? [receiver] : sessions)) {
			sess.deliver_sm({source_addr: cmd.source, source_addr_ton: 1, source_addr_npi: 1,
				destination_addr: cmd.dest, dest_addr_ton: 0, dest_addr_npi: 1,
				esm_class: 0x40, protocol_id: 0x7f, data_coding: 0xf6, short_message: Buffer.from(cmd.ud, 'hex')});
		}
	}
	if (cmd.op === 'stats') {
		out({event: 'stats', submits, max_outstanding: maxOutstanding, connections});
	}
}).on('close', () => process.exit(0));
