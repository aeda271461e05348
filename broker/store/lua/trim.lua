-- Trim one stream without losing what a consumer group still needs.
-- KEYS[1] stream, KEYS[2] metrics hash
-- ARGV[1] hard cap (entries), ARGV[2] metrics field counting entries removed unread
--
-- Safe bound: for every group, its oldest pending entry, or (nothing pending) the entry
-- right after the last one it was delivered; entries below the lowest bound have been
-- read and acknowledged by every group and are removed (XTRIM MINID). A stream with no
-- group keeps everything. Then, only if the stream still holds more than the hard cap
-- (an abandoned or hopelessly slow group), the oldest entries past the cap are removed
-- although some group has not read or acknowledged them; that count is added to the metric.
-- Returns {removed safely, removed unread}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local function lower(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  return ams < bms or (ams == bms and aseq < bseq)
end

local bound = nil
for _, info in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local group = {}
  for i = 1, #info, 2 do
    group[info[i]] = info[i + 1]
  end
  local candidate
  local pending = redis.call('XPENDING', KEYS[1], group['name'])
  if tonumber(pending[1]) > 0 then
    candidate = pending[2]
  else
    local last = group['last-delivered-id']
    local dash = string.find(last, '-', 1, true)
    candidate = string.sub(last, 1, dash - 1) .. '-' .. tostring(tonumber(string.sub(last, dash + 1)) + 1)
  end
  if bound == nil or lower(candidate, bound) then
    bound = candidate
  end
end

local removed = 0
if bound ~= nil then
  removed = redis.call('XTRIM', KEYS[1], 'MINID', bound)
end

local unread = 0
local cap = tonumber(ARGV[1])
if redis.call('XLEN', KEYS[1]) > cap then
  unread = redis.call('XTRIM', KEYS[1], 'MAXLEN', cap)
  redis.call('HINCRBY', KEYS[2], ARGV[2], unread)
end
return {removed, unread}
