-- Pure-Lua checks of voice_ai/json.lua and voice_ai/http.lua (run from lua/:
-- lua5.2 tests/unit.lua). Prints "N passed, M failed" and exits non-zero on a failure.
package.path = "./?.lua;" .. package.path

local passed, failed = 0, 0
local function check(name, cond, detail)
  if cond then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write("FAIL ", name, detail and (": " .. tostring(detail)) or "", "\n")
  end
end

local json = require "voice_ai.json"

-- Round trips, escapes, UTF-8 and \u escapes (with a surrogate pair).
local v = json.decode('{"a":[1,-2.5,3e2],"s":"x\\u00e9\\ud83d\\ude00\\n","t":true,"n":null,"o":{}}')
check("numbers", v.a[1] == 1 and v.a[2] == -2.5 and v.a[3] == 300)
check("unicode escapes", v.s == "x\195\169\240\159\152\128\n", v.s)
check("true/null/empty", v.t == true and v.n == nil and next(v.o) == nil)
local text = 'quote " backslash \\ percent % apostrophe \' plus + tab \t ção \1'
check("string round trip", json.decode(json.encode(text)) == text)
check("control escaped", json.encode("\1") == '"\\u0001"', json.encode("\1"))
check("array vs object", json.encode({ 1, 2 }) == "[1,2]" and json.encode({}) == "{}")
check("sorted keys", json.encode({ b = 1, a = 2 }) == '{"a":2,"b":1}')
for _, bad in ipairs({ "", "{", '{"a":1,}', "[1,]", '"open', "tru", "[1] x", '{"a" 1}', "01x" }) do
  check("rejects " .. bad, not pcall(json.decode, bad))
end
check("rejects deep nesting", not pcall(json.decode, string.rep("[", 100) .. string.rep("]", 100)))

-- pct: what mod_curl's switch_url_decode (%XX only, '+' kept) turns back into the input.
local http = require "voice_ai.http"
check("bundled json without lunajson", http.json_name == "bundled", http.json_name)
local function url_decode(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
local body = json.encode({ audio_path = "/tmp/it's a 50% \\ test+1/ção.wav" })
local encoded = http.pct(body)
check("pct has no space, quote or backslash", not encoded:find("[%s'\"\\+]"), encoded)
check("pct round trip", url_decode(encoded) == body)
local args = http.curl_args({ url = "http://h/x", method = "post", body = { a = "b c" }, api_key = "k",
  timeout = 7, connect_timeout = 1 })
local n = 0
for _ in args:gmatch("%S+") do n = n + 1 end
check("curl args fit mod_curl's 30", n <= 30, n)
check("curl args carry the timeouts", args:find(" timeout 7 ", 1, true) and args:find("connect-timeout 1", 1, true), args)
check("curl args carry the key", args:find("append_headers X-API-Key:k", 1, true), args)

-- Answers as mod_curl's json wrapper gives them (a fake API object).
local function answer(raw)
  return http.request({ url = "http://h/x", api = { execute = function() return raw end } })
end
check("200 ok", answer('{"exit_code":"0","status_code":"200","body":"{\\"x\\":1}"}').data.x == 1)
check("numeric status (older mod_curl)", answer('{"status_code":201,"body":"{}"}').ok)
check("timeout is an error", answer('{"exit_code":"28","status_code":"0"}').err == "timed out")
check("refused is an error", answer('{"exit_code":"7","status_code":"0"}').err == "connection refused")
check("4xx is an error", answer('{"exit_code":"0","status_code":"404","body":"{\\"error\\":{\\"code\\":\\"session_not_found\\"}}"}').err
  == "HTTP 404 session_not_found")
check("bad body is an error", not answer('{"exit_code":"0","status_code":"200","body":"<html>"}').ok)
check("-ERR is an error", not answer("-ERR no reply\n").ok)
check("oversize body is an error", not answer(json.encode({ exit_code = "0", status_code = "200",
  body = '"' .. string.rep("a", 64000) .. '"' })).ok)
check("url with a space is refused", not http.request({ url = "http://h/a b", api = {} }).ok)
check("key with a space is refused", not http.request({ url = "http://h/", api_key = "a b", api = {} }).ok)

-- With FusionPBX's lunajson on the path, http uses it.
package.loaded["voice_ai.http"] = nil
package.preload["resources.functions.lunajson"] = function()
  return { encode = json.encode, decode = json.decode, fake = true }
end
local http2 = require "voice_ai.http"
check("lunajson when present", http2.json_name == "lunajson" and http2.json.fake == true, http2.json_name)
check("lunajson answers parse", http2.request({ url = "http://h/x",
  api = { execute = function() return '{"exit_code":"0","status_code":"200","body":"[1]"}' end } }).data[1] == 1)

print(string.format("%d passed, %d failed", passed, failed))
if failed > 0 then os.exit(1) end
