-- Minimal JSON for the voice-ai scripts, used when FusionPBX's
-- resources.functions.lunajson is not installed. Same two calls as lunajson:
-- encode(value) and decode(text). JSON null decodes to nil, like lunajson's default.
-- Strings are byte strings: UTF-8 passes through untouched; \uXXXX is turned into UTF-8.
-- Runs on Lua 5.1-5.4 (FreeSWITCH 1.10's mod_lua is built against 5.2).

local M = {}

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- A table is an array when its keys are exactly 1..n (an empty table is an object).
local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

local encode_value

local function encode_table(t, depth)
  if depth > 32 then error("json: nesting too deep") end
  local parts = {}
  if is_array(t) then
    for i = 1, #t do parts[i] = encode_value(t[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("json: object keys must be strings") end
    keys[#keys + 1] = k
  end
  table.sort(keys) -- stable output: easier to log and to test
  for i, k in ipairs(keys) do
    parts[i] = encode_string(k) .. ":" .. encode_value(t[k], depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

encode_value = function(v, depth)
  local kind = type(v)
  if kind == "nil" then return "null"
  elseif kind == "boolean" then return tostring(v)
  elseif kind == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("json: number is not finite") end
    if v % 1 == 0 and v >= -2^53 and v <= 2^53 then return string.format("%d", v) end
    return string.format("%.14g", v)
  elseif kind == "string" then return encode_string(v)
  elseif kind == "table" then return encode_table(v, depth)
  end
  error("json: cannot encode a " .. kind)
end

function M.encode(v)
  return encode_value(v, 0)
end

-- Decoding: a recursive descent over the byte string; every error names the offset.

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40,
      0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local decode_value

local function fail(pos, what)
  error(string.format("json: %s at byte %d", what, pos), 0)
end

local function skip(s, pos)
  return (s:find("[^ \t\r\n]", pos)) or (#s + 1)
end

local function decode_string(s, pos)
  local out, i = {}, pos + 1
  while true do
    local c = s:sub(i, i)
    if c == "" then fail(pos, "unterminated string") end
    if c == '"' then return table.concat(out), i + 1 end
    if c:byte() < 0x20 then fail(i, "control character in string") end
    if c == "\\" then
      local e = s:sub(i + 1, i + 1)
      local simple = ({ ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f',
        n = '\n', r = '\r', t = '\t' })[e]
      if simple then
        out[#out + 1] = simple
        i = i + 2
      elseif e == "u" then
        local hex = s:sub(i + 2, i + 5)
        if not hex:match("^%x%x%x%x$") then fail(i, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        i = i + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local low = s:match("^\\u(%x%x%x%x)", i)
          local lo = low and tonumber(low, 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            i = i + 6
          else
            cp = 0xFFFD
          end
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          cp = 0xFFFD
        end
        out[#out + 1] = utf8_char(cp)
      else
        fail(i, "bad escape")
      end
    else
      local j = s:find('[%c"\\]', i) or (#s + 1)
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    end
  end
end

local function decode_array(s, pos, depth)
  local arr, n = {}, 0
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth + 1)
    n = n + 1
    arr[n] = v
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then fail(pos, "expected , or ]") end
    pos = skip(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local obj = {}
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then fail(pos, "expected a key") end
    local k
    k, pos = decode_string(s, pos)
    pos = skip(s, pos)
    if s:sub(pos, pos) ~= ":" then fail(pos, "expected :") end
    local v
    v, pos = decode_value(s, skip(s, pos + 1), depth + 1)
    obj[k] = v
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then fail(pos, "expected , or }") end
    pos = skip(s, pos + 1)
  end
end

decode_value = function(s, pos, depth)
  if depth > 64 then fail(pos, "nesting too deep") end
  pos = skip(s, pos)
  local c = s:sub(pos, pos)
  if c == "{" then return decode_object(s, pos, depth) end
  if c == "[" then return decode_array(s, pos, depth) end
  if c == '"' then return decode_string(s, pos) end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if num and num ~= "" and num ~= "-" then
    local v = tonumber(num)
    if not v then fail(pos, "bad number") end
    return v, pos + #num
  end
  if s:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if s:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if s:sub(pos, pos + 3) == "null" then return nil, pos + 4 end
  fail(pos, "unexpected " .. (c == "" and "end" or ("'" .. c .. "'")))
end

function M.decode(s)
  if type(s) ~= "string" then error("json: decode needs a string", 0) end
  local v, pos = decode_value(s, 1, 0)
  pos = skip(s, pos)
  if pos <= #s then fail(pos, "trailing data") end
  return v
end

return M
