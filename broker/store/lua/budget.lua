-- Write a cluster's create budget as its controller computed it, unless another worker wrote first.
-- KEYS[1] the budget hash; KEYS[2] the set of clusters (status and the gauges read it)
-- ARGV[1] the version the caller read ("0": none yet); ARGV[2] the cluster's name;
-- ARGV[3..] field/value pairs of the new state
-- The controller (podq.workers.budget) computes the next state in Python from one read of the
-- hash; this compare-and-set keeps two workers' updates from overwriting each other (the loser
-- reads again). Fields the controller does not own (tat, limited_at: the reservations') are left alone.
-- Returns 1 when written, 0 when the version moved meanwhile.
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then
  return 0
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'version', version + 1)
redis.call('SADD', KEYS[2], ARGV[2])
return 1
