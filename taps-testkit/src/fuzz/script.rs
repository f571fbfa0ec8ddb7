//! Writes `machine` inputs from readable scripts: the exact bytes that
//! `arbitrary` decodes into a [`MachineCase`](super::machine::MachineCase) (little-endian integers, a
//! bool is a byte's low bit, `Option` is a bool then the value, a `Vec` is
//! a "more" bool before each element and a false one after, a derived
//! enum's variant `i` of `n` is the `u32` whose `x * n >> 32` is `i`; ops use
//! `MachineOp`'s fixed codes). It mirrors the types of [`super::machine`](mod@super::machine):
//! a field added there must be added here.

/// An input under construction.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

/// Where a `Pick` of the `machine` target points.
#[derive(Clone, Copy, Debug)]
pub enum P {
    /// The latest id seen of its kind.
    Latest,
    /// The n-th id seen of its kind (modulo how many there are).
    Nth(u8),
}

/// What a `Connect`/`Initiate` frames with: (kind, max).
pub type Framing = Option<(u8, u16)>;

/// A message: (len, replayable, final).
pub type Msg = (u16, bool, bool);

/// An interface: (index, v4, v6, up).
pub type Iface = (u8, bool, bool, bool);

impl Enc {
    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    /// A little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A bool: one byte, its low bit.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }
    fn variant(&mut self, i: u32, n: u32) -> &mut Self {
        let x = ((u64::from(i) << 32).div_ceil(u64::from(n))) as u32;
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn pick(&mut self, p: P) -> &mut Self {
        match p {
            P::Latest => self.variant(0, 3),
            P::Nth(n) => self.variant(1, 3).u8(n),
        }
    }
    fn framer(&mut self, f: Framing) -> &mut Self {
        match f {
            None => self.bool(false),
            Some((kind, max)) => self.bool(true).u8(kind).u16(max),
        }
    }
    fn msg(&mut self, (len, replayable, is_final): Msg) -> &mut Self {
        // MsgSpec: len, fill, replayable, is_final, priority, lifetime.
        self.u16(len)
            .u8(b'm')
            .bool(replayable)
            .bool(is_final)
            .u8(0)
            .bool(false)
    }
    fn op(&mut self, code: u8) -> &mut Self {
        self.bool(true).u8(code)
    }

    /// `ConfigSpec`: seed, max_connections, no limits, a race (policy,
    /// delay, family count, path mode, concurrency, candidates),
    /// servers, attempts.
    pub fn config(&mut self, servers: u8, race: [u8; 5], delay: u16) -> &mut Self {
        let [policy, fafc, path_mode, concurrent, candidates] = race;
        self.u8(1).u8(0).bool(false);
        self.u8(policy)
            .u16(delay)
            .u8(fafc)
            .u8(path_mode)
            .u8(concurrent)
            .u8(candidates);
        self.u8(servers).u8(2)
    }
    /// The default configuration: HEv3, one DNS server.
    pub fn default_config(&mut self) -> &mut Self {
        self.config(1, [0, 1, 0, 8, 0], 250)
    }

    /// `Initiate` to target variant `target` (0 V4, 1 V6, 2 Name, 3
    /// NameOtherPort, 4 Hosts, 5 Localhost, 6 NoPort, 7 Service).
    pub fn initiate(
        &mut self,
        target: u32,
        tls: bool,
        framer: Framing,
        conn_timeout: Option<u16>,
    ) -> &mut Self {
        self.op(0).variant(target, 9).bool(tls).framer(framer);
        self.bool(false).bool(false).bool(false).bool(false);
        match conn_timeout {
            None => self.bool(false),
            Some(ms) => self.bool(true).u16(ms),
        }
    }
    /// `Send` of `msg` on `conn`.
    pub fn send(&mut self, conn: P, msg: Msg) -> &mut Self {
        self.op(1).pick(conn).msg(msg)
    }
    /// `Receive` of 1 to 4096 bytes on `conn`.
    pub fn receive(&mut self, conn: P) -> &mut Self {
        self.op(2).pick(conn).u16(1).u16(4096)
    }
    /// `Read` of up to `len` bytes from `conn`.
    pub fn read(&mut self, conn: P, len: u16) -> &mut Self {
        self.op(3).pick(conn).u16(len)
    }
    /// `Write` of `len` bytes to `conn`.
    pub fn write(&mut self, conn: P, len: u16) -> &mut Self {
        self.op(4).pick(conn).u16(len)
    }
    /// `Close` of `conn`.
    pub fn close(&mut self, conn: P) -> &mut Self {
        self.op(5).pick(conn)
    }
    /// `Abort` of `conn`.
    pub fn abort(&mut self, conn: P) -> &mut Self {
        self.op(6).pick(conn)
    }
    /// `Listen` on 192.0.2.10:443.
    pub fn listen(&mut self, tls: bool, limit: Option<u8>) -> &mut Self {
        self.op(7).bool(tls).framer(None);
        match limit {
            None => self.bool(false),
            Some(l) => self.bool(true).u8(l),
        };
        self.u8(0)
    }
    /// `Accept` on `listener` from 198.51.100.`remote`:40000.
    pub fn accept(&mut self, listener: P, remote: u8) -> &mut Self {
        self.op(8).pick(listener).u8(remote)
    }
    /// `Stop` of `listener`.
    pub fn stop(&mut self, listener: P) -> &mut Self {
        self.op(9).pick(listener)
    }
    /// `DnsAnswer` with addresses from the pool.
    pub fn dns_addrs(&mut self, txn: P, pool: &[u8]) -> &mut Self {
        self.op(12).pick(txn).variant(0, 6);
        for &a in pool {
            self.bool(true).u8(a);
        }
        self.bool(false).u16(60).bool(false).bool(false)
    }
    /// `DnsAnswer` that is negative (NoData).
    pub fn dns_nodata(&mut self, txn: P) -> &mut Self {
        self.op(12).pick(txn).variant(2, 6).bool(false).bool(false)
    }
    /// `Connected`: `socket`'s TCP handshake completed.
    pub fn connected(&mut self, socket: P) -> &mut Self {
        self.op(15).pick(socket)
    }
    /// `Eof`: the peer of `socket` sent FIN.
    pub fn eof(&mut self, socket: P) -> &mut Self {
        self.op(17).pick(socket)
    }
    /// `Link` of an attempt's `socket` to a new connection of `listener`.
    pub fn link(&mut self, socket: P, listener: P) -> &mut Self {
        self.op(20).pick(socket).pick(listener)
    }
    /// `Flow`: bytes along every link until nothing moves.
    pub fn flow(&mut self) -> &mut Self {
        self.op(21)
    }
    /// `Trickle`: at most `chunk` bytes along each link, once.
    pub fn trickle(&mut self, chunk: u16) -> &mut Self {
        self.op(22).u16(chunk)
    }
    /// `Connect`: a listener and an initiate to it, linked and flowed.
    pub fn connect(&mut self, tls: bool, framer: Framing, first: Option<Msg>) -> &mut Self {
        self.op(23).bool(tls).framer(framer);
        match first {
            None => self.bool(false),
            Some(m) => self.bool(true).msg(m),
        };
        self.bool(false)
    }
    /// `Bulk`: `count` sends of `msg` on `conn`.
    pub fn bulk(&mut self, conn: P, msg: Msg, count: u8) -> &mut Self {
        self.op(24).pick(conn).msg(msg).u8(count)
    }
    /// `Flood`: `len` bytes arrive on `socket`.
    pub fn flood(&mut self, socket: P, len: u16) -> &mut Self {
        self.op(25).pick(socket).u16(len).u8(b'f')
    }
    /// `Interfaces`: kind Wired, not expensive or constrained.
    pub fn interfaces(&mut self, list: &[Iface]) -> &mut Self {
        self.op(26);
        for &(index, v4, v6, up) in list {
            // IfaceSpec: index, kind, v4, v6, link_local_only, up,
            // expensive, constrained.
            self.bool(true)
                .u8(index)
                .u8(0)
                .bool(v4)
                .bool(v6)
                .bool(false)
                .bool(up);
            self.bool(false).bool(false);
        }
        self.bool(false).bool(false)
    }
    /// `Advance` of the clock by `ms`.
    pub fn advance(&mut self, ms: u16) -> &mut Self {
        self.op(27).u16(ms)
    }
    /// `TimeoutNow`: `handle_timeout` now, due or not.
    pub fn timeout_now(&mut self) -> &mut Self {
        self.op(31)
    }
    /// `DelegateReading` of `conn`.
    pub fn delegate_reading(&mut self, conn: P) -> &mut Self {
        self.op(28).pick(conn)
    }
    /// `PlainThrough`: a plain stream's pass-through write or read.
    pub fn plain_through(&mut self, conn: P, write: bool, len: u16) -> &mut Self {
        self.op(29).pick(conn).bool(write).u16(len)
    }
    /// `TlsThrough`: a read or write through a checked-out TLS session.
    pub fn tls_through(&mut self, conn: P, write: bool, len: u16, room: u16) -> &mut Self {
        self.op(30).pick(conn).bool(write).u16(len).u16(room)
    }
}
