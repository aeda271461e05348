-- Drop members a releaser has dispatched, unless they were delayed again meanwhile.
-- KEYS[1] delayed zset; ARGV[1] the lease score; ARGV[2..] members
local removed = 0
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
