-- Picks the AI mode of a call: realtime (voice-bridge over mod_audio_stream/mod_audio_fork)
-- or turn-based (voice_ai/secretary.lua over turn-api), per domain, and falls back to
-- turn-based when the bridge does not answer its /readyz.
--
-- Dialplan: <action application="lua" data="voice_ai/route.lua"/> (see dialplan/).
-- Channel variables:
--   voice_ai_mode            realtime | turn; default: the domain's entry in
--                            voice_ai/domains.lua (optional, `return {["a.example.com"]="turn"}`),
--                            else "realtime"
--   voice_ai_bridge_url      http://127.0.0.1:8080 (HTTP base of the bridge, for /readyz)
--   voice_ai_bridge_ws       ws://127.0.0.1:8080   (where FreeSWITCH streams audio)
--   voice_ai_dialect         audio_stream | audio_fork   (the module this FreeSWITCH has)
--   voice_ai_playout         binary | stream_audio | raw_audio | file | play_audio
--   voice_ai_probe_timeout   1 (seconds)
-- plus the secretary's variables for the turn-based mode.

local http = require "voice_ai.http"
local log = http.log

local function var(name, default)
  local v = session:getVariable(name)
  if v == nil or v == "" or v == "_undef_" then return default end
  return v
end

local domain_name = var("domain_name", "")

local function domain_mode()
  local ok, domains = pcall(require, "voice_ai.domains")
  if ok and type(domains) == "table" then
    local m = domains[domain_name] or domains[var("domain_uuid", "")]
    if m == "realtime" or m == "turn" then return m end
  end
  return "realtime"
end

local mode = var("voice_ai_mode", nil) or domain_mode()
if mode ~= "realtime" and mode ~= "turn" then
  log("WARNING", "unknown voice_ai_mode " .. tostring(mode) .. ", using turn")
  mode = "turn"
end

local function bridge_ready()
  local base = (var("voice_ai_bridge_url", "http://127.0.0.1:8080")):gsub("/+$", "")
  local t = tonumber(var("voice_ai_probe_timeout", "1")) or 1
  -- The bridge answers 200 {"ready": true, …} or 503 {"ready": false, …}.
  local r = http.request({ method = "get", url = base .. "/readyz", timeout = t, connect_timeout = t })
  local ready = r.ok and not (type(r.data) == "table" and r.data.ready == false)
  if not ready then log("WARNING", "bridge not ready (" .. tostring(r.err or "ready=false") .. "): turn-based instead") end
  return ready
end

local function json_text(s)
  return (http.json.encode(s):gsub("^\"", ""):gsub("\"$", ""))
end

local function start_realtime()
  local uuid = session:get_uuid()
  local ws = (var("voice_ai_bridge_ws", "ws://127.0.0.1:8080")):gsub("/+$", "")
  local dialect = var("voice_ai_dialect", "audio_stream")
  local playout = var("voice_ai_playout", "binary")
  local url = string.format("%s/stream/%s/%s?rate=16000&playout=%s", ws,
    domain_name ~= "" and domain_name or var("domain_uuid", "default"), uuid, playout)
  local meta = string.format('{"caller_id_number":"%s","destination_number":"%s","domain_uuid":"%s"}',
    json_text(var("caller_id_number", "")), json_text(var("destination_number", "")),
    json_text(var("domain_uuid", "")))
  meta = meta:gsub("%s", "") -- mod_audio_stream cuts the metadata at the first space
  session:answer()
  local api = freeswitch.API()
  local cmd
  if dialect == "audio_fork" then
    cmd = string.format("uuid_audio_fork %s start %s mono 16k voice_ai %s true true 16000", uuid, url, meta)
  else
    session:setVariable("STREAM_HEART_BEAT", "10")
    if playout == "binary" or playout == "raw_audio" then session:setVariable("STREAM_PLAYBACK", "true") end
    cmd = string.format("uuid_audio_stream %s start %s mono 16k %s", uuid, url, meta)
  end
  local result = api:executeString(cmd)
  log("INFO", "realtime start: " .. tostring(result))
  if type(result) ~= "string" or result:match("^%-ERR") then return false end
  if playout == "file" or playout == "play_audio" then
    session:execute("park", "")
  else
    -- write-replace playback needs something writing frames on the channel
    session:execute("playback", "silence_stream://-1")
  end
  return true
end

if mode == "realtime" and bridge_ready() and start_realtime() then return end
log("INFO", "turn-based AI for " .. session:get_uuid() .. " (" .. domain_name .. ")")
session:execute("lua", "voice_ai/secretary.lua")
