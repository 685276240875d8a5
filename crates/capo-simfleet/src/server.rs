//! The SSH side: one accept loop per simulated host, one small handler per connection.
//!
//! Per connection there is russh's own session task, one task waiting for it to end (for the
//! error count) and the handler below (a few words). A command's answer is sent from the
//! handler itself when it has no delay, else from one short-lived task that sleeps and sends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::keys::PublicKey;
use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};
use tokio::net::TcpListener;

use crate::script::{End, Reply};
use crate::sim::{ConnState, Sim};

/// What every connection needs: the fleet and the one key it accepts.
pub struct Shared {
    /// The fleet.
    pub sim: Sim,
    /// The only client key accepted.
    pub client_key: PublicKey,
}

/// Accepts connections for host `host` (1-based) forever.
pub async fn serve(
    listener: TcpListener,
    host: u32,
    shared: Arc<Shared>,
    config: Arc<server::Config>,
) {
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _peer)) => socket,
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or a connection reset before
                // accept: wait a little rather than spin; the client's retry comes later.
                let n = shared
                    .sim
                    .stats
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if n == 0 {
                    eprintln!("capo-simfleet: accept on host {host}: {e} (further accept errors are only counted)");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.sim.stats.connections.fetch_add(1, Ordering::Relaxed);
        let _ = socket.set_nodelay(true);
        let handler = Conn {
            shared: Arc::clone(&shared),
            host,
            holding: None,
            state: ConnState::default(),
        };
        let config = Arc::clone(&config);
        let stats_of = Arc::clone(&shared);
        tokio::spawn(async move {
            let ended = match server::run_stream(config, socket, handler).await {
                Ok(session) => session.await,
                Err(e) => Err(e),
            };
            if ended.is_err() {
                stats_of
                    .sim
                    .stats
                    .session_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// One connection to one simulated host.
struct Conn {
    shared: Arc<Shared>,
    /// 1-based host number.
    host: u32,
    /// The channel of the lock holder, while this connection holds the host's lock.
    holding: Option<ChannelId>,
    /// What the fleet remembers about this connection.
    state: ConnState,
}

impl Conn {
    fn release(&mut self) {
        if self.holding.take().is_some() {
            self.shared.sim.release_lock(self.host);
        }
    }

    fn accepts(&self, key: &PublicKey) -> Auth {
        if key.key_data() == self.shared.client_key.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.release();
    }
}

/// Sends `data` (if any) on `channel` as stdout (`ext` None) or stderr (`ext` 1).
fn put(
    session: &mut Session,
    channel: ChannelId,
    ext: Option<u32>,
    data: Bytes,
) -> Result<(), russh::Error> {
    if data.is_empty() {
        return Ok(());
    }
    match ext {
        None => session.data(channel, data),
        Some(ext) => session.extended_data(channel, ext, data),
    }
}

fn finish(session: &mut Session, channel: ChannelId, code: u32) -> Result<(), russh::Error> {
    session.exit_status_request(channel, code)?;
    session.eof(channel)?;
    session.close(channel)
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts(offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.accepts(key.public_key))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Everything goes through the handler; the channel object (and its queue) is not
        // needed, and russh ignores a dropped one.
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let command = String::from_utf8_lossy(data);
        let reply = self.shared.sim.reply(self.host, &command, &mut self.state);
        if self.state.took_lock {
            // A client that opens a second holder on the same connection gets the first
            // released; it never happens with capo.
            if let Some(old) = self.holding.replace(channel) {
                let _ = finish(session, old, 0);
            }
        }
        let Reply {
            now,
            delay,
            stdout,
            stderr,
            end,
            cut: _,
        } = reply;
        put(session, channel, None, now)?;
        match end {
            End::Hold => Ok(()),
            End::Exit(code) if delay.is_zero() => {
                put(session, channel, None, stdout)?;
                put(session, channel, Some(1), stderr)?;
                finish(session, channel, code)
            }
            End::Exit(code) => {
                let handle = session.handle();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // The client may be gone by now; then there is nobody left to tell.
                    if !stdout.is_empty() && handle.data(channel, stdout).await.is_err() {
                        return;
                    }
                    if !stderr.is_empty() && handle.extended_data(channel, 1, stderr).await.is_err()
                    {
                        return;
                    }
                    if handle.exit_status_request(channel, code).await.is_err() {
                        return;
                    }
                    let _ = handle.eof(channel).await;
                    let _ = handle.close(channel).await;
                });
                Ok(())
            }
        }
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The lock holder's `cat` sees end of input: the holder exits and the lock dies.
        if self.holding == Some(channel) {
            self.release();
            finish(session, channel, 0)?;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.holding == Some(channel) {
            self.release();
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}
