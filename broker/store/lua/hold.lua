-- A delivery about to create makes sure its claim still stands, and renews its worker's record.
-- KEYS[1] job hash; KEYS[2] the workers zset
-- ARGV[1] the delivery's token; ARGV[2] worker id; ARGV[3] seconds the record lives
-- Called when the worker's liveness record may have lapsed since the claim (a paused process,
-- a slow Redis): if another delivery took the job meanwhile, or the job left accepted/dispatched,
-- this one must not create. Checking the claim and renewing the record in one atomic step means
-- no other delivery can take the job between the two. Returns 1 to go ahead, 0 to stand down.
local creatable = $(creatable_states)
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not creatable[state] or redis.call('HGET', KEYS[1], 'claim_token') ~= ARGV[1] then
  return 0
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
return 1
