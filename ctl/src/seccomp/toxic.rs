//! Toxiproxy's toxics on the seccomp backend: the shim's `toxic.rs` carried out from outside the
//! process, each step decided by the same engine functions (`chaos_engine::toxic`) from the
//! connection's state kept here, in its fd view:
//! - `reset_after`: a real RST on our copy once the connection is that old (a timer sends it to
//!   a connection nobody is calling on; the call that finds it due fails with ECONNRESET);
//! - `limit_data`: the call that reaches the limit is made by us with the length cut to it, and
//!   the connection ends (a FIN both ways, and reads see EOF from then on, or a real RST);
//! - `latency`: a read's chunk becomes readable that long after it was first seen queued (the
//!   read is held, then made by us, so that we know whether it drained the chunk); a write that
//!   starts a burst is held that long, then runs;
//! - `slow_close` (reads): the peer's FIN, once nothing is queued before it, is readable that
//!   much after it was first seen: the read that would see the end is held until then;
//! - `bandwidth`: the engine's token bucket; a read or a non-blocking write moves what the
//!   bucket holds, made by us on our copy (a short transfer), after a hold when it is empty; a
//!   blocking write is held until the whole of it is within the rate, then runs;
//! - `slicer`: a read or a non-blocking write moves at most one slice, made by us (a short
//!   transfer), and the next is held until `delay` after it; a blocking write is held for the
//!   delays its slices take, then runs;
//! - `blackhole`: calls are held while the rule is on, looking again every 50 ms; a timed one
//!   (`then`) ends the connection at its time as `limit_data` does.
//!
//! Where the shim answers "not ready yet" with EAGAIN and hides readiness, the call is held in
//! the kernel instead (answered from a thread): an EAGAIN where there is data or room would lose
//! an edge-triggered registration's edge for good (Go's netpoller), and we cannot re-arm it from
//! outside. Such a hold is logged as a `stall` with `degraded`.

use super::args;
use super::breaks::break_connection;
use super::decide::Choice;
use super::events::{self, Applied, Log, OnCall};
use super::fdview::Role;
use super::state::Supervisor;
use super::sys::{self, Answer};
use super::toxic_state::{Shared, State, now};
use chaos_engine::event::schema;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::realise::{Break, Mode};
use chaos_engine::toxic::{self, Limit, Pace, Toxics};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A latency chunk that is readable now (rather than a time it becomes readable).
const CHUNK_OPEN: u64 = u64::MAX;

/// How long a wait sleeps before it looks whether the held call is still there.
const SLICE_NS: u64 = 50_000_000;

/// Carries out a toxic the engine chose for a data call: at once when nothing has to wait,
/// else from a thread (the answer is then `Later`).
#[allow(clippy::too_many_arguments)]
pub fn carry(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    op: Op,
    on: OnCall,
    d: &Choice,
    x: Toxics,
    mode: Mode,
) -> Option<Answer> {
    let dir = op.dir()?;
    let fd = n.data.args[0] as i32;
    let proc = s.procs.get(&tgid)?;
    let view = proc.fds.get(&fd)?;
    let ours = view.ours.as_ref()?.try_clone().ok()?;
    let line = events::fault_line(&s.target, proc, &on, d, &Applied::default());
    let flags = args::msg_flags(op, &n.data.args);
    let state = view.tox.clone();
    let rule_on: Box<dyn Fn() -> bool + Send> = match d.source {
        super::decide::Source::Rule(i) => Box::new(s.target.rule_on(i, proc.budget.start)),
        super::decide::Source::Injection(_) => Box::new(|| true),
        super::decide::Source::Proxy(_) => match &view.proxy {
            Some(t) => Box::new(proxy_blackhole_on(
                s.target.proxies().cloned(),
                t.proxy,
                dir,
            )),
            None => Box::new(|| false),
        },
    };
    if let Some(after) = x.reset_after_ns
        && !state.lock().reset_armed
    {
        arm_reset(
            &state,
            proc.pidfd.try_clone().ok(),
            fd,
            view.ident,
            after,
            {
                let mut line = line.clone();
                line.fault = "reset".into();
                line.effect = Some("reset-after".into());
                line.errno = Some("ECONNRESET".into());
                line.requested = None;
                (s.log.clone(), line)
            },
        );
    }
    let job = Job {
        listener: s.listener.clone(),
        id: n.id,
        pid: tgid,
        args: n.data.args,
        op,
        dir,
        fd: ours,
        tcp: (view.kind == FdKind::Tcp).then_some(view.role == Role::Out),
        stream: view.stream,
        requested: on.requested.unwrap_or(0) as usize,
        peek: flags & libc::MSG_PEEK != 0,
        mode,
        x,
        conn: d.key.conn,
        state,
        rule_on,
        log: s.log.clone(),
        line,
        deadline: match mode {
            Mode::Timeout(ns) => Some(now() + ns),
            _ => None,
        },
        delay: 0,
        effect: None,
        fault: None,
        limit: None,
        waited: false,
        awaits_reset: false,
        released: false,
        paced: 0,
        sliced: false,
        cut: false,
        shut_send: false,
    };
    Some(job.start())
}

/// What a step of a held call does next.
enum Next {
    /// Answer it so.
    Done(Answer),
    /// Hold it this long (a toxic's time), then step again.
    Sleep(u64),
    /// Wait, as the kernel would, at most this long for `events` on the socket, then step again.
    Ready(i16, u64),
}

/// One call under toxics, stepped until it is answered.
struct Job {
    listener: Arc<OwnedFd>,
    id: u64,
    pid: i32,
    args: [u64; 6],
    op: Op,
    dir: Dir,
    /// Our copy of the fd, for as long as the call is held.
    fd: OwnedFd,
    /// TCP (whether we opened it): stream positions come from the socket's counters.
    tcp: Option<bool>,
    stream: bool,
    requested: usize,
    peek: bool,
    mode: Mode,
    x: Toxics,
    /// The connection's key, for a chunk's jitter draw.
    conn: u64,
    state: Shared,
    /// Whether what decided the toxic is still on (a blackhole lasts that long).
    rule_on: Box<dyn Fn() -> bool + Send>,
    log: Log,
    line: schema::Fault,
    /// A blocking call's SO_RCVTIMEO/SO_SNDTIMEO, as a time.
    deadline: Option<u64>,
    /// What it was held for so far, and by which toxic.
    delay: u64,
    effect: Option<&'static str>,
    /// The fault it amounted to, when not merely held (`reset`, `close`, `short`).
    fault: Option<&'static str>,
    limit: Option<u64>,
    /// It waited for data as a blocking call does (what it then found needs no second wait).
    waited: bool,
    /// It is counted among the reads waiting for the reset.
    awaits_reset: bool,
    /// A write's latency was served.
    released: bool,
    /// A blocking write's wait for the rate: when it was due to end (0: not decided yet).
    paced: u64,
    /// A blocking write's wait for its slices was served.
    sliced: bool,
    /// The rate or the slicer cut its length.
    cut: bool,
    /// A write let run on a socket we shut: it fails with EPIPE.
    shut_send: bool,
}

impl Job {
    fn start(mut self) -> Answer {
        let next = self.step();
        if let Next::Done(answer) = next {
            self.finish(answer);
            return answer;
        }
        let listener = self.listener.clone();
        let id = self.id;
        let spawned = std::thread::Builder::new()
            .name("seccomp-toxic".into())
            .spawn(move || self.hold(next));
        match spawned {
            Ok(_) => Answer::Later,
            Err(_) => {
                let _ = sys::notif_send(listener.as_raw_fd(), id, Answer::Continue);
                Answer::Later
            }
        }
    }

    /// Holds the call (on a thread of its own) until a step answers it.
    fn hold(mut self, next: Next) {
        self.hold_until_answered(next);
        if self.awaits_reset {
            self.state.lock().reset_waiters -= 1;
        }
    }

    fn hold_until_answered(&mut self, mut next: Next) {
        loop {
            match next {
                Next::Done(answer) => {
                    if sys::notif_valid(self.listener.as_raw_fd(), self.id) {
                        self.finish(answer);
                        let _ = sys::notif_send(self.listener.as_raw_fd(), self.id, answer);
                    }
                    return;
                }
                Next::Sleep(ns) => {
                    let start = now();
                    let until = self.deadline.map_or(start + ns, |dl| (start + ns).min(dl));
                    if !self.sleep_until(until) {
                        return;
                    }
                    self.delay += now() - start;
                }
                Next::Ready(events, ns) => {
                    let until = now().saturating_add(ns);
                    let until = self.deadline.map_or(until, |dl| until.min(dl));
                    if !self.ready_by(events, until) {
                        return;
                    }
                    self.waited = true;
                }
            }
            next = if self.deadline.is_some_and(|dl| now() >= dl) {
                // SO_RCVTIMEO/SO_SNDTIMEO ran out while it waited: the kernel's EAGAIN.
                if self.delay > 0 {
                    self.fault = Some("stall");
                }
                Next::Done(Answer::Fail(libc::EAGAIN))
            } else {
                self.step()
            };
        }
    }

    /// Sleeps until `until`; false when the call went away meanwhile.
    fn sleep_until(&self, until: u64) -> bool {
        loop {
            let t = now();
            if t >= until {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_nanos((until - t).min(SLICE_NS)));
            if !sys::notif_valid(self.listener.as_raw_fd(), self.id) {
                return false;
            }
        }
    }

    /// Waits until the socket has `events` or `until` comes; false when the call went away.
    fn ready_by(&self, events: i16, until: u64) -> bool {
        loop {
            let t = now();
            if t >= until {
                return true;
            }
            let ms = ((until - t).min(SLICE_NS) / 1_000_000).max(1) as i32;
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one pollfd of ours, on our copy of the fd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if !sys::notif_valid(self.listener.as_raw_fd(), self.id) {
                return false;
            }
            if r > 0 {
                return true;
            }
        }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Bytes moved in this call's direction so far, as the shim counts them.
    fn position(&self, st: &State) -> u64 {
        match self.tcp {
            Some(active) => super::fdview::tcp_offset(self.raw(), self.dir, active),
            None => st.moved[self.dir as usize],
        }
    }

    /// The toxics in the shim's order: a reset that is due, the data limit, latency, the rate;
    /// then the call, made by us when a toxic must know or cut what it moves.
    fn step(&mut self) -> Next {
        let state = self.state.clone();
        let mut st = state.lock();
        if std::mem::take(&mut self.awaits_reset) {
            st.reset_waiters -= 1;
        }
        let t = now();
        let d = self.dir as usize;
        let x = self.x;
        if self.dir == Dir::Rx && st.reads_ended {
            return Next::Done(Answer::Return(0));
        }
        if let Some(after) = x.reset_after_ns {
            if st.reset_sent {
                // The kernel reports it (and then what a reset connection gives).
                return Next::Done(Answer::Continue);
            }
            let at = st.born + after;
            if t >= at {
                st.reset_sent = true;
                break_connection(self.raw(), Break::Rst);
                self.fault = Some("reset");
                self.effect = Some("reset-after");
                return Next::Done(Answer::Fail(libc::ECONNRESET));
            }
            if self.dir == Dir::Rx
                && self.mode != Mode::Nonblocking
                && !self.waited
                && sys::ioctl_int(self.raw(), libc::FIONREAD) <= 0
            {
                // A blocking read that would wait past the reset: the reset ends the wait.
                st.reset_waiters += 1;
                self.awaits_reset = true;
                return Next::Ready(libc::POLLIN, at - t);
            }
        }
        let pos = self.position(&st);
        if x.blackhole
            && let Some(next) = self.blackhole(&mut st, t, pos)
        {
            return next;
        }
        let mut len = self.requested;
        let mut end = None;
        if let Some(limit) = x.limit_data {
            match toxic::limit(limit, pos, len) {
                Limit::Under => {}
                Limit::Reaches(n) => {
                    len = n;
                    end = Some(if x.limit_resets {
                        Break::Rst
                    } else {
                        Break::ShutBoth
                    });
                }
                Limit::Ended => return Next::Done(Answer::Continue),
            }
        }
        if let Some(delay) = x.slow_close_ns
            && self.dir == Dir::Rx
            && sys::ioctl_int(self.raw(), libc::FIONREAD) <= 0
        {
            // Data first: only the end of the stream, with nothing before it, is late.
            if st.eof_at == 0 {
                if sys::poll_one(self.raw(), libc::POLLRDHUP) & libc::POLLRDHUP != 0 {
                    st.eof_at = t + delay;
                } else if self.mode != Mode::Nonblocking && !self.waited {
                    // Nothing yet: wait as the kernel would; a FIN that comes is late then.
                    return Next::Ready(libc::POLLIN, u64::MAX);
                }
            }
            if t < st.eof_at {
                self.effect = Some("slow-close");
                return Next::Sleep(st.eof_at - t);
            }
        }
        // Whether we make the call: a toxic has to cut it or see what it moved (the end of the
        // stream a slow_close held is read by us too, for its line).
        let mut ours = end.is_some() || (self.effect == Some("slow-close") && self.stream);
        if let Some(base) = x.latency_ns {
            let param = chaos_engine::chance::param_at(self.conn ^ pos);
            let lat = toxic::chunk_latency(base, x.jitter_ns, param);
            match self.dir {
                Dir::Rx => {
                    // A datagram's source address is the kernel's to report: it is read by the
                    // call itself, once its latency is over.
                    ours |= self.stream;
                    if st.rx_chunk == 0 {
                        if sys::ioctl_int(self.raw(), libc::FIONREAD) > 0 {
                            st.rx_chunk = t + lat;
                        } else if self.mode != Mode::Nonblocking && !self.waited {
                            // Nothing has arrived: wait for it as the kernel would; it arrives
                            // then, and is readable `lat` later.
                            return Next::Ready(libc::POLLIN, u64::MAX);
                        }
                    }
                    if st.rx_chunk != 0 && st.rx_chunk != CHUNK_OPEN {
                        if t < st.rx_chunk {
                            self.effect = Some("latency");
                            return Next::Sleep(st.rx_chunk - t);
                        }
                        st.rx_chunk = if self.stream { CHUNK_OPEN } else { 0 };
                    }
                }
                Dir::Tx => {
                    if !self.released && toxic::write_starts_chunk(lat, st.tx_last, t) {
                        self.released = true;
                        st.tx_last = t + lat;
                        self.effect = Some("latency");
                        return Next::Sleep(lat);
                    }
                    st.tx_last = t;
                }
            }
        }
        if let Some(rate) = x.bandwidth {
            let tokens = tokens_now(&mut st, d, rate, t);
            if self.dir == Dir::Tx && self.mode != Mode::Nonblocking {
                // A blocking write does not come back short: it waits until the whole of it
                // is within the rate, then goes, and the bucket is spent for it.
                if self.paced == 0 {
                    let wait = toxic::wait_for_whole(rate, tokens, len);
                    self.paced = t + wait;
                    if wait > 0 {
                        self.effect = Some("bandwidth");
                        return Next::Sleep(wait);
                    }
                }
                if t > self.paced {
                    // The wait paid the bucket's debt when it was due; a wake-up later than
                    // that is the link's time again, not this write's.
                    st.tokens[d] = 0;
                    st.tokens_at[d] = self.paced;
                } else {
                    st.tokens[d] = tokens.saturating_sub(len as u64);
                }
            } else {
                ours = true;
                match toxic::pace(rate, tokens, len) {
                    Pace::Go(n) => {
                        if n < len {
                            len = n;
                            self.cut = true;
                        }
                    }
                    Pace::Wait(ns) => {
                        self.effect = Some("bandwidth");
                        return Next::Sleep(ns);
                    }
                }
            }
        }
        if let Some(sl) = x.slicer {
            if self.dir == Dir::Tx && self.mode != Mode::Nonblocking {
                // A blocking write does not come back short: it is held for its slices.
                if !self.sliced {
                    self.sliced = true;
                    let wait = toxic::whole_write_wait(&sl, st.slice_at[d], t, len);
                    if wait > 0 {
                        self.effect = Some("slicer");
                        return Next::Sleep(wait);
                    }
                }
                st.slice_at[d] = toxic::next_slice(&sl, t);
            } else {
                // Made by us, so that the next slice is timed from one that moved.
                ours = true;
                // The slice's size belongs to the offset it starts at, as under the shim.
                let draw = chaos_engine::chance::param_at(self.conn ^ pos);
                match toxic::slice(&sl, st.slice_at[d], t, len, draw) {
                    Pace::Go(n) => {
                        if n < len {
                            len = n;
                            self.cut = true;
                            self.effect = Some("slicer");
                        }
                    }
                    Pace::Wait(ns) => {
                        self.effect = Some("slicer");
                        return Next::Sleep(ns);
                    }
                }
            }
        }
        if !ours || self.peek {
            return Next::Done(Answer::Continue);
        }
        self.made(&mut st, pos, len, end)
    }

    /// A blackhole: nothing gets through while it is on (the call is held, in slices, looking
    /// again after each), and a timed one ends the connection at its time. None once it is off.
    fn blackhole(&mut self, st: &mut State, t: u64, pos: u64) -> Option<Next> {
        let d = self.dir as usize;
        if !(self.rule_on)() {
            st.black_since[d] = 0;
            return None;
        }
        if st.black_since[d] == 0 {
            st.black_since[d] = t;
        }
        let deadline = self
            .x
            .reset_after_blackhole_ns
            .map(|after| st.black_since[d] + after);
        if deadline.is_none_or(|dl| t < dl) {
            self.effect = Some("blackhole");
            return Some(Next::Sleep(
                deadline.map_or(SLICE_NS, |dl| (dl - t).min(SLICE_NS)),
            ));
        }
        st.black_since[d] = 0;
        self.effect = Some("blackhole-ended");
        if self.x.limit_resets {
            break_connection(self.raw(), Break::Rst);
            self.fault = Some("reset");
            return Some(Next::Done(Answer::Fail(libc::ECONNRESET)));
        }
        break_connection(self.raw(), Break::ShutBoth);
        self.fault = Some("close");
        self.limit = (pos > 0).then_some(pos);
        Some(Next::Done(match self.dir {
            // What the blackhole swallowed never arrives: reads see EOF from here (a shut socket
            // still hands out what was queued).
            Dir::Rx => {
                st.reads_ended = true;
                Answer::Return(0)
            }
            // Our writes fail as on a shut socket: the kernel says so (EPIPE, and SIGPIPE
            // unless the program asked not to get it).
            Dir::Tx => {
                self.shut_send = true;
                Answer::Continue
            }
        }))
    }

    /// Makes the call ourselves with at most `len` bytes, and what follows from what it moved.
    fn made(&mut self, st: &mut State, pos: u64, len: usize, end: Option<Break>) -> Next {
        let d = self.dir as usize;
        let moved = match self.transfer(len) {
            Ok(k) => k,
            Err(libc::EAGAIN) => {
                if self.x.latency_ns.is_some() && self.dir == Dir::Rx {
                    st.rx_chunk = 0;
                }
                if self.mode == Mode::Nonblocking {
                    // Nothing queued, or no room: the kernel's own answer.
                    return Next::Done(Answer::Fail(libc::EAGAIN));
                }
                let events = match self.dir {
                    Dir::Rx => libc::POLLIN,
                    Dir::Tx => libc::POLLOUT,
                };
                return Next::Ready(events, u64::MAX);
            }
            // A send on a shut socket: the kernel says EPIPE (and raises SIGPIPE as it would).
            Err(libc::EPIPE) => return Next::Done(Answer::Continue),
            Err(e) => return Next::Done(Answer::Fail(e)),
        };
        if self.x.bandwidth.is_some() {
            st.tokens[d] = st.tokens[d].saturating_sub(moved as u64);
        }
        if self.tcp.is_none() {
            st.moved[d] += moved as u64;
        }
        if let Some(sl) = self.x.slicer
            && moved > 0
        {
            st.slice_at[d] = toxic::next_slice(&sl, now());
        }
        if self.x.latency_ns.is_some() && self.dir == Dir::Rx {
            // A read that drained what was queued closes the chunk: the next data is a new one.
            let queued = sys::ioctl_int(self.raw(), libc::FIONREAD);
            st.rx_chunk = if queued > 0 { CHUNK_OPEN } else { 0 };
        }
        let reached = moved > 0 && self.x.limit_data.is_some_and(|l| pos + moved as u64 >= l);
        match end.filter(|_| reached) {
            Some(brk) => {
                break_connection(self.raw(), brk);
                if brk == Break::ShutBoth && self.dir == Dir::Rx {
                    st.reads_ended = true;
                }
                self.fault = Some("close");
                self.effect = Some(if brk == Break::Rst {
                    "limit-data-reset"
                } else {
                    "limit-data-close"
                });
                self.limit = self.x.limit_data;
            }
            None if self.cut && moved == len => {
                self.fault = Some("short");
                self.effect = self.effect.or(Some("bandwidth"));
            }
            None => {}
        }
        Next::Done(Answer::Return(moved as i64))
    }

    /// The call made on our copy, without waiting, with at most `len` bytes: what it moved
    /// (0: the end of the stream), or its errno.
    fn transfer(&self, len: usize) -> Result<usize, i32> {
        let (pid, op, args) = (self.pid, self.op, &self.args);
        let gone = Err(libc::EINTR);
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match self.dir {
            Dir::Tx => {
                let Some(bytes) = args::gather(pid, op, args, len) else {
                    return gone;
                };
                if !sys::notif_valid(self.listener.as_raw_fd(), self.id) {
                    return gone;
                }
                let more = args::msg_flags(op, args) & libc::MSG_MORE;
                // SAFETY: our buffer and our copy of the fd; non-blocking.
                let k = unsafe {
                    libc::send(
                        self.raw(),
                        bytes.as_ptr() as *const libc::c_void,
                        bytes.len(),
                        flags | more,
                    )
                };
                if k < 0 {
                    return Err(errno());
                }
                Ok(k as usize)
            }
            Dir::Rx => {
                let Some(bufs) = args::buffers(pid, op, args) else {
                    return gone;
                };
                let mut tmp = vec![0u8; len];
                if !sys::notif_valid(self.listener.as_raw_fd(), self.id) {
                    return gone;
                }
                // SAFETY: our buffer and our copy of the fd; non-blocking.
                let k = unsafe {
                    libc::recv(
                        self.raw(),
                        tmp.as_mut_ptr() as *mut libc::c_void,
                        len,
                        flags,
                    )
                };
                if k < 0 {
                    return Err(errno());
                }
                let k = k as usize;
                let mut done = 0;
                for (addr, blen) in bufs {
                    if done == k {
                        break;
                    }
                    let take = blen.min(k - done);
                    if !sys::write_target(pid, addr, &tmp[done..done + take]) {
                        break;
                    }
                    done += take;
                }
                args::fill_reply_fields(pid, op, args);
                Ok(done)
            }
        }
    }

    /// Logs what the call amounted to, if anything.
    fn finish(&mut self, answer: Answer) {
        // Merely held: the shim's EAGAIN with readiness hidden (a stall) where the call could
        // not block, a delay where it could.
        let held = match self.mode {
            Mode::Nonblocking => "stall",
            _ => "delay",
        };
        let Some(fault) = self.fault.or((self.delay > 0).then_some(held)) else {
            return;
        };
        let mut line = self.line.clone();
        line.fault = fault.into();
        line.effect = self.effect.map(Into::into);
        line.delay_ns = Some(self.delay);
        line.limit = self.limit;
        match answer {
            Answer::Return(k) => line.returned = Some(k),
            Answer::Fail(e) => {
                line.returned = Some(-1);
                line.errno = Some(chaos_engine::errno::errno_name(e).to_string());
            }
            Answer::Continue if self.shut_send => {
                line.returned = Some(-1);
                line.errno = Some("EPIPE".into());
            }
            Answer::Continue | Answer::Later => {}
        }
        if self.mode == Mode::Nonblocking && self.delay > 0 {
            // The shim's EAGAIN with readiness hidden, held in the kernel instead.
            line.stall_ns = Some(self.delay);
            line.degraded = Some("edge-triggered-readiness".into());
        }
        self.log.emit_fault(line);
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The bucket's tokens now, refilled since it was last counted; a fresh one holds a burst.
fn tokens_now(st: &mut State, d: usize, rate: u64, t: u64) -> u64 {
    let tokens = if st.tokens_at[d] == 0 {
        toxic::burst(rate)
    } else {
        toxic::refill(rate, st.tokens[d], t.saturating_sub(st.tokens_at[d]))
    };
    st.tokens[d] = tokens;
    st.tokens_at[d] = t;
    tokens
}

/// A `reset_after` is sent on time even if the program makes no call then (it waits in epoll):
/// a timer takes the fd again when it is due and, if the number still names the connection,
/// sends the RST and logs it. No copy of the fd is kept meanwhile.
fn arm_reset(
    state: &Shared,
    pidfd: Option<OwnedFd>,
    fd: i32,
    ident: (u64, u64),
    after: u64,
    (mut log, line): (Log, schema::Fault),
) {
    let Some(pidfd) = pidfd else { return };
    let at = {
        let mut st = state.lock();
        if st.reset_armed || st.reset_sent {
            return;
        }
        st.reset_armed = true;
        st.born + after
    };
    let state = state.clone();
    let _ = std::thread::Builder::new()
        .name("seccomp-reset".into())
        .spawn(move || {
            let t = now();
            if at > t {
                std::thread::sleep(std::time::Duration::from_nanos(at - t));
            }
            let mut st = state.lock();
            if st.reset_sent || st.reset_waiters > 0 {
                return;
            }
            let Ok(ours) = sys::pidfd_getfd(&pidfd, fd) else {
                return;
            };
            if super::fdview::identity(ours.as_raw_fd()) != Some(ident) {
                return; // closed since: nothing to reset
            }
            st.reset_sent = true;
            break_connection(ours.as_raw_fd(), Break::Rst);
            log.emit_fault(line);
        });
}

/// Whether the proxy of a connection still holds `dir` in a timeout toxic's blackhole: the
/// toxic removed, or the proxy disabled or gone, lets the call go on (and the next one finds
/// the connection ended).
fn proxy_blackhole_on(
    page: Option<std::sync::Arc<crate::control::page::Mapped>>,
    proxy: usize,
    dir: Dir,
) -> impl Fn() -> bool + Send {
    move || {
        page.as_ref().is_some_and(|m| {
            // The toxicity draw was made when the blackhole began: any timeout toxic left
            // holds on.
            let page = m.page();
            page.proxy_enabled(proxy)
                && page
                    .toxics_for(proxy, dir == Dir::Tx, |_| 0)
                    .is_some_and(|(x, _)| x.blackhole)
        })
    }
}
