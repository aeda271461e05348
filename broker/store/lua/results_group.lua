-- Create a scheduler's results stream and group unless they exist (see lib/results_group.lua).
-- KEYS[1] the results stream; KEYS[2] the set of known schedulers
-- ARGV[1] the results group; ARGV[2] the scheduler id
-- A stream that exists without the group (results published to it by hand) gets the group
-- at id 0 too. Returns 1 when the stream was created now, else 0.
$(include:results_group)
if ensure_results_group(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) == 1 then
  return 1
end
local reply = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0')
if type(reply) == 'table' and reply.err and not string.find(reply.err, 'BUSYGROUP', 1, true) then
  return redis.error_reply(reply.err)
end
redis.call('SADD', KEYS[2], ARGV[2])
return 0
