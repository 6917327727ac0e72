-- HTTP + JSON over mod_curl for the voice-ai scripts (no extra Lua libraries).
--
-- mod_curl facts this file is built on (see the README, "Turn-based IVR in FreeSWITCH"):
-- * its arguments are split on spaces: the URL, the header and the body carry none;
-- * it URL-decodes the POST data (%XX only), so the body is percent-encoded here;
-- * it sets no timeout unless told: every call passes connect-timeout and timeout;
-- * with `json` it answers {"exit_code", "status_code", "body", "headers"} (older builds
--   leave out exit_code and give status_code as a number: both are read);
-- * answers over 64000 bytes fail (the body is cut or missing): they are errors here.

local M = {}

-- mod_curl's default max-bytes.
M.MAX_BYTES = 64000

-- JSON: FusionPBX's lunajson when installed, else the bundled one.
local function pick_json()
  local ok, lib = pcall(require, "resources.functions.lunajson")
  if ok and type(lib) == "table" and lib.encode and lib.decode then return lib, "lunajson" end
  return require("voice_ai.json"), "bundled"
end
M.json, M.json_name = pick_json()

-- Percent-encodes every byte but the unreserved ones (RFC 3986): %, space, ', \, + and
-- UTF-8 bytes all come back intact after mod_curl's switch_url_decode.
function M.pct(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- A URL or header value must not break mod_curl's space-split argument list.
local function safe_word(s)
  return type(s) == "string" and s ~= "" and not s:find("[%s%c]")
end

local function log(level, msg)
  if freeswitch and freeswitch.consoleLog then freeswitch.consoleLog(level, "[voice_ai] " .. msg .. "\n") end
end
M.log = log

-- Builds mod_curl's argument string (exposed for tests).
function M.curl_args(req)
  local parts = { req.url, "json" }
  parts[#parts + 1] = "connect-timeout " .. math.max(1, math.floor(req.connect_timeout or 2))
  parts[#parts + 1] = "timeout " .. math.max(1, math.floor(req.timeout or 10))
  if req.api_key and req.api_key ~= "" then
    parts[#parts + 1] = "append_headers X-API-Key:" .. req.api_key
  end
  local method = req.method or "get"
  if method == "post" then
    parts[#parts + 1] = "content-type application/json"
    parts[#parts + 1] = "post"
    -- mod_curl needs a data word after "post": "{}" for an empty body.
    parts[#parts + 1] = M.pct(req.body and M.json.encode(req.body) or "{}")
  else
    parts[#parts + 1] = method
  end
  return table.concat(parts, " ")
end

-- One request. req: {url, method = "get"|"post", body = table?, api_key?, timeout?,
-- connect_timeout?, api = freeswitch.API()?}.
-- Returns {ok, status, data, err}: ok only for a 2xx answer whose body is JSON (or empty).
function M.request(req)
  if not safe_word(req.url) or not req.url:match("^https?://") then
    return { ok = false, status = 0, err = "bad url" }
  end
  if req.api_key and req.api_key ~= "" and not safe_word(req.api_key) then
    return { ok = false, status = 0, err = "the API key has spaces" }
  end
  local encoded_ok, args = pcall(M.curl_args, req)
  if not encoded_ok then return { ok = false, status = 0, err = "cannot encode the body" } end
  local api = req.api or freeswitch.API()
  local raw = api:execute("curl", args)
  if type(raw) ~= "string" or raw == "" then
    return { ok = false, status = 0, err = "no answer from mod_curl" }
  end
  if #raw > 8 * M.MAX_BYTES then -- a JSON-escaped 64000-byte body is at most ~6x
    return { ok = false, status = 0, err = "answer too large" }
  end
  local parsed, wrapper = pcall(M.json.decode, raw)
  if not parsed or type(wrapper) ~= "table" then
    -- "-ERR …" text, or a wrapper cut short.
    return { ok = false, status = 0, err = "mod_curl answered no JSON" }
  end
  local exit_code = tonumber(wrapper.exit_code or 0) or -1
  local status = tonumber(wrapper.status_code) or 0
  if exit_code ~= 0 then
    local why = ({ [6] = "cannot resolve host", [7] = "connection refused", [28] = "timed out",
      [23] = "answer larger than mod_curl's limit", [63] = "answer larger than mod_curl's limit" })[exit_code]
    return { ok = false, status = status, err = why or ("curl error " .. exit_code) }
  end
  if status == 0 then return { ok = false, status = 0, err = "no HTTP answer" } end
  local body = wrapper.body
  if body ~= nil and type(body) ~= "string" then
    return { ok = false, status = status, err = "body is not a string" }
  end
  body = body or ""
  if #body >= M.MAX_BYTES then
    return { ok = false, status = status, err = "answer larger than mod_curl's limit" }
  end
  local data
  if body ~= "" then
    local ok_body, decoded = pcall(M.json.decode, body)
    if not ok_body then return { ok = false, status = status, err = "answer is not JSON" } end
    data = decoded
  end
  if status < 200 or status > 299 then
    local code = type(data) == "table" and type(data.error) == "table" and data.error.code
    return { ok = false, status = status, data = data, err = "HTTP " .. status .. (code and (" " .. tostring(code)) or "") }
  end
  return { ok = true, status = status, data = data }
end

return M
