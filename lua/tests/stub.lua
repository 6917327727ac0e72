-- A stand-in for FreeSWITCH's mod_lua API, for running the voice-ai scripts under a
-- plain Lua 5.2 in tests (turn-api/tests/lua.rs). Everything the script does to the call
-- is written as JSON lines to $STUB_LOG for the test to read.
--
-- freeswitch.API():execute("curl", args) behaves like mod_curl: the arguments are split on
-- spaces (at most 30; a quote or backslash is refused, as mod_curl's splitter would mangle
-- it), the POST data is URL-decoded (%XX only, '+' kept), the request is made with the real
-- curl binary, answers over 64000 bytes fail, and `json` gives the same wrapper.
--
-- Environment: STUB_LOG (log file), STUB_VARS (file of name=value channel variables),
-- STUB_SPEECH (WAV that recordFile "records"), STUB_UUID, STUB_DTMF ("record:1:0,play:2:0":
-- digit 0 pressed during the 1st recordFile / 2nd streamFile), STUB_CLOCK_STEP (seconds
-- os.time() moves on at each call, to test call-length caps without waiting).

local json = require "voice_ai.json"

local M = {}
local MAX_BYTES = 64000
local log_path = assert(os.getenv("STUB_LOG"), "STUB_LOG is not set")

local function log(event)
  local f = assert(io.open(log_path, "a"))
  f:write(json.encode(event), "\n")
  f:close()
end
M.log = log

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- switch_url_decode: %XX only.
local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local tmp_n = 0
local function tmp_path(tag)
  tmp_n = tmp_n + 1
  return string.format("%s.%s.%d", log_path, tag, tmp_n)
end

local function curl(args)
  if args:find("['\"\\]") then
    error("mod_curl would mangle a quote or backslash in: " .. args)
  end
  local argv = {}
  for word in args:gmatch("[^ ]+") do argv[#argv + 1] = word end
  if #argv > 30 then error("mod_curl takes at most 30 arguments, got " .. #argv) end
  local req = { url = argv[1], method = "get", headers = {} }
  local i = 2
  local function value()
    i = i + 1
    if not argv[i] then error("mod_curl: " .. argv[i - 1] .. " needs a value") end
    return argv[i]
  end
  while i <= #argv do
    local a = argv[i]:lower()
    if a == "json" then req.json = true
    elseif a == "headers" then req.show_headers = true
    elseif a == "content-type" then req.content_type = value()
    elseif a == "connect-timeout" then req.connect_timeout = tonumber(value())
    elseif a == "timeout" then req.timeout = tonumber(value())
    elseif a == "append_headers" then req.headers[#req.headers + 1] = value()
    elseif a == "insecure" or a == "secure" then -- TLS checks: nothing to do locally
    elseif a == "proxy" then value()
    elseif a == "get" or a == "head" or a == "delete" then req.method = a
    elseif a == "post" or a == "put" or a == "patch" then
      req.method = a
      if argv[i + 1] then req.data = url_decode(value()) end
    else
      error("mod_curl: unknown argument " .. argv[i])
    end
    i = i + 1
  end
  log({ op = "curl", method = req.method, url = req.url, timeout = req.timeout,
    connect_timeout = req.connect_timeout, headers = req.headers, content_type = req.content_type,
    data = req.data })

  local body_file, head_file = tmp_path("body"), tmp_path("head")
  local cmd = { "curl -sS -L --max-redirs 15 -A freeswitch-curl/1.0", "-o", shell_quote(body_file),
    "-D", shell_quote(head_file), "-w '%{http_code}'", "-X", req.method:upper() }
  if req.method == "head" then cmd[#cmd + 1] = "-I" end
  -- mod_curl sets no timeout when none is given; a test must not hang on that.
  cmd[#cmd + 1] = "--max-time " .. (req.timeout or 30)
  if req.connect_timeout then cmd[#cmd + 1] = "--connect-timeout " .. req.connect_timeout end
  if req.data then
    local data_file = tmp_path("data")
    write_file(data_file, req.data)
    cmd[#cmd + 1] = "--data-binary @" .. shell_quote(data_file)
    -- libcurl's default for POSTFIELDS
    cmd[#cmd + 1] = "-H " .. shell_quote("Content-Type: " .. (req.content_type or "application/x-www-form-urlencoded"))
  end
  for _, h in ipairs(req.headers) do cmd[#cmd + 1] = "-H " .. shell_quote(h) end
  cmd[#cmd + 1] = shell_quote(req.url)
  cmd[#cmd + 1] = "2>/dev/null"
  local p = assert(io.popen(table.concat(cmd, " ")))
  local code_text = p:read("*a")
  local _, _, exit_code = p:close()
  exit_code = exit_code or 0
  local body = read_file(body_file) or ""
  local head = read_file(head_file) or ""
  os.remove(body_file)
  os.remove(head_file)
  if #body > MAX_BYTES then
    -- mod_curl's write callback refuses the piece that goes past max-bytes: curl stops
    -- with a write error and the body is what came before.
    exit_code = 23
    body = body:sub(1, MAX_BYTES - 1)
  end
  local status = tonumber(code_text) or 0
  log({ op = "curl_result", exit_code = exit_code, status = status, bytes = #body })
  if not req.json then
    return body
  end
  local headers = {}
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then headers[#headers + 1] = { key = k, value = v } end
  end
  local wrapper = { exit_code = tostring(exit_code), status_code = tostring(status), headers = headers }
  if body ~= "" then wrapper.body = body end
  return json.encode(wrapper)
end

-- DTMF script: { record = {[n] = digit}, play = {[n] = digit} }.
local dtmf = { record = {}, play = {} }
for kind, n, digit in (os.getenv("STUB_DTMF") or ""):gmatch("(%a+):(%d+):([%d%*#])") do
  dtmf[kind][tonumber(n)] = digit
end

local vars = {}
local vars_file = os.getenv("STUB_VARS")
if vars_file then
  for line in (read_file(vars_file) or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then vars[k] = v end
  end
end

local Session = {}
Session.__index = Session

function Session.new()
  return setmetatable({ up = true, answered = false, counts = { record = 0, play = 0 },
    uuid = os.getenv("STUB_UUID") or "00000000-0000-4000-8000-000000000001" }, Session)
end

-- Delivers the scripted digit for the n-th `kind` call; true when the callback broke it.
function Session:press(kind)
  self.counts[kind] = self.counts[kind] + 1
  local digit = dtmf[kind][self.counts[kind]]
  if not digit then return false end
  log({ op = "dtmf", digit = digit, during = kind })
  local fn = self.callback and _G[self.callback]
  if not fn then return false end
  local r = fn(self, "dtmf", { digit = digit, duration = 100 }, self.callback_arg)
  return r ~= nil and r ~= "true" and r ~= "undefined"
end

function Session:ready() return self.up end
function Session:answered() return self.answered end
function Session:get_uuid() return self.uuid end
function Session:answer() self.answered = true; log({ op = "answer" }) end
function Session:getVariable(name) return vars[name] end
function Session:setVariable(name, value) vars[name] = value; log({ op = "set", name = name, value = value }) end
function Session:setInputCallback(fn, arg) self.callback, self.callback_arg = fn, arg end
function Session:sleep(ms) log({ op = "sleep", ms = ms }) end
function Session:set_tts_params(engine, voice) self.tts = { engine, voice } end
function Session:speak(text)
  log({ op = "speak", text = text, engine = self.tts and self.tts[1], voice = self.tts and self.tts[2] })
end

function Session:hangup(cause)
  log({ op = "hangup", cause = cause or "NORMAL_CLEARING" })
  self.up = false
end

function Session:transfer(ext, dialplan, context)
  log({ op = "transfer", target = ext, dialplan = dialplan, context = context })
end

function Session:streamFile(path)
  if not self.up then error("streamFile on a hung-up channel") end
  local f = io.open(path, "rb")
  local exists = f ~= nil
  if f then f:close() end
  local broke = self:press("play")
  log({ op = "streamFile", path = path, exists = exists, interrupted = broke })
end

function Session:recordFile(path, limit, threshold, silence)
  if not self.up then error("recordFile on a hung-up channel") end
  local broke = self:press("record")
  local speech = assert(read_file(assert(os.getenv("STUB_SPEECH"), "STUB_SPEECH is not set")))
  write_file(path, speech)
  log({ op = "recordFile", path = path, limit = limit, threshold = threshold, silence = silence,
    interrupted = broke })
  return 1
end

function Session:execute(app, data)
  log({ op = "execute", app = app, data = data })
  if app == "lua" then
    local script = assert(loadfile(data))
    script()
  end
end

function M.install()
  local step = tonumber(os.getenv("STUB_CLOCK_STEP") or "")
  if step then
    local real_time, calls = os.time, 0
    local start = real_time()
    os.time = function(t)
      if t then return real_time(t) end
      calls = calls + 1
      return start + (calls - 1) * step
    end
  end
  local api = {}
  function api:execute(cmd, args)
    if cmd == "curl" then return curl(args or "") end
    if cmd == "uuid_audio_stream" or cmd == "uuid_audio_fork" then return "+OK Success\n" end
    return "-ERR " .. cmd .. " Command not found!\n"
  end
  function api:executeString(s)
    local cmd, args = s:match("^(%S+)%s*(.*)$")
    log({ op = "api", command = s })
    return api:execute(cmd or "", args)
  end
  _G.freeswitch = {
    API = function() return api end,
    consoleLog = function(level, msg) log({ op = "log", level = level, msg = (msg:gsub("\n$", "")) }) end,
  }
  _G.session = Session.new()
end

-- Runs `script` as mod_lua would (with `session` set); logs the end or the error.
function M.run(script)
  M.install()
  local ok, err = pcall(function() assert(loadfile(script))() end)
  if not ok then
    log({ op = "error", error = tostring(err) })
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  log({ op = "end" })
end

return M
