-- Turn-based AI secretary for FreeSWITCH/FusionPBX (mod_lua), talking to turn-api.
--
-- Dialplan: <action application="lua" data="voice_ai/secretary.lua"/> (see dialplan/).
-- Each caller turn is recorded to a WAV (session:recordFile), posted to turn-api as its
-- path, and the answer WAV is played; the answer's action says what comes next:
-- continue, transfer (to `target`, in the domain's context) or hangup.
-- Every failure to reach turn-api ends in a spoken apology and a transfer to a human
-- (or a hangup when none is configured): never dead air.
--
-- Channel variables (all optional but the key):
--   voice_ai_turn_api_url      http://127.0.0.1:8100
--   voice_ai_api_key           the domain's turn-api key (no spaces)
--   voice_ai_human_target      extension for DTMF 0 and for failures ("" = hang up)
--   voice_ai_human_digit       0
--   voice_ai_context           the transfer context; default domain_name, else "default"
--   voice_ai_max_turns         20        voice_ai_max_call_secs   600
--   voice_ai_record_dir        /tmp      (must be one of turn-api's audio.recordings_dirs)
--   voice_ai_record_max_secs   30        longest caller turn
--   voice_ai_silence_threshold 200       ENERGY level (mean |sample|), not seconds
--   voice_ai_silence_secs      2         silence that ends a turn
--   voice_ai_connect_timeout   2         voice_ai_turn_timeout    20 (seconds, mod_curl)
--   voice_ai_apology_file      a sound file played on failures; else spoken with
--   voice_ai_apology_text      through voice_ai_tts_engine / voice_ai_tts_voice (flite/kal)
--   voice_ai_goodbye_file      played when the call-length cap is hit (else the text below)
--   voice_ai_goodbye_text
--   voice_ai_consent           the caller's LGPD consent to the recording's analysis:
--                              true/false (sim/não, 1/0); unset = the tenant's policy decides

local http = require "voice_ai.http"

local api = freeswitch.API()

local function var(name, default)
  local v = session:getVariable(name)
  if v == nil or v == "" or v == "_undef_" then return default end
  return v
end

local function num(name, default, min, max)
  local v = tonumber(var(name, ""))
  if not v then return default end
  if v < min then return min end
  if v > max then return max end
  return v
end

-- voice_ai_consent as true, false or nil (unset or unreadable: the tenant's policy decides).
local function consent()
  local v = string.lower(var("voice_ai_consent", ""))
  if v == "true" or v == "1" or v == "yes" or v == "sim" then return true end
  if v == "false" or v == "0" or v == "no" or v == "nao" or v == "n\195\163o" then return false end
  return nil
end

local cfg = {
  base = (var("voice_ai_turn_api_url", "http://127.0.0.1:8100")):gsub("/+$", ""),
  key = var("voice_ai_api_key", ""),
  human = var("voice_ai_human_target", ""),
  human_digit = var("voice_ai_human_digit", "0"),
  max_turns = num("voice_ai_max_turns", 20, 1, 200),
  max_call_secs = num("voice_ai_max_call_secs", 600, 10, 7200),
  record_dir = (var("voice_ai_record_dir", "/tmp")):gsub("/+$", ""),
  record_max_secs = num("voice_ai_record_max_secs", 30, 3, 120),
  threshold = num("voice_ai_silence_threshold", 200, 1, 10000),
  silence_secs = num("voice_ai_silence_secs", 2, 1, 10),
  connect_timeout = num("voice_ai_connect_timeout", 2, 1, 30),
  turn_timeout = num("voice_ai_turn_timeout", 20, 1, 120),
  apology_file = var("voice_ai_apology_file", ""),
  apology_text = var("voice_ai_apology_text",
    "Sorry, we are having a technical problem. Please hold while we connect you."),
  goodbye_file = var("voice_ai_goodbye_file", ""),
  goodbye_text = var("voice_ai_goodbye_text", "Thank you for calling. Goodbye."),
  tts_engine = var("voice_ai_tts_engine", "flite"),
  tts_voice = var("voice_ai_tts_voice", "kal"),
}
local domain_name = var("domain_name", "")
local domain_uuid = var("domain_uuid", "")
cfg.context = var("voice_ai_context", domain_name ~= "" and domain_name or var("context", "default"))

local uuid = session:get_uuid()
local started = os.time()
local recordings = {}
local session_id = nil
local finished = false
local log = http.log

-- DTMF: the human digit stops whatever plays or records; the loop then transfers.
voice_ai_wants_human = false
function voice_ai_on_input(s, kind, obj, arg)
  if kind == "dtmf" and type(obj) == "table" and obj.digit == cfg.human_digit and cfg.human ~= "" then
    voice_ai_wants_human = true
    return "break"
  end
  return "true"
end

local function call(method, path, body, timeout)
  return http.request({
    method = method, url = cfg.base .. path, body = body, api_key = cfg.key,
    timeout = timeout or cfg.turn_timeout, connect_timeout = cfg.connect_timeout, api = api,
  })
end

local function speak(file, text)
  if not session:ready() then return end
  if file ~= "" then
    session:streamFile(file)
  else
    session:set_tts_params(cfg.tts_engine, cfg.tts_voice)
    session:speak(text)
  end
end

-- Plays an answer's WAV; an answer with text but no audio (turn-api's goodbye without a
-- goodbye_wav) is spoken with the TTS fallback rather than left silent.
local function play(path, text)
  if not session:ready() then return end
  if type(path) == "string" and path ~= "" then
    session:streamFile(path)
  elseif type(text) == "string" and text ~= "" then
    session:set_tts_params(cfg.tts_engine, cfg.tts_voice)
    session:speak(text)
  end
end

local function transfer(target)
  log("INFO", "transfer " .. uuid .. " to " .. target .. " in " .. cfg.context)
  session:transfer(target, "XML", cfg.context)
  finished = true
end

local function hangup()
  if session:ready() then session:hangup("NORMAL_CLEARING") end
  finished = true
end

-- Any failure: apology, then a human if there is one, else hang up.
local function give_up(why)
  log("ERR", "turn-api failed for " .. uuid .. ": " .. tostring(why))
  speak(cfg.apology_file, cfg.apology_text)
  if cfg.human ~= "" and session:ready() then transfer(cfg.human) else hangup() end
end

-- Follows an answer's action; true when the conversation goes on.
local function follow(answer)
  local action = answer.action
  if action == "continue" then return true end
  if action == "transfer" then
    local target = answer.target
    if type(target) ~= "string" or not target:match("^[%w%*#%+%-_%.@]+$") then
      give_up("transfer without a usable target")
    else
      transfer(target)
    end
    return false
  end
  if action == "hangup" then hangup(); return false end
  give_up("unknown action " .. tostring(action))
  return false
end

local function cleanup()
  if session_id then
    local r = call("post", "/v1/sessions/" .. session_id .. "/end", nil, 5)
    if not r.ok then log("WARNING", "ending session " .. session_id .. ": " .. tostring(r.err)) end
  end
  for _, path in ipairs(recordings) do os.remove(path) end
end

local function run()
  session:answer()
  session:setInputCallback("voice_ai_on_input", "")
  if cfg.key == "" then return give_up("voice_ai_api_key is not set") end

  local created = call("post", "/v1/sessions", {
    call_id = uuid,
    domain = domain_name ~= "" and domain_name or domain_uuid,
    caller = var("caller_id_number", nil),
    callee = var("destination_number", nil),
    consent = consent(),
  }, 10)
  local c = created.data
  if not created.ok or type(c) ~= "table" or type(c.session_id) ~= "string"
      or not c.session_id:match("^[%w%-_]+$") then
    return give_up(created.err or "bad session answer")
  end
  session_id = c.session_id
  if type(c.greeting) == "table" then play(c.greeting.audio_path, c.greeting.text) end
  if voice_ai_wants_human then return transfer(cfg.human) end
  if c.action and c.action ~= "continue" and not follow(c) then return end

  for turn = 1, cfg.max_turns do
    if not session:ready() then return end
    local left = cfg.max_call_secs - (os.time() - started)
    if left < 3 then
      speak(cfg.goodbye_file, cfg.goodbye_text)
      return hangup()
    end
    local wav = string.format("%s/voice_ai_%s_%d.wav", cfg.record_dir, uuid, turn)
    recordings[#recordings + 1] = wav
    session:recordFile(wav, math.min(cfg.record_max_secs, left), cfg.threshold, cfg.silence_secs)
    if voice_ai_wants_human then return transfer(cfg.human) end
    if not session:ready() then return end

    local r = call("post", "/v1/sessions/" .. session_id .. "/turns", { audio_path = wav })
    if not r.ok or type(r.data) ~= "table" then return give_up(r.err or "bad turn answer") end
    play(r.data.audio_path, r.data.reply_text)
    if voice_ai_wants_human then return transfer(cfg.human) end
    if not follow(r.data) then return end
  end
  -- Out of turns without an ending from turn-api.
  speak(cfg.goodbye_file, cfg.goodbye_text)
  hangup()
end

local ok, err = pcall(run)
if not ok then
  log("ERR", "secretary error: " .. tostring(err))
  if not finished then pcall(give_up, "script error") end
end
pcall(cleanup)
