//! The Lua scripts that make each multi-key step atomic, so that two workers (or two
//! `promote_due` callers) can never both act on the same entry. Time comes from Redis
//! (`TIME`), not from the workers, so clock skew between machines does not shift retries.
//!
//! A script's writes are not rolled back if it errors halfway: each one checks its inputs
//! before its first write.

use fred::prelude::*;
use tokio::sync::RwLock;

use super::QueueError;

/// KEYS: stream. ARGV: group, entry id.
/// Acks and deletes the entry; 1 if it was still pending, 0 if already settled elsewhere.
pub(crate) const ACK: &str = r#"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then redis.call('XDEL', KEYS[1], ARGV[2]) end
return acked
"#;

/// KEYS: stream, delayed zset. ARGV: group, entry id, delay ms, delayed member.
/// Acks + deletes the entry and schedules the member at now + delay. Returns the due time
/// (ms since the epoch), or 0 when the entry was already settled (then nothing is scheduled,
/// so a duplicate delivery cannot double a job).
pub(crate) const RETRY: &str = r#"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], due, ARGV[4])
return due
"#;

/// KEYS: stream, dead-letter stream. ARGV: group, entry id, dead-letter max len, then the
/// dead letter's field/value pairs. Acks + deletes the entry and appends the dead letter
/// stamped with `failed_at_ms`. Returns the dead letter's id, or nil when the entry was
/// already settled.
pub(crate) const DEAD_LETTER: &str = r#"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return false end
redis.call('XDEL', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 'failed_at_ms'
fields[#fields + 1] = tostring(now)
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fields))
"#;

/// KEYS: delayed zset, stream, dead-letter stream. ARGV: batch size, dead-letter max len.
/// Moves due members (a JSON list of field/value strings) back onto the stream. ZREM and
/// XADD happen in one script, so a member is promoted once however many callers race.
/// A member that is not such a list (not written by this code) is dead-lettered.
pub(crate) const PROMOTE_DUE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local ok, fields = pcall(cjson.decode, member)
  local valid = ok and type(fields) == 'table' and #fields > 0 and #fields % 2 == 0
  if valid then
    for _, f in ipairs(fields) do
      if type(f) ~= 'string' then valid = false end
    end
  end
  if valid then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
    moved = moved + 1
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
      'reason', 'poison', 'error', 'undecodable delayed entry', 'attempts', '0',
      'failed_at_ms', tostring(now), 'source_id', '', 'job', member)
  end
end
return moved
"#;

/// KEYS: delayed zset. ARGV: delay ms, delayed member. Schedules at Redis time + delay.
pub(crate) const SCHEDULE: &str = r#"
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], due, ARGV[2])
return due
"#;

/// KEYS: stream. ARGV: group, consumer, entry id.
/// Resets the idle time of an entry this consumer still owns (a heartbeat for long jobs);
/// 1 if still owned, 0 if it was reclaimed by someone else or settled.
pub(crate) const EXTEND: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"#;

/// A script run by hash, loaded on first use and again after a Redis restart (NOSCRIPT).
pub(crate) struct Script {
    source: &'static str,
    sha: RwLock<Option<String>>,
}

impl Script {
    pub(crate) const fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: RwLock::const_new(None),
        }
    }

    async fn load(&self, client: &Client) -> Result<String, QueueError> {
        let sha: String = client.script_load(self.source).await?;
        *self.sha.write().await = Some(sha.clone());
        Ok(sha)
    }

    pub(crate) async fn run<R>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, QueueError>
    where
        R: FromValue,
    {
        let known = self.sha.read().await.clone();
        let sha = match known {
            Some(sha) => sha,
            None => self.load(client).await?,
        };
        match client
            .evalsha::<R, _, _, _>(sha, keys.clone(), args.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let sha = self.load(client).await?;
                Ok(client.evalsha(sha, keys, args).await?)
            }
            other => Ok(other?),
        }
    }
}

/// One set per queue (scripts are per Redis server, the hash cache per connection's server).
pub(crate) struct Scripts {
    pub ack: Script,
    pub retry: Script,
    pub dead_letter: Script,
    pub promote_due: Script,
    pub extend: Script,
    pub schedule: Script,
}

impl Scripts {
    pub(crate) const fn new() -> Self {
        Self {
            ack: Script::new(ACK),
            retry: Script::new(RETRY),
            dead_letter: Script::new(DEAD_LETTER),
            promote_due: Script::new(PROMOTE_DUE),
            extend: Script::new(EXTEND),
            schedule: Script::new(SCHEDULE),
        }
    }
}
