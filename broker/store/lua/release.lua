-- Lease the due members of the delayed set to one releaser.
-- KEYS[1] delayed zset; ARGV[1] now in ms, or "" for the server's time; ARGV[2] limit;
-- ARGV[3] lease in ms
-- Each due member's score moves to now + lease, so a releaser that dies before it
-- dispatches them leaves them due again after the lease, and two releasers never
-- take the same member. Returns {lease score, member...}.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[2]))
local lease = now_ms + tonumber(ARGV[3])
local reply = {tostring(lease)}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], lease, member)
  reply[#reply + 1] = member
end
return reply
