-- A finished job's ledger hash, rewritten with only what its retention needs (broker/store/retained.py):
-- the fields in $(retained_fields) that hold a value, the times in whole seconds. The hash is
-- deleted and written anew, because a hash once grown past Redis's small encoding (the job
-- record alone is far over 64 bytes) keeps the large one when fields are only deleted; its
-- expiry (`retention` seconds, 0: none) is set again.
local function compact_ledger(job, retention)
  local names = $(retained_fields)
  local whole = $(whole_seconds)
  local values = redis.call('HMGET', job, unpack(names))
  local kept = {}
  for i, name in ipairs(names) do
    local value = values[i]
    if value and value ~= '' then
      if whole[name] and tonumber(value) then
        value = string.format('%d', math.floor(tonumber(value)))
      end
      kept[#kept + 1] = name
      kept[#kept + 1] = value
    end
  end
  redis.call('DEL', job)
  if #kept > 0 then
    redis.call('HSET', job, unpack(kept))
    if retention > 0 then
      redis.call('EXPIRE', job, retention)
    end
  end
end
